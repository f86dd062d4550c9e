"""Allocation of open order lines to fulfilment locations, and the merchant's policies when stock runs short.

Runs after ``reconcile`` (``core/inventory.py``) on its positions, first come first served by order time:

1. Lines waiting at no location (web orders, parked pre-orders and backorders) are grouped by order; only
   SKUs some authority counts (or pre-order SKUs) of a configured channel are decided: an untracked SKU, or
   another connector's order (the ERP's own), is left alone. An order
   goes whole to one location that has every line in stock, among the locations its channel sells from, ranked
   by ``[inventory.allocation]``: ``priority`` (the list), or ``nearest`` (distance from the order's pickup
   location, else from the channel's first location). An order no single location can fill is filled line by
   line when ``split = true`` (at most ``max_splits`` locations), else it waits whole.
2. A line that cannot be allocated follows its SKU's policy: a pre-order SKU takes it up to its ``limit``
   (``preorder``); ``backorder`` parks it against incoming stock with a promise date; ``allow`` accepts it beyond
   stock up to ``allow_limit`` units; ``deny`` (and anything over a limit) flags it for cancellation.
3. A position whose committed exceeds on hand (two channels sold the last unit in the same minute) has its
   newest lines beyond stock; the ones storesync allocated (cancellable web orders) are re-decided by policy.

Each decision says what happened in words, and the ones a customer should hear about carry an event:
``oversell_detected`` (denied), ``backorder_allocated`` and ``preorder_stock_arrived`` (a parked line got stock).
Allocating a line moves its units into the position's committed at once, so the next order sees what is left.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from .inventory import Conflict, Demand, Position, Reconciliation
from .inventory_config import InventorySettings

__all__ = ["Decision", "decide"]

#: events a parked line's allocation raises, by the state it leaves
ARRIVAL_EVENTS = {"preorder": "preorder_stock_arrived", "backordered": "backorder_allocated"}


@dataclass(frozen=True, slots=True)
class Decision:
    """What became of one order line: its new state, location, promise date, why, and the event to raise."""

    line: Demand
    state: str  # allocated | backordered | preorder | denied | allowed
    location: str | None = None
    promise_date: date | None = None
    detail: str = ""
    event: str | None = None
    origin: str = "order"  # order | preorder | backorder: how the line came to be allocated


class _Books:
    """Units of each SKU already taken under a limit: pre-ordered and sold beyond stock (``allow``)."""

    def __init__(self, preordered: dict[str, int], allowed: dict[str, int]) -> None:
        self.preordered = defaultdict(int, preordered)
        self.allowed = defaultdict(int, allowed)


def decide(settings: InventorySettings, recon: Reconciliation, parked: list[Demand], now: datetime, *,
           tags: dict[str, frozenset[str]] | None = None, preordered: dict[str, int] | None = None,
           allowed: dict[str, int] | None = None) -> tuple[list[Decision], list[Conflict]]:
    """Allocate ``recon.unplaced`` and the ``parked`` lines, then settle the positions over stock.

    ``preordered`` / ``allowed``: units of each SKU already taken as pre-orders / beyond stock in earlier runs.
    Returns the decisions (only lines whose state changes) and the oversell conflicts the denials belong to.
    Mutates ``recon.positions`` as lines are allocated.
    """
    tags = tags or {}
    books = _Books(preordered or {}, allowed or {})
    decisions: list[Decision] = []
    conflicts: list[Conflict] = []
    counted = {sku for (sku, _loc), pos in recon.positions.items() if pos.authority is not None}
    counted |= {p.sku for p in settings.preorders}
    orders: dict[tuple[str, str], list[Demand]] = defaultdict(list)
    for line in [*recon.unplaced, *parked]:
        # a SKU no authority counts is not tracked, and a connector that is no channel (the ERP's own sales
        # orders) places and reserves its orders itself: nothing for storesync to decide
        if line.sku in counted and line.connector_id in settings.channels:
            orders[(line.connector_id, line.order_id)].append(line)
    for (_cid, _oid), lines in sorted(orders.items(), key=lambda kv: (min(d.placed_at for d in kv[1]), kv[0])):
        decisions += _place_order(settings, recon, lines, now, tags, books, conflicts)
    decisions += _settle_shortfalls(settings, recon, now, tags, books, conflicts)
    decided = {(d.line.connector_id, d.line.order_id, d.line.sku) for d in decisions}
    recon.unplaced = [d for d in recon.unplaced if (d.connector_id, d.order_id, d.sku) not in decided]
    return decisions, conflicts


def _place_order(settings: InventorySettings, recon: Reconciliation, lines: list[Demand], now: datetime,
                 tags: dict[str, frozenset[str]], books: _Books, conflicts: list[Conflict]) -> list[Decision]:
    candidates = _ranked(settings, lines[0])
    whole = next((loc for loc in candidates if all(_free(recon, d.sku, loc) >= d.quantity for d in lines)), None)
    out: list[Decision] = []
    if whole is not None:
        return [_allocate(recon, d, whole, now) for d in lines]
    used: set[str] = set()
    for d in sorted(lines, key=lambda x: (x.sku, x.order_id)):
        loc = None
        if settings.allocation.split or len(lines) == 1:
            fits = [c for c in candidates if _free(recon, d.sku, c) >= d.quantity]
            fits.sort(key=lambda c: c not in used)  # prefer a location already in use: fewest splits
            if fits and (fits[0] in used or len(used) < settings.allocation.max_splits):
                loc = fits[0]
        if loc is not None:
            used.add(loc)
            out.append(_allocate(recon, d, loc, now))
        else:
            out.extend(_short(settings, recon, d, now, tags, books, conflicts, candidates))
    return [x for x in out if x is not None]


def _allocate(recon: Reconciliation, line: Demand, loc: str, now: datetime) -> Decision:
    pos = recon.positions.get((line.sku, loc)) or recon.positions.setdefault((line.sku, loc), Position(line.sku, loc))
    placed = replace(line, allocated_to=loc, allocated_at=now, state="allocated")
    pos.add(placed)
    event = ARRIVAL_EVENTS.get(line.state or "")
    origin = {"preorder": "preorder", "backordered": "backorder"}.get(line.state or "", "order")
    why = {"preorder": "pre-order stock arrived", "backordered": "backordered stock arrived"}.get(
        line.state or "", "in stock")
    return Decision(line, "allocated", loc, detail=f"allocated to {loc} ({why})", event=event, origin=origin)


def _short(settings: InventorySettings, recon: Reconciliation, line: Demand, now: datetime,
           tags: dict[str, frozenset[str]], books: _Books, conflicts: list[Conflict],
           candidates: list[str]) -> list[Decision]:
    """A line no location can fill now: its policy decides; a parked line stays parked (no new decision)."""
    if line.state in ("preorder", "backordered"):
        return []
    sku_tags = tags.get(line.sku, frozenset())
    pre = next((p for p in settings.preorders if p.sku == line.sku), None)
    if pre is not None:
        if books.preordered[line.sku] + line.quantity <= pre.limit:
            books.preordered[line.sku] += line.quantity
            return [Decision(line, "preorder", pre.pickup_location, pre.expected,
                             f"pre-order {books.preordered[line.sku]} of {pre.limit}", origin="preorder")]
        return [_deny(line, candidates, recon, conflicts, f"over the pre-order limit of {pre.limit}")]
    policy = settings.policy_for(line.sku, sku_tags)
    if policy.oversell == "backorder":
        promise = _promise(settings, line.sku, now)
        return [Decision(line, "backordered", None, promise,
                         f"backordered: waits for incoming stock, promised by {promise.isoformat()}",
                         origin="backorder")]
    if policy.oversell == "allow" and books.allowed[line.sku] + line.quantity <= (policy.allow_limit or 0):
        books.allowed[line.sku] += line.quantity
        return [Decision(line, "allowed", candidates[0] if candidates else None,
                         detail=f"sold beyond stock: {books.allowed[line.sku]} of {policy.allow_limit} allowed")]
    limit = " (over the allow limit)" if policy.oversell == "allow" else ""
    return [_deny(line, candidates, recon, conflicts, f"no location has {line.quantity} in stock{limit}")]


def _deny(line: Demand, candidates: list[str], recon: Reconciliation, conflicts: list[Conflict],
          why: str) -> Decision:
    """Flag the line for cancellation; the conflict lists the lines that took the stock, oldest first."""
    loc = candidates[0] if candidates else "-"
    rivals = sorted((d for c in candidates for d in (recon.positions.get((line.sku, c)) or _EMPTY).demand),
                    key=lambda d: (d.placed_at, d.order_id))
    conflicts.append(Conflict("oversell", line.sku, loc,
                              f"order {line.order_id} ({line.connector_id}) wants {line.quantity}: {why}",
                              orders=(*((d, "within stock") for d in rivals), (line, "beyond stock"))))
    return Decision(line, "denied", None, detail=f"flagged for cancellation: {why}", event="oversell_detected")


def _settle_shortfalls(settings: InventorySettings, recon: Reconciliation, now: datetime,
                       tags: dict[str, frozenset[str]], books: _Books, conflicts: list[Conflict]) -> list[Decision]:
    """Where committed exceeds on hand, the newest lines storesync allocated (web orders) give way, by policy."""
    out: list[Decision] = []
    for pos in recon.positions.values():
        excess = pos.shortfall
        if not excess:
            continue
        for line in sorted(pos.demand, key=lambda d: (d.counted_from, d.order_id), reverse=True):
            if excess <= 0:
                break
            if line.allocated_to is None:  # sold at a till or placed there by its channel: not ours to undo
                continue
            excess -= line.quantity
            pos.uncounted -= line.quantity
            pos.demand.remove(line)  # type: ignore[union-attr]  # a list: the line is in it
            parked = replace(line, allocated_to=None, allocated_at=None, state=None)
            out.extend(_short(settings, recon, parked, now, tags, books, conflicts, [pos.location]))
    return out


def _promise(settings: InventorySettings, sku: str, now: datetime) -> date:
    pre = next((p for p in settings.preorders if p.sku == sku and p.expected), None)
    return pre.expected if pre is not None else (now + timedelta(days=settings.backorder_days)).date()


def _free(recon: Reconciliation, sku: str, loc: str) -> int:
    pos = recon.positions.get((sku, loc))
    return pos.available if pos is not None else 0


def _ranked(settings: InventorySettings, line: Demand) -> list[str]:
    """The locations the line's channel may fill from, best first."""
    channel = settings.channels.get(line.connector_id)
    allowed = list(channel.locations) if channel is not None else list(settings.locations)
    alloc = settings.allocation
    if alloc.strategy == "priority":
        order = {loc: i for i, loc in enumerate(alloc.priority)}
        return sorted(allowed, key=lambda loc: order.get(loc, len(order)))
    pre = next((p for p in settings.preorders if p.sku == line.sku and p.pickup_location), None)
    origin = (line.allocated_to or (pre.pickup_location if pre is not None else None)
              or (settings.canonical_location(line.connector_id, line.location) if line.location else None)
              or allowed[0])
    home = settings.locations[origin]
    return sorted(allowed, key=lambda loc: _km(home, settings.locations[loc]))


def _km(a: object, b: object) -> float:
    """Great-circle distance between two configured locations (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude or 0, a.longitude or 0,  # type: ignore[attr-defined]
                                                b.latitude or 0, b.longitude or 0))  # type: ignore[attr-defined]
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 12_742 * math.asin(math.sqrt(h))


_EMPTY = Position("", "")
