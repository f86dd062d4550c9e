"""``storesync runs``: the run report of each sync, newest first. Thin: core/runstats.py reads the store.

Exit codes: 0 shown; 2 invalid configuration or store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .core.runstats import run_reports

if TYPE_CHECKING:
    from .cli import Ctx

__all__ = ["runs"]

COLUMNS = ["id", "connector_id", "status", "started_at", "seconds", "records_read", "records_written",
           "quarantined", "http_requests", "http_retries", "last_error"]


def _ui() -> Any:
    """The rendering helpers of ``cli.py`` (imported when the command runs: ``cli.py`` imports this module)."""
    from . import cli

    return cli


@click.command()
@click.argument("connector_id", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every column).")
@click.pass_obj
def runs(c: Ctx, connector_id: str | None, limit: int, as_json: bool) -> None:
    """Show the latest sync runs with their report: duration, records, HTTP requests and retries, last error.

    A run still 'running' with no finish time was killed or is in progress (see docs/operations.md). The
    'last retry' column of --json is the last transient error the run recovered from.

    \b
    Exit codes: 0 shown, 2 invalid configuration or store.
    """
    rows = run_reports(c.session().store.engine, connector_id, limit)
    ui = _ui()
    if as_json:
        return ui.emit_json(rows)
    ui.table("runs", ["run", "connector", "status", "started", "seconds", "read", "written", "quarantined",
                      "requests", "retries", "last error"], [[r[k] for k in COLUMNS] for r in rows])
