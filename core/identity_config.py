"""``[identity]`` in plugins.toml: the matching mode, the matcher's settings and the golden-record rules.

    [identity]
    mode = "strict"                     # strict (default; routes messages) | marketing (higher recall, analytics)

    [identity.match]                    # the matcher's thresholds and guards (core/identity_settings.py)
    max_cluster = 15

    [identity.survivorship]
    default = "most_recent"             # most_recent | most_complete | source_priority
    sources = ["erp", "shop", "tills"]  # connector ids, most trusted first (for source_priority)

    [identity.survivorship.fields]      # per golden field, over the default
    email = "source_priority"
    phone = { strategy = "source_priority", sources = ["tills", "shop"] }
    sms_consent = "most_recent"         # consent fields: see below

Consent (``sms_consent``, ``email_consent``) is never carried from one record onto another person's contact by
the default strategy ``most_restrictive``: an opt-out (``false``) on any record of the person wins; otherwise the
golden value is ``true`` only if a record holding the golden contact itself (the same phone for SMS, the same email
for e-mail) says ``true``; else it is unknown (``null``). Only an explicit per-field rule (``most_recent`` or
``source_priority``) lets a newer or more trusted record's consent decide for the whole person.

``identity_issues`` reports every problem as ``file: identity.key: message``, like the rest of plugins.toml.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .config import Config, pydantic_issues, settings_or_raise
from .errors import ConfigIssue, did_you_mean

__all__ = ["CONSENT_FIELDS", "FieldRule", "GOLDEN_FIELDS", "IdentitySettings", "SurvivorshipSettings",
           "identity_issues", "identity_settings"]

#: the golden record's fields, in the order they are shown
GOLDEN_FIELDS = ("first_name", "last_name", "email", "phone", "member_id", "birth_date", "language",
                 "address_line1", "city", "postal_code", "country_code", "sms_consent", "email_consent")
CONSENT_FIELDS = ("sms_consent", "email_consent")

Strategy = Literal["most_recent", "most_complete", "source_priority"]
ConsentStrategy = Literal["most_restrictive", "most_recent", "source_priority"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldRule(_Strict):
    """How one golden field is chosen among the person's records."""

    strategy: Literal["most_recent", "most_complete", "source_priority", "most_restrictive"]
    sources: list[str] | None = Field(None, description="connector ids, most trusted first (source_priority)")


class SurvivorshipSettings(_Strict):
    """``[identity.survivorship]``: the default strategy, the source order and per-field rules."""

    default: Strategy = "most_recent"
    sources: list[str] = Field(default_factory=list)
    fields: dict[str, FieldRule] = Field(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        """``email = "source_priority"`` is short for ``email = { strategy = "source_priority" }``."""
        if isinstance(value, dict):
            return {k: {"strategy": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _known_fields(self) -> SurvivorshipSettings:
        for name, rule in self.fields.items():
            if name not in GOLDEN_FIELDS:
                raise ValueError(f"no golden field {name!r}{did_you_mean(name, GOLDEN_FIELDS)}; "
                                 f"known: {', '.join(GOLDEN_FIELDS)}")
            if rule.strategy == "most_restrictive" and name not in CONSENT_FIELDS:
                raise ValueError(f"fields.{name}: 'most_restrictive' applies to consent fields only "
                                 f"({', '.join(CONSENT_FIELDS)})")
            if rule.strategy == "source_priority" and not (rule.sources or self.sources):
                raise ValueError(f"fields.{name}: source_priority needs a list of connector ids "
                                 "(sources = [...] here or in [identity.survivorship])")
        if self.default == "source_priority" and not self.sources:
            raise ValueError("default = 'source_priority' needs sources = [connector ids, most trusted first]")
        return self

    def rule_for(self, name: str) -> FieldRule:
        """The rule of golden field ``name``: its own, else the default (``most_restrictive`` for consent)."""
        rule = self.fields.get(name)
        if rule is None:
            strategy = "most_restrictive" if name in CONSENT_FIELDS else self.default
            rule = FieldRule(strategy=strategy)
        if rule.strategy == "source_priority" and not rule.sources:
            rule = FieldRule(strategy="source_priority", sources=self.sources)
        return rule


class IdentitySettings(_Strict):
    """The whole ``[identity]`` table (``match`` is validated by the matcher's own model)."""

    mode: Literal["strict", "marketing"] = "strict"
    match: dict[str, Any] = Field(default_factory=dict)
    survivorship: SurvivorshipSettings = Field(default_factory=SurvivorshipSettings)

    def match_settings(self) -> Any:
        """The matcher's ``MatchSettings`` for this mode and ``[identity.match]``."""
        from .identity_settings import MatchSettings

        return MatchSettings.model_validate({"mode": self.mode, **self.match})


def identity_settings(config: Config) -> IdentitySettings:
    """The validated ``[identity]`` table; raises ``ConfigError`` naming every problem."""
    return settings_or_raise(_check(config))


def identity_issues(config: Config) -> list[ConfigIssue]:
    """Every problem of ``[identity]`` as ``file: identity.key: message`` issues (none when it is absent)."""
    return _check(config)[0]


def _check(config: Config) -> tuple[list[ConfigIssue], IdentitySettings | None]:
    file = config.file_label
    try:
        settings = IdentitySettings.model_validate(config.identity)
    except ValidationError as exc:
        return pydantic_issues(exc, file, prefix="identity", model=IdentitySettings), None
    issues: list[ConfigIssue] = []
    own_phone: tuple[str, ...] = ()
    try:
        own_phone = settings.match_settings().own_phone_sources
    except ValidationError as exc:
        from .identity_settings import MatchSettings

        issues += pydantic_issues(exc, file, prefix="identity.match", model=MatchSettings)
    survivorship = settings.survivorship
    named = [("identity.match.own_phone_sources", i, cid) for i, cid in enumerate(own_phone)]
    named += [("identity.survivorship.sources", i, cid) for i, cid in enumerate(survivorship.sources)]
    named += [(f"identity.survivorship.fields.{f}.sources", i, cid) for f, rule in survivorship.fields.items()
              for i, cid in enumerate(rule.sources or [])]
    for key, i, cid in named:
        if cid not in config.connectors:
            issues.append(ConfigIssue(file, f"{key}[{i}]", f"no connector {cid!r} is configured"
                                                          f"{did_you_mean(cid, config.connectors)}"))
    return issues, settings
