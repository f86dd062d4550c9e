"""``storesync inventory``: what the stores hold, what is promised and what can still be sold, and why.

``show`` and ``conflicts`` read; ``reconcile`` decides (allocations, policies, events, conflicts) and with
``--push`` writes to the channels (``core/inventory_run.py``). The numbers come from the reports and open orders
already synced into the store, reconciled under ``[inventory]``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

__all__ = ["inventory"]


@click.group()
def inventory() -> None:
    """Stock per SKU, location and channel, reconciled from every system, and pushed back to the channels."""


def _reconcile(c: Any, sku: str | None) -> Any:
    from .core.inventory import reconcile
    from .core.inventory_config import inventory_settings
    from .core.inventory_store import load_demand, load_reports

    session = c.session()
    settings = inventory_settings(session.config)
    if not settings.locations:
        raise click.UsageError("plugins.toml has no [inventory.locations]; see the README's [inventory] section")
    return settings, reconcile(settings, load_reports(session.store, sku), load_demand(session.store, sku))


@inventory.command("show")
@click.argument("sku")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def inventory_show(c: Any, sku: str, as_json: bool) -> None:
    """On hand, committed, safety stock and available of SKU at every location and channel, with the orders
    and reports behind each number.

    Exit codes: 0 shown, 1 the SKU has a conflict (systems disagree, or more is promised than held), 2 bad
    [inventory] settings.
    """
    from .cli import emit_json, table

    settings, result = _reconcile(c, sku)
    positions = sorted(result.positions.values(), key=lambda p: p.location)
    channels = {ch: n for (ch, s), n in result.available_to_sell.items() if s == sku}
    decided, pushed = _ledger(c, sku)
    if as_json:
        emit_json({"sku": sku, "locations": [_position_json(p) for p in positions], "channels": channels,
                   "conflicts": [_conflict_json(x) for x in result.conflicts], "orders": decided, "pushed": pushed})
        sys.exit(1 if result.conflicts else 0)
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(c.session().config.storesync.timezone)
    if not positions:
        click.echo(f"{sku}: no stock report and no open order names this SKU at a configured location")
    table(f"{sku} by location", ["location", "authority", "on hand", "committed", "safety stock", "available",
                                  "counted at"],
          [[p.location, p.authority or "no report", p.on_hand,
            f"{p.committed} ({p.reported_committed} reported + {p.uncounted} in newer orders)", p.safety_stock,
            p.available, f"{p.as_of.astimezone(zone):%Y-%m-%d %H:%M:%S}" if p.as_of else ""] for p in positions])
    for p in positions:
        click.echo(_explain(settings, p, zone))
        for line in sorted(p.demand, key=lambda d: d.counted_from):
            how = (f"allocated here by storesync at {line.allocated_at}" if line.allocated_to
                   else f"placed {line.placed_at}, after the count")
            click.echo(f"    order {line.order_id} ({line.connector_id}) holds {line.quantity}: {how}")
    for channel, spec in settings.channels.items():
        if channel in channels:
            click.echo(f"{channel} can sell {channels[channel]} (from {', '.join(spec.locations)}, less web orders "
                       "not yet placed at a location)")
    for row in pushed:
        click.echo(f"{row['channel']} was last set to {row['quantity']} at its location {row['location_id']} "
                   f"({row['pushed_at'].astimezone(zone):%d %b %H:%M})")
    for row in decided:
        if row["state"] != "allocated":
            click.echo(f"order {row['order_id']} ({row['connector_id']}) for {row['quantity']}: {row['detail']}")
    for x in result.conflicts:
        click.echo(f"conflict ({x.kind}) at {x.location}: {x.detail}")
        for line, verdict in x.orders:
            click.echo(f"    order {line.order_id} placed {line.placed_at}: {line.quantity} ({verdict})")
    sys.exit(1 if result.conflicts else 0)


def _explain(settings: Any, p: Any, zone: Any) -> str:
    """One position in a store manager's words, times in the merchant's time zone."""
    name = settings.locations[p.location].name or p.location
    if p.authority is None:
        counted = "nothing has reported a count here"
    elif p.as_of is not None:
        counted = f"{p.authority} counted {p.on_hand} at {p.as_of.astimezone(zone):%d %b %H:%M}"
    else:
        counted = f"{p.authority} counts {p.on_hand}"
    parts = [f"{name}: {counted}"]
    if p.on_hand < 0:
        parts.append(f"below zero: {-p.on_hand} sold there that the count never had (recount the shelf)")
    if p.reported_committed:
        parts.append(f"{p.reported_committed} of them already promised in {p.authority}")
    if p.uncounted:
        parts.append(f"{p.uncounted} more ordered since ({len(p.demand)} order line(s) below)")
    if p.safety_stock:
        parts.append(f"{p.safety_stock} kept back as safety stock")
    tail = f"so {p.available} can be sold"
    if p.committed and p.shortfall:
        tail += f"; {p.shortfall} of the {p.committed} promised are not there"
    return "; ".join(parts) + f"; {tail}."


def _ledger(c: Any, sku: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The SKU's order-line decisions and the levels last pushed for it."""
    import sqlalchemy as sa

    from .core.inventory_ledger import AllocationRow, PushedRow

    a, p = AllocationRow.__table__, PushedRow.__table__  # type: ignore[attr-defined]
    with c.session().store.engine.connect() as conn:
        decided = [dict(r) for r in conn.execute(sa.select(
            a.c.connector_id, a.c.order_id, a.c.quantity, a.c.state, a.c.location, a.c.promise_date, a.c.detail,
            a.c.placed_at).where(a.c.sku == sku).order_by(a.c.placed_at)).mappings()]
        pushed = [dict(r) for r in conn.execute(sa.select(p).where(p.c.sku == sku).order_by(
            p.c.channel, p.c.location_id)).mappings()]
    return decided, pushed


@inventory.command("reconcile")
@click.option("--push", is_flag=True, help="Write available-to-sell to every channel (compare-and-set).")
@click.option("--sku", default=None, help="Only this SKU.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-progress", is_flag=True, help="No progress lines on stderr (none with --json either).")
@click.pass_obj
def inventory_reconcile(c: Any, push: bool, sku: str | None, as_json: bool, no_progress: bool) -> None:
    """Reconcile every SKU: allocate waiting orders, apply the oversell and pre-order policies (events for the
    customers, sent by `storesync notify`), record conflicts and, with --push, write available-to-sell to the
    channels. A push whose compare fails (the channel sold in between) re-syncs that channel and tries again; a
    second run with nothing changed pushes nothing. A conflict whose SKU did not change since the last run is
    not examined again (it stays as stored) until the daily full run.

    Exit codes: 0 done, no open conflict; 1 done, open conflicts remain (see `inventory conflicts --open`);
    2 bad [inventory] settings; 3 some pushes failed or stayed stale after retries.
    """
    from .cli import Steps, emit_json_stream, table
    from .core.inventory_run import run_inventory

    _require_locations(c)
    run = run_inventory(c.session(), push=push, sku=sku, progress=Steps(not (no_progress or as_json)))
    pushed = run.push.as_dict() if run.push is not None else None
    if as_json:
        emit_json_stream({"positions": run.positions,
                          "available_to_sell": ({"channel": ch, "sku": s, "available": n}
                                                for (ch, s), n in sorted(run.recon.available_to_sell.items())),
                          "decisions": (_decision_json(d) for d in run.decisions), "events": run.events,
                          "conflicts": iter(run.conflicts), "cleared": run.cleared,
                          "open_conflicts": run.open_conflicts, "push": pushed,
                          "rounds": run.rounds})
    else:
        kinds: dict[str, int] = {}
        for x in run.conflicts:
            kinds[f"{x['kind']} {x['status']}"] = kinds.get(f"{x['kind']} {x['status']}", 0) + 1
        click.echo(f"{run.positions} SKU-locations reconciled; {len(run.decisions)} order line(s) "
                   f"decided; {run.events} customer event(s) raised; conflicts examined: "
                   f"{', '.join(f'{n} {k}' for k, n in sorted(kinds.items())) or 'none'}"
                   + (f"; {run.cleared} cleared" if run.cleared else "")
                   + f"; {run.open_conflicts} open in all (`inventory conflicts --open`)")
        table("decisions", ["order", "channel", "sku", "qty", "state", "location", "why"],
              [[d.line.order_id, d.line.connector_id, d.line.sku, d.line.quantity, d.state, d.location or "",
                d.detail] for d in run.decisions[:50]])
        table("conflicts", ["kind", "sku", "location", "status", "detail", "resolution"],
              [[x["kind"], x["sku"], x["location"], x["status"], x["detail"], x["resolution"]]
               for x in run.conflicts[:50]])
        if run.push is not None:
            p = run.push
            click.echo(f"push: {len(p.applied)} applied, {p.unchanged} unchanged, {len(p.conflicts)} stale after "
                       f"{run.rounds} round(s), {len(p.failed)} failed"
                       + (f"; re-synced {', '.join(run.resynced)}" if run.resynced else ""))
            for o in [*p.conflicts, *p.failed]:
                click.echo(f"  {o.status}: {o.update.sku} at {o.update.location_id}: {o.detail}", err=True)
            for channel in p.not_pushable:
                click.echo(f"  {channel} cannot take stock levels (no push_inventory); nothing sent", err=True)
    if run.push is not None and (run.push.failed or run.push.conflicts):
        sys.exit(3)
    sys.exit(1 if run.open_conflicts else 0)


@inventory.command("conflicts")
@click.option("--open", "only_open", is_flag=True, help="Only the conflicts not resolved yet.")
@click.option("--sku", default=None, help="Only this SKU.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def inventory_conflicts(c: Any, only_open: bool, sku: str | None, as_json: bool) -> None:
    """Conflicts found by `inventory reconcile` and how each was resolved, newest first.

    Exit codes: 0 listed (none open with --open); 1 open conflicts listed with --open.
    """
    import sqlalchemy as sa

    from .cli import emit_json, table
    from .core.inventory_ledger import ConflictRow

    t = ConflictRow.__table__  # type: ignore[attr-defined]
    query = sa.select(t).order_by(t.c.last_seen.desc(), t.c.id.desc())
    if only_open:
        query = query.where(t.c.status == "open")
    if sku is not None:
        query = query.where(t.c.sku == sku)
    with c.session().store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    if as_json:
        emit_json(rows)
    else:
        table(f"{len(rows)} conflict(s)", ["kind", "sku", "location", "status", "first seen", "detail", "resolution"],
              [[r["kind"], r["sku"], r["location"], r["status"], r["first_seen"], r["detail"], r["resolution"] or ""]
               for r in rows])
        for r in rows:
            for o in r["orders"] or []:
                click.echo(f"  {r['sku']} {r['location']}: order {o['order_id']} ({o['connector_id']}) placed "
                           f"{o['placed_at']}: {o['quantity']} ({o['verdict']})")
    sys.exit(1 if only_open and rows else 0)


def _require_locations(c: Any) -> None:
    from .core.inventory_config import inventory_settings

    if not inventory_settings(c.session().config).locations:
        raise click.UsageError("plugins.toml has no [inventory.locations]; see the README's [inventory] section")


def _decision_json(d: Any) -> dict[str, Any]:
    return {"connector_id": d.line.connector_id, "order_id": d.line.order_id, "sku": d.line.sku,
            "quantity": d.line.quantity, "state": d.state, "location": d.location,
            "promise_date": d.promise_date, "detail": d.detail, "event": d.event}


def _position_json(p: Any) -> dict[str, Any]:
    return {"location": p.location, "authority": p.authority, "on_hand": p.on_hand, "committed": p.committed,
            "reported_committed": p.reported_committed, "uncounted": p.uncounted, "safety_stock": p.safety_stock,
            "available": p.available, "as_of": p.as_of,
            "orders": [{"connector_id": d.connector_id, "order_id": d.order_id, "placed_at": d.placed_at,
                        "quantity": d.quantity} for d in p.demand]}


def _conflict_json(x: Any) -> dict[str, Any]:
    orders = [{"order_id": line.order_id, "placed_at": line.placed_at, "quantity": line.quantity,
               "verdict": verdict} for line, verdict in x.orders]
    return {"kind": x.kind, "sku": x.sku, "location": x.location, "detail": x.detail, "orders": orders}
