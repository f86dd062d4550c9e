"""One inventory run: reconcile, allocate and apply policies, record conflicts and events, push to the channels.

``run_inventory`` is what ``storesync inventory reconcile [--push]`` does (and what the demo and the webhook
server call for a few SKUs):

1. read the stored reports and open lines (``core/inventory_store.py``) and reconcile them (``core/inventory.py``);
2. allocate waiting lines and settle shortfalls by policy (``core/inventory_policy.py``), saving each decision
   in ``inventory_allocation`` and raising the customer events (``oversell_detected``, ``backorder_allocated``,
   ``preorder_stock_arrived``) into the event table, from which ``storesync notify`` sends the texts;
3. record the conflicts in ``inventory_conflict``: still open, resolved by a policy (how, in words), or cleared;
4. with ``push``, send every channel its available-to-sell (``core/inventory_push.py``). A failed compare means
   the channel sold in between: the channel is synced again, everything computed again, and the push retried
   (at most ``PUSH_ROUNDS`` times), so the new sale is counted rather than overwritten.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .events import order_data, record_events
from .inventory import Conflict, Position, Reconciliation, available_to_sell, reconcile
from .inventory_config import InventorySettings, LocationSettings, inventory_settings
from .inventory_ledger import AllocationRow, ConflictRow, upsert_rows
from .inventory_policy import Decision, decide
from .inventory_push import PushSummary, Target, channel_targets, push_targets
from .inventory_store import (VariantMaps, bulk_targets, channel_items, channel_levels, channel_totals,
                              iter_reports, load_demand, pending_skus, recent_sales, sku_titles, variant_skus,
                              wanted_skus)
from .models import Event
from .tables import ENTITY_TABLES, ORDER_LINE_TABLE

__all__ = ["InventoryRun", "run_inventory"]

PUSH_ROUNDS = 3
#: decisions written per batch (``_save_decisions``)
SAVE_BATCH = 10_000
#: the advisory lock key of inventory decisions on PostgreSQL (any fixed 64-bit number; "storesyn" in ASCII)
_LOCK_KEY = 0x73746F726573796E
_ALLOC = AllocationRow.__table__  # type: ignore[attr-defined]
_CONFLICT = ConflictRow.__table__  # type: ignore[attr-defined]


@dataclass
class InventoryRun:
    settings: InventorySettings
    recon: Reconciliation
    decisions: list[Decision]
    conflicts: list[dict[str, Any]]  # as stored: kind, sku, location, detail, orders, status, resolution
    cleared: int
    targets: list[Target]
    events: int
    positions: int = 0  # SKU-locations reconciled
    levels: dict[tuple[str, str, str], tuple[int, Any]] = field(default_factory=dict)  # the channels' reports
    open_conflicts: int = 0  # stored and open when the run ended (of its SKU, or of the whole catalogue)
    push: PushSummary | None = None
    rounds: int = 1
    resynced: list[str] = field(default_factory=list)


def run_inventory(session: Any, *, push: bool = False, sku: str | None = None,
                  now: datetime | None = None, progress: Callable[[str], None] | None = None) -> InventoryRun:
    """Reconcile (one ``sku`` or all), decide, record and, with ``push``, push; see the module docstring.

    The whole catalogue (no ``sku``) is reconciled in the database (``core/inventory_bulk.py``, only the SKUs that
    changed since the last run); the reference rules then decide only the SKUs that need a decision (orders
    waiting for a location, parked pre-orders and backorders, oversells and other conflicts, pre-order and
    ``allow`` SKUs), and the database brings their positions and targets up to date after. ``progress`` is told
    each step of the work, in words (the command prints them: a first run on a large store takes minutes)."""
    settings = inventory_settings(session.config)
    say = progress or _quiet
    run = _run_once(session, settings, sku, now, push, say)
    if not push:
        return run
    for round_no in range(1, PUSH_ROUNDS + 1):
        run.rounds = round_no
        stamp = now or datetime.now(UTC)
        say(f"pushing {len(run.targets):,} channel level(s) (round {round_no})")
        summary = push_targets(session.host, session.store, run.targets, run.levels, stamp)
        if run.push is not None:  # keep what earlier rounds applied
            summary.applied = run.push.applied + summary.applied
        run.push = summary
        if not summary.conflicts or round_no == PUSH_ROUNDS:
            break
        stale = sorted({_channel_of(run.targets, o.update) for o in summary.conflicts})
        say(f"{len(summary.conflicts)} push(es) stale: syncing {', '.join(stale)} again")
        session.sync(stale, streams=None, full_refresh=False, dry_run=False, remap=False, progress=False)
        previous, run = run, _run_once(session, settings, sku, now, push, say)
        run.push, run.resynced = previous.push, sorted({*previous.resynced, *stale})
        run.decisions, run.events = previous.decisions + run.decisions, previous.events + run.events
    return run


def _quiet(_message: str) -> None:
    pass


def _run_once(session: Any, settings: InventorySettings, sku: str | None, now: datetime | None,
              push: bool, say: Callable[[str], None]) -> InventoryRun:
    if sku is None:
        return _catalogue(session, settings, now, push, say)
    return _once(session, settings, sku, now or datetime.now(UTC), push=push, answers=sku, say=say)


def _catalogue(session: Any, settings: InventorySettings, now: datetime | None, push: bool,
               say: Callable[[str], None]) -> InventoryRun:
    """Every SKU: the database's positions and targets, the reference's decisions where one is needed; to push,
    also the database's targets that differ from what was pushed, with their channels' levels."""
    from .inventory_bulk import FULL_ABOVE, exception_skus, reconcile_bulk, refresh

    store = session.store
    say("reconciling the catalogue in the database")
    bulk = refresh(store, settings)
    say(f"{bulk.skus_recomputed:,} SKU(s) recomputed ({'all' if bulk.full else 'changed since the last run'}); "
        f"{sum(bulk.exceptions.counts.values()):,} exception(s)")
    with store.engine.connect() as conn:
        focus = pending_skus(conn, settings.source_index, sorted(settings.channels))
    # after a full refresh every exception (capped per kind); else only the changed SKUs' (all of them): an
    # unchanged SKU's exception was explained, and settled, by an earlier run
    exceptions = bulk.exceptions.all_skus() if bulk.skus is None else exception_skus(store, bulk.skus)
    focus |= exceptions | {p.sku for p in settings.preorders}
    focus |= {rule.sku for rule in settings.policies if rule.sku is not None and rule.oversell == "allow"}
    # the stored conflicts this run answers for: every one after a full refresh, else those of the SKUs it
    # decides and of the SKUs that changed (one no longer an exception is cleared); the others stand as stored
    answers = None if bulk.skus is None else focus | bulk.skus
    say(f"deciding {len(focus):,} SKU(s): waiting and parked orders, conflicts, pre-order and allow SKUs")
    run = _once(session, settings, focus, now or datetime.now(UTC), push=push, answers=answers, say=say)
    # the positions are stored (inventory_position); the run reports what it decided, and a first run's
    # positions of every SKU with a waiting order (millions) are not kept alive for that
    run.recon.positions = {}
    # the allocations just made move demand: the decided SKUs' positions and targets again (only theirs: a run
    # started soon after another would otherwise recompute all that one decided, its look-back finding it)
    decided = {d.line.sku for d in run.decisions}
    if decided:
        say(f"updating the positions of the {len(decided):,} SKU(s) the decisions moved")
        reconcile_bulk(store, settings, None if len(decided) > FULL_ABOVE else decided)
    if push:
        say("reading the channel levels that differ from the last push")
        more = bulk_targets(store, exclude=focus)
        run.targets += more
        run.levels.update(channel_levels(store, sorted(settings.channels), {t.sku for t in more}))
    run.positions = bulk.positions
    run.recon.available_to_sell = {**channel_totals(store, exclude=focus), **run.recon.available_to_sell}
    return run


def _once(session: Any, settings: InventorySettings, sku: str | set[str] | None, now: datetime, *,
          push: bool = True, answers: str | set[str] | None, say: Callable[[str], None] = _quiet) -> InventoryRun:
    """Read, decide and record in ONE transaction under the inventory lock, so two runs (or a run and the webhook
    server) never hand the same last unit to two orders: the second one reads the first one's decisions. The
    channels' levels and the targets are read and computed only to ``push``."""
    store = session.store
    with store.engine.begin() as conn:
        _lock(conn, sku)
        variants = variant_skus(conn)  # read once for the reports, the demand and the sales evidence
        demand = load_demand(conn, sku, variants=variants)
        parked = [d for d in demand if d.state in ("preorder", "backordered")]
        say(f"reconciling their reports with {len(demand):,} open order line(s)")
        recon = reconcile(settings, iter_reports(conn, sku, variants=variants), demand)
        del demand  # the lines counted already are not needed again (the rest are in recon)
        preordered, allowed = _books(conn, sku)
        say(f"allocating {len(recon.unplaced):,} waiting line(s) first come, first served")
        decisions, extra = decide(settings, recon, parked, now, preordered=preordered, allowed=allowed)
        allowance = _allowance(settings, recon, preordered, allowed, decisions)
        recon.available_to_sell = {key: n + allowance.get(key[1], 0)
                                   for key, n in available_to_sell(settings, recon).items()}
        levels: dict[tuple[str, str, str], tuple[int, Any]] = {}
        targets: list[Target] = []
        if push:
            skus, channels = wanted_skus(sku), sorted(settings.channels)
            items = channel_items(conn, channels, skus)
            levels = channel_levels(conn, channels, skus, items)
            targets = channel_targets(settings, recon, items, allowance, set(levels))
        say(f"writing {len(decisions):,} decision(s)")
        _save_decisions(conn, decisions, now)
        events = record_events(conn, _events(conn, settings, decisions, now), now)
        found = [*recon.conflicts, *extra]
        say(f"recording {len(found):,} conflict(s) with their evidence")
        stored, cleared = _save_conflicts(conn, recon, found, decisions, answers, now,
                                          _sales(conn, settings, recon, found, now, variants))
        still_open = _open_conflicts(conn, answers if isinstance(answers, str) else None)
    return InventoryRun(settings, recon, decisions, stored, cleared, targets, events, positions=len(recon.positions),
                        levels=levels, open_conflicts=still_open)


def _lock(conn: Any, sku: str | set[str] | None) -> None:
    """PostgreSQL: a transaction advisory lock, exclusive on the whole catalogue for a full run, or shared on it
    and exclusive on the one SKU. SQLite: every write transaction is BEGIN IMMEDIATE, one at a time already."""
    if conn.dialect.name != "postgresql":
        return
    if sku is None or not isinstance(sku, str):
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    else:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": _LOCK_KEY})
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"storesync-inventory:{sku}"})


def _books(conn: Any, sku: str | set[str] | None) -> tuple[dict[str, int], dict[str, int]]:
    """Units already taken as pre-orders, and sold beyond stock under ``allow``, per SKU."""
    query = sa.select(_ALLOC.c.sku, _ALLOC.c.state, _ALLOC.c.origin, sa.func.sum(_ALLOC.c.quantity)).group_by(
        _ALLOC.c.sku, _ALLOC.c.state, _ALLOC.c.origin)
    if sku is not None:
        query = query.where(_ALLOC.c.sku.in_(sorted({sku} if isinstance(sku, str) else sku)))
    preordered: dict[str, int] = defaultdict(int)
    allowed: dict[str, int] = defaultdict(int)
    for s, state, origin, units in conn.execute(query):
        if origin == "preorder" and state != "denied":
            preordered[s] += int(units)
        if state == "allowed":
            allowed[s] += int(units)
    return preordered, allowed


def _allowance(settings: InventorySettings, recon: Reconciliation, preordered: dict[str, int],
               allowed: dict[str, int], decisions: list[Decision]) -> dict[str, int]:
    """Units a channel may still sell beyond stock: the rest of a pre-order limit or of an ``allow`` limit."""
    taken_pre, taken_allow = defaultdict(int, preordered), defaultdict(int, allowed)
    for d in decisions:
        if d.state == "preorder":
            taken_pre[d.line.sku] += d.line.quantity
        elif d.state == "allowed":
            taken_allow[d.line.sku] += d.line.quantity
    out = {p.sku: max(0, p.limit - taken_pre[p.sku]) for p in settings.preorders}
    for sku in {s for s, _loc in recon.positions}:
        policy = settings.policy_for(sku)
        if policy.oversell == "allow" and sku not in out:
            out[sku] = max(0, (policy.allow_limit or 0) - taken_allow[sku])
    return out


def _save_decisions(conn: Any, decisions: list[Decision], now: datetime) -> None:
    """Each decision onto its line's allocation row. A stored line decided as a plain order keeps the origin it
    was taken with (a pre-order stays one when its stock arrives). A line decided twice (allocated, then given
    way in a same-minute race) keeps the later decision. Written ``SAVE_BATCH`` lines at a time: a first run
    decides every waiting line of the catalogue (hundreds of thousands), and their rows need not all be built
    at once."""
    last = {(d.line.connector_id, d.line.order_id, d.line.sku): d for d in decisions}
    latest = list(last.values())
    del last
    for start in range(0, len(latest), SAVE_BATCH):
        rows = []
        for d in latest[start:start + SAVE_BATCH]:
            line = d.line
            keys = {"connector_id": line.connector_id, "order_id": line.order_id, "sku": line.sku}
            values = {"quantity": line.quantity, "placed_at": line.placed_at, "state": d.state,
                      "location": d.location, "promise_date": d.promise_date, "detail": d.detail, "updated_at": now}
            if d.origin != "order":
                values["origin"] = d.origin
            rows.append((keys, values, {"origin": d.origin}))
        upsert_rows(conn, _ALLOC, ("connector_id", "order_id", "sku"), rows)


def _events(conn: Any, settings: InventorySettings, decisions: list[Decision], now: datetime) -> list[Event]:
    """One event per decision a customer should hear about, with the order's recipient fields."""
    wanted = [d for d in decisions if d.event]
    if not wanted:
        return []
    orders, lines = ENTITY_TABLES["order"], ORDER_LINE_TABLE
    titles = sku_titles(conn, {d.line.sku for d in wanted})
    out = []
    for d in wanted:
        row = conn.execute(sa.select(orders).where(orders.c.connector_id == d.line.connector_id,
                                                   orders.c.external_id == d.line.order_id)).mappings().first()
        if row is None:
            continue
        order_lines = conn.execute(sa.select(lines.c.title, lines.c.sku, lines.c.quantity).where(
            lines.c.order_id == row["id"]).order_by(lines.c.position)).all()
        data = order_data(conn, row, list(order_lines))
        pickup = next((p.pickup_location for p in settings.preorders if p.sku == d.line.sku and p.pickup_location),
                      d.location) if d.event == "preorder_stock_arrived" else d.location
        place = settings.locations[pickup].name or pickup if pickup in settings.locations else pickup
        data.update(sku=d.line.sku, sku_title=titles.get(d.line.sku, d.line.sku), quantity=d.line.quantity,
                    pickup_location=place, location=place,
                    promise_date=d.promise_date.isoformat() if d.promise_date else None, detail=d.detail)
        out.append(Event(type=d.event, id=f"{d.event}:{d.line.connector_id}:{d.line.order_id}:{d.line.sku}",
                         occurred_at=now, data=data))
    return out


def _sales(conn: Any, settings: InventorySettings, recon: Reconciliation, found: list[Conflict],
           now: datetime, variants: VariantMaps) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """For each oversold (SKU, location): the sales made there lately, oldest first, each marked within or beyond
    the stock there was before them (counted back from the authority's on hand)."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    oversold: dict[str, set[str]] = defaultdict(set)  # location -> SKUs oversold there
    for x in found:
        if x.kind == "oversell" and x.location in settings.locations:
            oversold[x.location].add(x.sku)
    since = now - timedelta(hours=settings.evidence_hours)
    for loc, skus in oversold.items():  # one read of the location's recent sales for all its oversold SKUs
        spec = settings.locations[loc]
        for sku, sales in recent_sales(conn, skus, spec.sources, since, variants).items():
            out[(sku, loc)] = _sales_evidence(spec, recon.positions.get((sku, loc)), sales)
    return out


def _sales_evidence(spec: LocationSettings, pos: Position | None, sales: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Each sale marked within or beyond the stock there was before it (counted back from the authority's on
    hand)."""
    mine = [s for s in sales if s[0] == spec.authority and s[4] != "open"]  # already out of its count
    left = (pos.on_hand if pos is not None else 0) + sum(s[3] for s in mine)
    rows = []
    for cid, oid, placed, qty, status in sales:
        verdict = f"{status} order"
        if cid == spec.authority and status != "open":
            left -= qty
            verdict = "sold here, within stock" if left >= 0 else "sold here, beyond the stock there was"
        rows.append({"connector_id": cid, "order_id": oid, "placed_at": placed.isoformat(), "quantity": qty,
                     "verdict": verdict})
    return rows


def _save_conflicts(conn: Any, recon: Reconciliation, found: list[Conflict], decisions: list[Decision],
                    answers: str | set[str] | None, now: datetime, sales: dict[tuple[str, str], list[dict[str, Any]]]
                    ) -> tuple[list[dict[str, Any]], int]:
    """Upsert the conflicts found (merged per kind, SKU and location); mark the ones gone as cleared: of the SKU
    or SKUs ``answers`` names (None: of every SKU)."""
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for x in found:
        key = (x.kind, x.sku, x.location)
        orders = [{"connector_id": d.connector_id, "order_id": d.order_id, "placed_at": d.placed_at.isoformat(),
                   "quantity": d.quantity, "verdict": verdict} for d, verdict in x.orders]
        if key in merged:
            seen = {(o["connector_id"], o["order_id"]) for o in merged[key]["orders"]}
            merged[key]["orders"] += [o for o in orders if (o["connector_id"], o["order_id"]) not in seen]
            merged[key]["detail"] += f"; {x.detail}"
        else:
            merged[key] = {"kind": x.kind, "sku": x.sku, "location": x.location, "detail": x.detail,
                           "orders": orders}
    handled: dict[str, list[str]] = defaultdict(list)
    for d in decisions:
        if d.state != "allocated":
            handled[d.line.sku].append(f"order {d.line.order_id} ({d.line.connector_id}) {d.detail}")
    t, rows = _CONFLICT, []
    for key, c in merged.items():
        kind, s, loc = key
        listed = {(o["connector_id"], o["order_id"]) for o in c["orders"]}
        c["orders"] += [o for o in sales.get((s, loc), []) if (o["connector_id"], o["order_id"]) not in listed]
        c["orders"].sort(key=lambda o: o["placed_at"])
        pos = recon.positions.get((s, loc))
        settled = kind == "oversell" and (pos is None or pos.shortfall == 0)
        c["status"] = "resolved" if settled else "open"
        c["resolution"] = ("; ".join(handled[s]) or "no longer short") if settled else (
            "; ".join(handled[s]) + "; still short: " if handled[s] else "") + _advice(kind, pos)
        values = {"detail": c["detail"], "orders": c["orders"], "status": c["status"],
                  "resolution": c["resolution"], "last_seen": now, "resolved_at": now if settled else None}
        rows.append(({"kind": kind, "sku": s, "location": loc}, values, {"first_seen": now}))
    upsert_rows(conn, t, ("kind", "sku", "location"), rows)
    gone = sa.update(t).where(t.c.status == "open", t.c.last_seen < now).values(
        status="resolved", resolution="cleared: the systems agree again", resolved_at=now)
    if answers is None:
        return list(merged.values()), conn.execute(gone).rowcount
    if isinstance(answers, str):
        return list(merged.values()), conn.execute(gone.where(t.c.sku == answers)).rowcount
    ordered, cleared = sorted(answers), 0
    for start in range(0, len(ordered), 500):
        cleared += conn.execute(gone.where(t.c.sku.in_(ordered[start:start + 500]))).rowcount
    return list(merged.values()), cleared


def _open_conflicts(conn: Any, sku: str | None) -> int:
    """Conflicts stored open (of ``sku``, or of every SKU)."""
    t = _CONFLICT
    query = sa.select(sa.func.count()).select_from(t).where(t.c.status == "open")
    return conn.execute(query if sku is None else query.where(t.c.sku == sku)).scalar_one()


def _advice(kind: str, pos: Any) -> str:
    if kind == "oversell":
        short = pos.shortfall if pos is not None else 0
        return (f"{short} unit(s) sold beyond the count at the till or by the authority itself: recount the "
                "shelf or cancel one of the orders by hand")
    if kind == "disagree":
        return "two systems count this location differently: count it and correct the one that is wrong"
    return "add the location to [inventory.locations] sources, or ignore it"


def _channel_of(targets: list[Target], update: Any) -> str:
    return next(t.channel for t in targets
                if t.item_id == update.item_id and t.location_id == update.location_id and t.sku == update.sku)
