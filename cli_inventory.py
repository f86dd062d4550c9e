"""``storesync inventory``: what the stores hold, what is promised and what can still be sold, and why.

Read-only so far (groundwork of the inventory issue): the numbers come from the reports and open orders already
synced into the store, reconciled by ``core/inventory.py`` under ``[inventory]``. Pushing levels back to the
channels is not built yet.
"""

from __future__ import annotations

import sys
from typing import Any

import click

__all__ = ["inventory"]


@click.group()
def inventory() -> None:
    """Stock per SKU, location and channel, reconciled from every system (read-only for now)."""


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
    if as_json:
        emit_json({"sku": sku, "locations": [_position_json(p) for p in positions], "channels": channels,
                   "conflicts": [_conflict_json(x) for x in result.conflicts]})
        sys.exit(1 if result.conflicts else 0)
    if not positions:
        click.echo(f"{sku}: no stock report and no open order names this SKU at a configured location")
    table(f"{sku} by location", ["location", "authority", "on hand", "committed", "safety stock", "available",
                                  "counted at"],
          [[p.location, p.authority or "no report", p.on_hand,
            f"{p.committed} ({p.reported_committed} reported + {p.uncounted} in newer orders)", p.safety_stock,
            p.available, p.as_of] for p in positions])
    for p in positions:
        for line in sorted(p.demand, key=lambda d: d.placed_at):
            click.echo(f"  {p.location}: order {line.order_id} ({line.connector_id}) placed {line.placed_at} "
                       f"holds {line.quantity}, after the count, so it is committed")
    for channel, spec in settings.channels.items():
        if channel in channels:
            click.echo(f"{channel} can sell {channels[channel]} (from {', '.join(spec.locations)}, less web orders "
                       "not yet placed at a location)")
    for x in result.conflicts:
        click.echo(f"conflict ({x.kind}) at {x.location}: {x.detail}")
        for line, verdict in x.orders:
            click.echo(f"    order {line.order_id} placed {line.placed_at}: {line.quantity} ({verdict})")
    sys.exit(1 if result.conflicts else 0)


@inventory.command("reconcile")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def inventory_reconcile(c: Any, as_json: bool) -> None:
    """Reconcile every SKU: available-to-sell per channel and the conflicts found (nothing is pushed yet).

    Exit codes: 0 no conflict, 1 conflicts found, 2 bad [inventory] settings.
    """
    from .cli import emit_json, table

    _settings, result = _reconcile(c, None)
    kinds: dict[str, int] = {}
    for x in result.conflicts:
        kinds[x.kind] = kinds.get(x.kind, 0) + 1
    if as_json:
        emit_json({"positions": len(result.positions),
                   "available_to_sell": [{"channel": ch, "sku": s, "available": n}
                                         for (ch, s), n in sorted(result.available_to_sell.items())],
                   "conflicts": [_conflict_json(x) for x in result.conflicts]})
    else:
        click.echo(f"{len(result.positions)} SKU-locations reconciled; conflicts: "
                   f"{', '.join(f'{n} {k}' for k, n in sorted(kinds.items())) or 'none'}")
        table("conflicts", ["kind", "sku", "location", "detail"],
              [[x.kind, x.sku, x.location, x.detail] for x in result.conflicts[:50]])
    sys.exit(1 if result.conflicts else 0)


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
