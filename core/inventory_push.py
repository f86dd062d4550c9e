"""Pushing available-to-sell back to the channels, with compare-and-set, and nothing when nothing changed.

**Targets.** A channel (``[inventory.channels.X]`` with ``push = true``) shows, at each of its own locations, the
available units of the canonical locations it sells from that map to it. It is never pushed where it is itself
the authority (a till's count is the truth, not a copy). A canonical location the channel has no location id for
is folded into its *default* location (the first of its ``locations`` it has an id for and stocks the item
at). Lines still waiting for allocation come off the default location first, then the others; a pre-order SKU's
remaining pre-order limit, or an ``allow`` SKU's remaining allowance, is added at the default location.

**Pushing.** What is pushed is the channel's sellable quantity (Shopify's ``available``; Square's IN_STOCK):
already net of what the channel committed itself, so nothing is subtracted twice. Each update carries the value
storesync believes the channel holds now as ``expected``: the channel's own report when it was synced after
storesync's last push there, else the quantity storesync last pushed. A target equal to the last push, with no
newer report saying otherwise, is not sent (a second run with no change pushes nothing); a newer report equal to
the last push is storesync's own echo, not a change. Nothing is set where the channel has no level for the item
(Shopify refuses an item not stocked at a location). A failed compare (a sale in between) is a ``conflict``
outcome: the caller re-reads the channel and computes again (``core/inventory_run.py``), so a sale made in
between is never overwritten.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .capabilities import PushOutcome, StockUpdate
from .inventory import Reconciliation
from .inventory_config import InventorySettings
from .inventory_ledger import PushedRow
from .store import Store

__all__ = ["PushSummary", "Target", "channel_targets", "push_targets"]

_PUSHED = PushedRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Target:
    """What ``channel`` should show for ``sku`` (its ``item_id``) at its own location ``location_id``."""

    channel: str
    location_id: str
    sku: str
    item_id: str
    quantity: int


@dataclass
class PushSummary:
    applied: list[PushOutcome] = field(default_factory=list)
    conflicts: list[PushOutcome] = field(default_factory=list)
    failed: list[PushOutcome] = field(default_factory=list)
    unchanged: int = 0
    not_stocked: int = 0  # targets at a location where the channel has no level for the item
    not_pushable: list[str] = field(default_factory=list)  # channels without push_inventory

    def as_dict(self) -> dict[str, Any]:
        def rows(outcomes: list[PushOutcome]) -> list[dict[str, Any]]:
            return [{"sku": o.update.sku, "item_id": o.update.item_id, "location_id": o.update.location_id,
                     "quantity": o.update.quantity, "expected": o.update.expected, "actual": o.actual,
                     "detail": o.detail} for o in outcomes]
        return {"applied": rows(self.applied), "conflicts": rows(self.conflicts), "failed": rows(self.failed),
                "unchanged": self.unchanged, "not_stocked": self.not_stocked,
                "not_pushable": self.not_pushable}


def channel_targets(settings: InventorySettings, recon: Reconciliation, items: dict[tuple[str, str], str],
                    allowance: dict[str, int] | None = None,
                    stocked: set[tuple[str, str, str]] | None = None) -> list[Target]:
    """Every channel location's quantity for every SKU it has an item for and storesync knows stock of.

    ``stocked``: the (channel, location id, item id) the channel keeps a level for; the default location of an
    item is the first of the channel's locations that stocks it."""
    allowance = allowance or {}
    by_sku: dict[str, dict[str, int]] = defaultdict(dict)
    for (sku, loc), pos in recon.positions.items():
        by_sku[sku][loc] = pos.available
    waiting: dict[tuple[str, str], int] = defaultdict(int)
    for line in recon.unplaced:
        waiting[(line.connector_id, line.sku)] += line.quantity
    out: list[Target] = []
    for channel, spec in settings.channels.items():
        if not spec.push:
            continue
        mapped = [(loc, settings.locations[loc].sources.get(channel)) for loc in spec.locations
                  if settings.pushes_to(channel, loc)]
        own = list(dict.fromkeys(ext for _loc, ext in mapped if ext))
        if not own:
            continue
        for sku in sorted(set(by_sku) | set(allowance)):
            item = items.get((channel, sku))
            if item is None:
                continue
            held = by_sku.get(sku, {})
            first = next((ext for ext in own if stocked is None or (channel, ext, item) in stocked), own[0])
            order = [first, *(ext for ext in own if ext != first)]
            quantity = dict.fromkeys(order, 0)
            for loc, ext in mapped:
                quantity[ext or first] += held.get(loc, 0)
            quantity[first] += allowance.get(sku, 0)
            short = waiting.get((channel, sku), 0)
            for ext in order:
                taken = min(short, quantity[ext])
                quantity[ext] -= taken
                short -= taken
            out += [Target(channel, ext, sku, item, quantity[ext]) for ext in own]
    return out


def push_targets(host: Any, store: Store, targets: Iterable[Target], reported: dict[tuple[str, str, str],
                 tuple[int, datetime]], now: datetime) -> PushSummary:
    """Send the targets that differ from what each channel holds; record what was applied."""
    summary = PushSummary()
    by_channel: dict[str, list[Target]] = defaultdict(list)
    for t in targets:
        by_channel[t.channel].append(t)
    with store.engine.connect() as conn:
        last = {(r.channel, r.location_id, r.item_id): r for r in conn.execute(
            sa.select(_PUSHED).where(_PUSHED.c.channel.in_(sorted(by_channel))))}
    for channel, wanted in sorted(by_channel.items()):
        updates = []
        for t in wanted:
            key = (channel, t.location_id, t.item_id)
            prev = last.get(key)
            if key not in reported and prev is None:
                summary.not_stocked += 1  # the channel does not stock the item there: nothing to set
                continue
            seen, seen_at = reported.get(key, (None, None))
            newer = seen is not None and (prev is None or seen_at is None or seen_at > prev.pushed_at)
            holds = seen if newer else (prev.quantity if prev is not None else seen)
            if holds == t.quantity:
                summary.unchanged += 1
                continue
            updates.append(StockUpdate(t.item_id, t.location_id, t.quantity, _key(t, holds), expected=holds,
                                       sku=t.sku))
        if not updates:
            continue
        connector = host.connector(channel)
        if not callable(getattr(connector, "push_inventory", None)):
            summary.not_pushable.append(channel)
            continue
        outcomes = connector.push_inventory(updates)
        done = [o for o in outcomes if o.status == "applied"]
        summary.applied += done
        summary.conflicts += [o for o in outcomes if o.status == "conflict"]
        summary.failed += [o for o in outcomes if o.status == "failed"]
        _record(store, channel, done, now)
    return summary


def _record(store: Store, channel: str, done: list[PushOutcome], now: datetime) -> None:
    if not done:
        return
    t = _PUSHED
    with store.engine.begin() as conn:
        for o in done:
            u = o.update
            keys = (t.c.channel == channel, t.c.location_id == u.location_id, t.c.item_id == u.item_id)
            changed = conn.execute(sa.update(t).where(*keys).values(quantity=u.quantity, sku=u.sku or "",
                                                                    pushed_at=now)).rowcount
            if not changed:
                conn.execute(sa.insert(t).values(channel=channel, location_id=u.location_id, item_id=u.item_id,
                                                 sku=u.sku or "", quantity=u.quantity, pushed_at=now))


def _key(t: Target, expected: int | None) -> str:
    """The same push (same target, same compare value) retried applies once; a new one gets a new key."""
    text = f"{t.channel}|{t.location_id}|{t.item_id}|{t.quantity}|{expected}"
    return "storesync-inv-" + hashlib.sha256(text.encode()).hexdigest()[:32]
