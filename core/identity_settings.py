"""Settings of identity matching: the ``[identity]`` table of plugins.toml (issue 8).

The contract with the store and CLI (``core/identity_config.py`` builds this model)::

    [identity]
    mode = "strict"            # or "marketing"
    [identity.match]           # every key optional; these are the defaults
    max_given_names = 2        # an identifier seen with more given names than this is shared: no evidence
    max_cluster = 15           # a link that would make a person bigger than this is held as possible
    region = "HK"              # phones without a country code are read in this region
    # phone_owner = true       # a phone-only record joins the one person at its number (unset: marketing only)
    # own_phone_sources = ["sms", "erp"]  # connectors whose phone is always the customer's own (default: none)
    # email_names = true        # an email spelling another given name joins at one phone (unset: marketing only)

    MatchSettings.model_validate({"mode": mode, **match_table})

Thresholds are match probabilities (0..1) of a scored pair, one auto-merge threshold per mode and one
threshold for "possible" links kept for review. They are configuration: the defaults are set from what the
weights mean (a probability), never tuned to a benchmark dataset.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["MatchSettings"]


class MatchSettings(BaseModel):
    """How records are matched into persons; unknown keys are an error naming the key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["strict", "marketing"] = "strict"
    max_given_names: int = Field(2, ge=1)
    max_cluster: int = Field(15, ge=2)
    # an address is home to a family: shared only when seen with more given names than this
    max_address_names: int = Field(6, ge=1)
    region: str = "HK"
    # probability a scored pair must reach to be merged automatically, per mode
    strict_threshold: float = Field(0.999, gt=0, lt=1)
    marketing_threshold: float = Field(0.95, gt=0, lt=1)
    # below the auto threshold but at least this: kept as a possible link for review, never merged
    possible_threshold: float = Field(0.5, gt=0, lt=1)
    # a blocking key shared by more records than this is too common to compare within (its pairs are skipped)
    max_block: int = Field(50, ge=2)
    # an identifier (phone, email, address) held by more records than this is no evidence at all
    max_identifier_records: int = Field(30, ge=2)
    # a record with a phone and no name joins the one person whose named records carry the phone: in
    # marketing mode by default (None); true or false for both modes
    phone_owner: bool | None = None
    # connector ids whose records always carry the customer's own phone, never a family member's (an SMS list,
    # an account system): a phone-only record of one of them joins the one person who gave that phone as their
    # own in a named record of one of them, in both modes. Empty by default: only the merchant knows
    own_phone_sources: tuple[str, ...] = ()

    # persons at one phone, one with an email spelling the other's given name of the other kind (Peter at
    # taimanchan@, the other known as Tai Man), are one person: in marketing mode by default (None)
    email_names: bool | None = None

    @model_validator(mode="after")
    def _ordered(self) -> MatchSettings:
        if self.possible_threshold > min(self.strict_threshold, self.marketing_threshold):
            raise ValueError("possible_threshold must not exceed strict_threshold or marketing_threshold")
        return self

    @property
    def phone_owner_joins(self) -> bool:
        """Whether a phone-only record joins the one person at its phone in the selected mode."""
        return self.mode == "marketing" if self.phone_owner is None else self.phone_owner

    @property
    def email_name_joins(self) -> bool:
        """Whether an email spelling another given name joins two persons at one phone in the selected mode."""
        return self.mode == "marketing" if self.email_names is None else self.email_names

    @property
    def auto_threshold(self) -> float:
        """The probability at which a pair merges automatically in the selected mode."""
        return self.strict_threshold if self.mode == "strict" else self.marketing_threshold
