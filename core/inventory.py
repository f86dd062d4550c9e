"""Inventory truth: on hand, committed and available-to-sell per SKU and canonical location, and the conflicts.

Groundwork for the reconciliation of issue 9: the computation over plain records, no store and no CLI yet. It
is the reference for the rules and serves explaining a few SKUs (``inventory show``) well; it is not fast enough
for a whole catalogue (``bench/bench_inventory.py``: about 1.9 s for 10,000 SKUs over 20 locations with 100,000
open lines, so some 20 s and over 1 GiB at ten times that), which should be computed as grouped queries in the
store with only the exceptions brought into Python.

For each (SKU, canonical location) (``[inventory.locations]``, see ``core/inventory_config.py``):

- **on hand** is the authority's latest report (the ERP for the warehouse, the till for a shop floor), as of its
  report time (``as_of``);
- **committed** is what the authority itself reports as committed (Odoo's reserved quantity, Square's
  RESERVED_FOR_SALE) plus the open order lines at that location that the authority has not counted yet. Order
  time against report time decides it, for the orders the authority knows: its own (a till's open order placed
  before the till's count is in the count) and the ones forwarded into it (the ERP reserves them). Another
  channel's order (a web order allocated to a shop floor) is never in the till's count, so it stays committed
  until it is fulfilled;
- **available** is on hand - committed - safety stock (never below zero for selling; the shortfall is a conflict).

Available-to-sell of a channel is the sum of available over the locations it sells from, less its open demand
not yet placed at a location (web orders waiting for allocation) placed after the oldest report it depends on.

Conflicts, with their evidence: ``disagree`` (a non-authority system reports an on hand differing from the
authority's by more than the tolerance), ``oversell`` (committed exceeds on hand; the order lines involved, oldest
first, the ones beyond stock marked), and ``unmapped`` (a report for a location no canonical location claims).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .inventory_config import InventorySettings

__all__ = ["Conflict", "Demand", "LevelReport", "Position", "Reconciliation", "available_to_sell", "reconcile"]


@dataclass(frozen=True, slots=True)
class LevelReport:
    """One system's report of one SKU at one of its locations."""

    connector_id: str
    location: str  # the system's own location id
    sku: str
    on_hand: int | None
    committed: int | None = None
    as_of: datetime | None = None


@dataclass(frozen=True, slots=True)
class Demand:
    """One open order line: a channel's promise of ``quantity`` units of ``sku``."""

    connector_id: str
    order_id: str
    placed_at: datetime
    sku: str
    quantity: int
    location: str | None = None  # the system's own location id, when the order is placed at one (a till sale)
    allocated_to: str | None = None  # the canonical location reconciliation allocated the line to, if it did
    allocated_at: datetime | None = None  # ... and when: from then on the line is demand there
    state: str | None = None  # its allocation state (core/inventory_ledger.py), once reconciliation decided
    forwarded_to: tuple[str, ...] = ()  # connectors the order was written into (the ERP, which reserves it)

    @property
    def counted_from(self) -> datetime:
        """When the line became demand at its location: the order time, or the allocation time."""
        return self.allocated_at or self.placed_at

    def counted_by(self, authority: str | None, as_of: datetime | None) -> bool:
        """Is the line already in ``authority``'s count as of ``as_of``? Only if the authority knows the order (its
        own, or forwarded into it) and it became demand by then; another channel's order never is."""
        known = authority is not None and (authority == self.connector_id or authority in self.forwarded_to)
        return known and as_of is not None and self.counted_from <= as_of


@dataclass(slots=True)
class Position:
    """The reconciled numbers of one SKU at one canonical location, and where they came from."""

    sku: str
    location: str
    on_hand: int = 0
    reported_committed: int = 0
    uncounted: int = 0  # open demand placed after the authority's report
    safety_stock: int = 0
    as_of: datetime | None = None
    authority: str | None = None
    #: the uncounted lines; a position without any shares one empty tuple (most of a catalogue's 2 million)
    demand: list[Demand] | tuple[()] = ()

    def add(self, line: Demand) -> None:
        """Count ``line`` as uncounted demand here."""
        self.uncounted += line.quantity
        if self.demand:
            self.demand.append(line)  # type: ignore[union-attr]
        else:
            self.demand = [line]

    @property
    def committed(self) -> int:
        return self.reported_committed + self.uncounted

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.committed - self.safety_stock)

    @property
    def shortfall(self) -> int:
        return max(0, self.committed - self.on_hand)


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: str  # disagree | oversell | unmapped
    sku: str
    location: str
    detail: str
    evidence: tuple[Any, ...] = ()  # the reports involved
    orders: tuple[tuple[Demand, str], ...] = ()  # oversell: each committed line, oldest first, and its verdict


@dataclass
class Reconciliation:
    positions: dict[tuple[str, str], Position]
    available_to_sell: dict[tuple[str, str], int]  # (channel connector id, sku) -> units
    conflicts: list[Conflict]
    unplaced: list[Demand] = field(default_factory=list)  # open lines at no location, waiting for allocation


def reconcile(settings: InventorySettings, reports: Iterable[LevelReport], demand: Iterable[Demand],
              tags: dict[str, frozenset[str]] | None = None) -> Reconciliation:
    """Reconcile ``reports`` and open ``demand`` under ``settings`` (``tags``: a SKU's product tags)."""
    tags = tags or {}
    positions: dict[tuple[str, str], Position] = {}
    others: dict[tuple[str, str], list[LevelReport]] = defaultdict(list)
    conflicts: list[Conflict] = []
    where = settings.canonical_location
    for report in reports:
        loc = where(report.connector_id, report.location)
        if loc is None:
            conflicts.append(Conflict("unmapped", report.sku, report.location,
                                      f"{report.connector_id} location {report.location!r} is in no "
                                      "[inventory.locations] sources", (report,)))
            continue
        key = (report.sku, loc)
        if report.connector_id != settings.locations[loc].authority:
            if not settings.pushes_to(report.connector_id, loc):  # storesync writes that level: never compared
                others[key].append(report)
            continue
        pos = positions.get(key)
        if pos is None or (report.as_of and (pos.as_of is None or report.as_of > pos.as_of)):
            positions[key] = Position(report.sku, loc, on_hand=report.on_hand or 0,
                                      reported_committed=report.committed or 0, as_of=report.as_of,
                                      authority=report.connector_id)
    unplaced: dict[tuple[str, str], list[Demand]] = defaultdict(list)
    for line in demand:
        if line.state is not None and line.state != "allocated":
            continue  # parked (pre-order, backorder, allowed) or denied: demand at no location
        loc = line.allocated_to or (where(line.connector_id, line.location) if line.location is not None else None)
        if loc is None:
            unplaced[(line.connector_id, line.sku)].append(line)
            continue
        pos = positions.get((line.sku, loc))
        if pos is None:
            pos = positions[(line.sku, loc)] = Position(line.sku, loc)
        if not line.counted_by(pos.authority, pos.as_of):
            pos.add(line)
    for (sku, loc), pos in positions.items():
        pos.safety_stock = settings.safety_stock_for(loc, sku, tags.get(sku, frozenset()))
        for other in others.get((sku, loc), ()):  # the pushed levels are left out: they differ by design
            if other.on_hand is not None and abs(other.on_hand - pos.on_hand) > settings.tolerance:
                conflicts.append(Conflict("disagree", sku, loc,
                                          f"{other.connector_id} reports {other.on_hand} on hand, {pos.authority} "
                                          f"(the authority) {pos.on_hand}", (pos.authority, other)))
        if pos.shortfall:
            conflicts.append(_oversell(pos))
    return Reconciliation(positions, _available_to_sell(settings, positions, unplaced), conflicts,
                          [line for lines in unplaced.values() for line in lines])


def _oversell(pos: Position) -> Conflict:
    """The lines committed at ``pos``, oldest first; the ones past what was on hand are marked beyond stock."""
    left = pos.on_hand - pos.reported_committed
    orders = []
    for line in sorted(pos.demand, key=lambda d: (d.placed_at, d.order_id)):
        left -= line.quantity
        orders.append((line, "beyond stock" if left < 0 else "within stock"))
    return Conflict("oversell", pos.sku, pos.location,
                    f"{pos.committed} committed against {pos.on_hand} on hand ({pos.shortfall} short)",
                    orders=tuple(orders))


def available_to_sell(settings: InventorySettings, recon: Reconciliation) -> dict[tuple[str, str], int]:
    """Available-to-sell per (channel, SKU) again, after ``recon``'s positions and waiting lines changed."""
    unplaced: dict[tuple[str, str], list[Demand]] = defaultdict(list)
    for line in recon.unplaced:
        unplaced[(line.connector_id, line.sku)].append(line)
    return _available_to_sell(settings, recon.positions, unplaced)


def _available_to_sell(settings: InventorySettings, positions: dict[tuple[str, str], Position],
                       unplaced: dict[tuple[str, str], list[Demand]]) -> dict[tuple[str, str], int]:
    by_sku: dict[str, list[Position]] = defaultdict(list)
    for (sku, _loc), pos in positions.items():
        by_sku[sku].append(pos)
    out: dict[tuple[str, str], int] = {}
    for channel, spec in settings.channels.items():
        sells_from = set(spec.locations)
        for sku, held in by_sku.items():
            mine = [p for p in held if p.location in sells_from]
            if not mine:
                continue
            oldest = min((p.as_of for p in mine if p.as_of is not None), default=None)
            waiting = sum(d.quantity for d in unplaced.get((channel, sku), ())
                          if oldest is None or d.counted_from > oldest)
            out[(channel, sku)] = max(0, sum(p.available for p in mine) - waiting)
    return out
