"""``storesync orders``: forward stored orders into a connector that creates them (the ERP), and list them.

Registered on the main command group in ``cli.py``; the work is done by ``core/forwarding.py``. The CLI's
rendering helpers are imported when a command runs: ``cli.py`` imports this module, so a top-level import back
would be circular (``python -m storesync.cli`` runs ``cli.py`` as ``__main__``).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .core.forwarded import STATES
from .core.forwarding import forward_orders, forwarded_rows, forwarders
from .core.report import RunReport

__all__ = ["orders"]


@click.group()
def orders() -> None:
    """Forward web and till orders into the ERP exactly once, and see what became of them."""


@orders.command("forward")
@click.argument("connector_ids", nargs=-1, metavar="[ERP_ID]...")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def orders_forward(c: Any, connector_ids: tuple[str, ...], as_json: bool) -> None:
    """Write the stored orders of the connectors named in `forward_orders_from` into each ERP_ID.

    Default: every enabled connector whose settings have `forward_orders_from`. Orders already created (or
    found by their reference) are not sent again; refused ones (unknown SKUs) are tried again next time.
    """
    from .cli import render_reports

    session = c.session()
    reports = []
    for cid in forwarders(session.host, list(connector_ids) or None):
        report = RunReport(connector_id=cid)
        report.streams = forward_orders(session.host, session.store, cid)
        report.finish()
        reports.append(report)
    if not reports and not as_json:
        click.echo("no connector has forward_orders_from in its settings", err=True)
    render_reports(reports, as_json, c.verbose)
    sys.exit(max((r.exit_code for r in reports), default=0))


@orders.command("forwarded")
@click.argument("connector_id", required=False)
@click.option("--state", type=click.Choice(STATES), help="Only orders in this state.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def orders_forwarded(c: Any, connector_id: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """List forwarded orders: source, reference, the target's id, state and why (newest first)."""
    from .cli import emit_json, table

    rows = forwarded_rows(c.session().store, connector_id, state, limit)
    if as_json:
        return emit_json(rows)
    table("forwarded orders", ["target", "source", "order", "reference", "target id", "state", "attempts", "detail"],
          [[r["connector_id"], r["source_connector_id"], r["source_external_id"], r["reference"], r["target_id"],
            r["state"], r["attempts"], r["detail"]] for r in rows])
