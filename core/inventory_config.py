"""``[inventory]`` in plugins.toml: canonical locations, their authorities, channels, safety stock and policies.

The merchant's view of stock is one set of canonical locations (a shop floor, a warehouse). Each system names
them its own way (Shopify location 7, Square location "L1CWB", Odoo "WH/Stock"), so each canonical location lists
``sources``: connector id -> that system's location id. ``authority`` names the connector whose counts are the
truth there (the ERP for the warehouse, the POS for a shop floor). A channel is a connector that sells; it may sell
from the locations it lists, and is where available-to-sell is pushed back.

    [inventory]
    tolerance = 0                              # units two systems may disagree by before it is a conflict

    [inventory.locations.cwb]
    name = "Causeway Bay"
    authority = "tills"
    sources = { tills = "L1CWB", shop = "7" }
    latitude = 22.2803
    longitude = 114.1838
    safety_stock = 1

    [inventory.channels.shop]
    locations = ["cwb", "warehouse"]

    [[inventory.safety_stock]]                 # per SKU or tag, over the location's own
    tag = "fragile"
    quantity = 2

    [[inventory.policies]]                     # the first rule matching a SKU (or one of its tags) applies
    tag = "limited"
    oversell = "deny"                          # deny | backorder | allow
    [[inventory.policies]]
    sku = "TEA-001"
    oversell = "allow"
    allow_limit = 5

    [[inventory.preorders]]
    sku = "MOONCAKE-2027"
    limit = 200
    expected = 2027-08-01
    pickup_location = "cwb"

    [inventory.allocation]
    strategy = "nearest"                       # nearest | priority
    priority = ["warehouse", "cwb"]            # with strategy = "priority"
    split = false                              # may an order be fulfilled from several locations
    max_splits = 2

``inventory_issues`` checks all of it against the configured connectors and reports every problem as
``file: inventory.key.path: message``, like the rest of plugins.toml.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import Config, pydantic_issues, settings_or_raise
from .errors import ConfigIssue, did_you_mean

__all__ = ["InventorySettings", "inventory_issues", "inventory_settings"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocationSettings(_Strict):
    """One canonical location."""

    name: str | None = None
    authority: str = Field(description="connector id whose counts are the truth here")
    sources: dict[str, str] = Field(min_length=1, description="connector id -> that system's location id")
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    safety_stock: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _authority_is_a_source(self) -> LocationSettings:
        if self.authority not in self.sources:
            raise ValueError(f"authority {self.authority!r} must be one of its sources ({', '.join(self.sources)})")
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


class ChannelSettings(_Strict):
    """A connector that sells: the canonical locations it sells from."""

    locations: list[str] = Field(min_length=1)
    push: bool = True


class _SkuOrTag(_Strict):
    sku: str | None = None
    tag: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Any:
        if (self.sku is None) == (self.tag is None):
            raise ValueError("give exactly one of sku or tag")
        return self

    def matches(self, sku: str, tags: frozenset[str]) -> bool:
        return self.sku == sku if self.sku is not None else self.tag in tags


class SafetyStockRule(_SkuOrTag):
    quantity: int = Field(ge=0)


class PolicyRule(_SkuOrTag):
    oversell: Literal["deny", "backorder", "allow"]
    allow_limit: int | None = Field(None, ge=1, description="with oversell = allow: units beyond stock")

    @model_validator(mode="after")
    def _limit_only_with_allow(self) -> PolicyRule:
        if self.oversell == "allow" and self.allow_limit is None:
            raise ValueError("oversell = 'allow' needs allow_limit (units that may be sold beyond stock)")
        if self.oversell != "allow" and self.allow_limit is not None:
            raise ValueError("allow_limit only applies with oversell = 'allow'")
        return self


class PreorderRule(_Strict):
    sku: str
    limit: int = Field(ge=1)
    expected: date | None = None
    pickup_location: str | None = None


class AllocationSettings(_Strict):
    strategy: Literal["nearest", "priority"] = "nearest"
    priority: list[str] = Field(default_factory=list)
    split: bool = False
    max_splits: int = Field(2, ge=1)


class InventorySettings(_Strict):
    """The whole ``[inventory]`` table."""

    tolerance: int = Field(0, ge=0)
    default_policy: Literal["deny", "backorder", "allow"] = "deny"
    backorder_days: int = Field(14, ge=1, description="promise date of a backorder with no expected date: today + days")
    evidence_hours: int = Field(24, ge=1, description="an oversell lists the location's sales of this many hours")
    locations: dict[str, LocationSettings] = Field(default_factory=dict)
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    safety_stock: list[SafetyStockRule] = Field(default_factory=list)
    policies: list[PolicyRule] = Field(default_factory=list)
    preorders: list[PreorderRule] = Field(default_factory=list)
    allocation: AllocationSettings = Field(default_factory=AllocationSettings)

    def policy_for(self, sku: str, tags: frozenset[str] = frozenset()) -> PolicyRule:
        """The first policy rule matching ``sku`` or one of its ``tags``; else the default policy."""
        for rule in self.policies:
            if rule.matches(sku, tags):
                return rule
        return PolicyRule(sku=sku, oversell=self.default_policy, allow_limit=1 if self.default_policy == "allow"
                          else None)

    def safety_stock_for(self, location: str, sku: str, tags: frozenset[str] = frozenset()) -> int:
        """The location's safety stock plus the largest SKU or tag rule matching."""
        extra = max((r.quantity for r in self.safety_stock if r.matches(sku, tags)), default=0)
        return self.locations[location].safety_stock + extra

    def canonical_location(self, connector_id: str, external_location: str) -> str | None:
        """The canonical location a connector's location id is, if any."""
        return self.source_index.get((connector_id, str(external_location)))

    def pushes_to(self, connector_id: str, location: str) -> bool:
        """Does storesync push levels to ``connector_id`` at canonical ``location`` (a channel selling from it,
        pushing, and not the authority there)?"""
        channel = self.channels.get(connector_id)
        return (channel is not None and channel.push and location in channel.locations
                and self.locations[location].authority != connector_id)

    @cached_property
    def source_index(self) -> dict[tuple[str, str], str]:
        """(connector id, that system's location id) -> canonical location."""
        return {(cid, ext): loc for loc, spec in self.locations.items() for cid, ext in spec.sources.items()}


def inventory_settings(config: Config) -> InventorySettings:
    """The validated ``[inventory]`` table; raises ``ConfigError`` naming every problem."""
    return settings_or_raise(_check(config))


def inventory_issues(config: Config) -> list[ConfigIssue]:
    """Every problem of ``[inventory]``, as ``file: inventory.key: message`` issues (none when it is empty)."""
    return _check(config)[0]


def _check(config: Config) -> tuple[list[ConfigIssue], InventorySettings | None]:
    file = config.file_label
    try:
        settings = InventorySettings.model_validate(config.inventory)
    except ValidationError as exc:
        return pydantic_issues(exc, file, prefix="inventory", model=InventorySettings), None
    issues: list[ConfigIssue] = []
    connectors = config.connectors

    def unknown_connector(cid: str, key: str) -> None:
        if cid not in connectors:
            issues.append(ConfigIssue(file, key, f"no connector {cid!r} is configured{did_you_mean(cid, connectors)}"))

    def unknown_location(name: str, key: str) -> None:
        if name not in settings.locations:
            issues.append(ConfigIssue(file, key, f"no location {name!r} under [inventory.locations]"
                                                 f"{did_you_mean(name, settings.locations)}"))

    seen: dict[tuple[str, str], str] = {}
    for loc, spec in settings.locations.items():
        for cid, ext in spec.sources.items():
            unknown_connector(cid, f"inventory.locations.{loc}.sources.{cid}")
            other = seen.setdefault((cid, ext), loc)
            if other != loc:
                issues.append(ConfigIssue(file, f"inventory.locations.{loc}.sources.{cid}",
                                          f"{cid} location {ext!r} is already location {other!r}"))
    for cid, channel in settings.channels.items():
        unknown_connector(cid, f"inventory.channels.{cid}")
        for i, loc in enumerate(channel.locations):
            unknown_location(loc, f"inventory.channels.{cid}.locations[{i}]")
    for i, rule in enumerate(settings.preorders):
        if rule.pickup_location is not None:
            unknown_location(rule.pickup_location, f"inventory.preorders[{i}].pickup_location")
    for i, loc in enumerate(settings.allocation.priority):
        unknown_location(loc, f"inventory.allocation.priority[{i}]")
    if settings.allocation.strategy == "priority" and not settings.allocation.priority:
        issues.append(ConfigIssue(file, "inventory.allocation.priority",
                                  "strategy = 'priority' needs the list of locations in order"))
    if settings.allocation.strategy == "nearest":
        missing = [loc for loc, spec in settings.locations.items() if spec.latitude is None]
        if missing:
            issues.append(ConfigIssue(file, "inventory.allocation.strategy",
                                      f"'nearest' needs latitude and longitude for every location; missing for "
                                      f"{', '.join(missing)} (or use strategy = 'priority')"))
    return issues, settings
