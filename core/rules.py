"""Notification rules: which event sends which text, in which language, to whom, and when.

``[notifications]`` in plugins.toml::

    [notifications]
    connector = "sms"                 # the connector instance that sends (one with send_message)
    default_language = "en"           # when the person's language has no template
    max_age_hours = 72                # older events are never notified (a first sync of old orders sends nothing)
    rate_per_second = 5               # messages handed to the gateway per second at most
    quiet_hours = ["21:00", "09:00"]  # marketing waits until the end, in [storesync] timezone
    settle_after_seconds = 60         # a send cut off by a crash is looked up at the gateway this long after

    [notifications.rules.order_confirmation]
    event = "order.created"
    purpose = "transactional"         # or "marketing": needs consent, respects quiet hours
    templates.en = "Hi {first_name}, thanks for your order {order_number} ({currency} {total})."
    templates.zh-HK = "{customer_name}你好，已收到你的訂單 {order_number}。"

Placeholders are checked against the fields the event type carries when the configuration is loaded
(``storesync config check``): a typo names the file, the key and the known fields. A marketing template must
tell the customer how to opt out (Hong Kong's UEMO requires a working unsubscribe facility).
"""

from __future__ import annotations

import re
import string
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .config import Config, pydantic_issues
from .errors import ConfigError, ConfigIssue, did_you_mean
from .events import EVENT_FIELDS

__all__ = ["NotificationSettings", "Rule", "load_rules", "notification_issues", "pick_language", "quiet_until",
           "render"]

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Rule(BaseModel):
    """``[notifications.rules.<name>]``: one event type, one purpose, a template per language."""

    model_config = ConfigDict(extra="forbid")

    event: str
    purpose: Literal["transactional", "marketing"] = "transactional"
    templates: dict[str, str] = Field(min_length=1)
    enabled: bool = True

    @field_validator("templates")
    @classmethod
    def _non_empty(cls, value: dict[str, str]) -> dict[str, str]:
        for lang, text in value.items():
            if not text.strip():
                raise ValueError(f"template {lang!r} is empty")
        return value


class NotificationSettings(BaseModel):
    """The validated ``[notifications]`` table."""

    model_config = ConfigDict(extra="forbid")

    connector: str | None = Field(None, description="connector instance that sends; default: the only one")
    default_language: str = "en"
    max_age_hours: float = Field(72, gt=0)
    rate_per_second: float = Field(5.0, gt=0)
    quiet_hours: tuple[str, str] | None = None
    settle_after_seconds: float = Field(
        60, ge=0, description="a message whose send was cut off is looked up at the gateway only this long after "
                              "(so a message the gateway has just created is surely in its list)")
    rules: dict[str, Rule] = Field(default_factory=dict)

    @field_validator("quiet_hours")
    @classmethod
    def _clock_times(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is not None and not all(_CLOCK.match(v) for v in value):
            raise ValueError('quiet_hours takes two "HH:MM" times, e.g. ["21:00", "09:00"]')
        return value


def load_rules(config: Config) -> NotificationSettings:
    """Validate ``[notifications]``: settings, event types and every placeholder; raise one ConfigError."""
    settings, issues = _parse(config)
    if issues:
        raise ConfigError(issues)
    assert settings is not None
    return settings


def notification_issues(config: Config) -> list[ConfigIssue]:
    """Every problem in ``[notifications]`` (for ``storesync config check``)."""
    return _parse(config)[1]


def _parse(config: Config) -> tuple[NotificationSettings | None, list[ConfigIssue]]:
    file = config.file_label
    try:
        settings = NotificationSettings.model_validate(config.notifications)
    except ValidationError as exc:
        return None, pydantic_issues(exc, file, prefix="notifications", model=NotificationSettings)
    issues: list[ConfigIssue] = []
    for name, rule in settings.rules.items():
        key = f"notifications.rules.{name}"
        if rule.event not in EVENT_FIELDS:
            issues.append(ConfigIssue(file, f"{key}.event", f"unknown event type {rule.event!r}"
                                      f"{did_you_mean(rule.event, EVENT_FIELDS)}; known: {', '.join(EVENT_FIELDS)}"))
            continue
        for lang, text in rule.templates.items():
            issues.extend(_template_issues(file, f"{key}.templates.{lang}", text, EVENT_FIELDS[rule.event]))
            if rule.purpose == "marketing" and not _tells_how_to_opt_out(text):
                issues.append(ConfigIssue(file, f"{key}.templates.{lang}", "a marketing message must tell how to "
                                          "opt out (Hong Kong UEMO, Cap. 593), e.g. 'Reply STOP to opt out' or "
                                          "'回覆STOP取消訂閱'"))
    if settings.connector and settings.connector not in config.connectors:
        issues.append(ConfigIssue(file, "notifications.connector", f"no connector {settings.connector!r}"
                                  f"{did_you_mean(settings.connector, config.connectors)}"))
    return settings, issues


#: words that show a template tells the customer how to opt out (STOP replies are honoured automatically)
_OPT_OUT_WORDS = ("stop", "unsubscribe", "opt out", "opt-out", "退訂", "取消訂閱")


def _tells_how_to_opt_out(text: str) -> bool:
    lower = text.lower()
    return any(word in lower for word in _OPT_OUT_WORDS)


def _template_issues(file: str, key: str, text: str, fields: tuple[str, ...]) -> list[ConfigIssue]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [ConfigIssue(file, key, f"bad template: {exc} (write a literal brace as {{{{ or }}}})")]
    issues = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in fields:
            hint = did_you_mean(name, fields) if name else ""
            issues.append(ConfigIssue(file, key, f"unknown placeholder {{{name}}}{hint}; this event has: "
                                      f"{', '.join(fields)}"))
        elif spec or conversion:
            issues.append(ConfigIssue(file, key, f"placeholder {{{name}}} takes no format spec or conversion"))
    return issues


def render(template: str, data: dict[str, Any]) -> str:
    """Fill a (validated) template; a field the event lacks renders empty, never as ``None``."""
    return template.format_map(_Blank({k: "" if v is None else v for k, v in data.items()}))


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def pick_language(templates: dict[str, str], wanted: str | None, default: str) -> str:
    """The template language for a person: exact tag, then same primary language, then ``default``, then first."""
    by_lower = {k.lower().replace("_", "-"): k for k in templates}
    for tag in (wanted, default):
        if not tag:
            continue
        tag = tag.lower().replace("_", "-")
        if tag in by_lower:
            return by_lower[tag]
        primary = tag.split("-")[0]
        for lower, original in by_lower.items():
            if lower.split("-")[0] == primary:
                return original
    return next(iter(templates))


def quiet_until(now: datetime, quiet_hours: tuple[str, str] | None, timezone: str) -> datetime | None:
    """When quiet hours that include ``now`` end (aware), or ``None`` when ``now`` is not in quiet hours."""
    if quiet_hours is None:
        return None
    local = now.astimezone(ZoneInfo(timezone))
    start, end = (time.fromisoformat(t) for t in quiet_hours)
    clock = local.time().replace(tzinfo=None)
    inside = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not inside:
        return None
    ends = datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    return ends if ends > local else ends + timedelta(days=1)
