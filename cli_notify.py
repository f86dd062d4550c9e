"""``storesync notify`` and ``storesync messages``: the outbox from the command line. Thin: core does the work.

Exit codes of ``notify``: 0 done; 1 done, but the gateway refused some messages (``messages list --status
failed`` says why); 2 invalid configuration or rules; 3 the gateway failed (messages in doubt are settled on the
next run, never sent twice); 4 another notify run holds the lock.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from .core.notifications import NotifyReport, run_notify
from .core.outbox import list_messages

if TYPE_CHECKING:
    from .cli import Ctx

__all__ = ["messages", "notify"]


def _ui() -> Any:
    """The rendering helpers of ``cli.py`` (imported when a command runs: ``cli.py`` imports this module)."""
    from . import cli

    return cli


@click.command()
@click.option("--dry-run", is_flag=True, help="Plan from new events and show what would be sent; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def notify(c: Ctx, dry_run: bool, as_json: bool) -> None:
    """Turn new events into messages by the [notifications] rules, send them once, read their statuses back.

    \b
    Exit codes: 0 done, 1 the gateway refused some messages, 2 bad configuration or rules,
                3 the gateway failed (settled next run), 4 another notify is running.
    """
    session = c.session()
    report = run_notify(session.host, session.store, dry_run=dry_run)
    if as_json:
        _ui().emit_json(report.as_dict())
    else:
        _render(report)
    sys.exit(report.exit_code)


def _render(report: NotifyReport) -> None:
    ui, d = _ui(), report.delivery
    label = "dry run, nothing sent" if report.dry_run else "done"
    ui.out.print(f"notify via {report.connector_id}: {label}; events new {report.events_new}, "
              f"fanned out {report.events_dispatched}; messages planned {report.planned}", highlight=False)
    if report.dry_run:
        ui.table("would send", ["key", "to", "lang", "status", "segments", "body"],
              [[w["idempotency_key"], w["to"], w["language"], w["detail"] or w["status"],
                f"{w['segments']} ({w['encoding']})", w["body"]] for w in report.would_send])
    else:
        ui.out.print(f"sent {d.sent}, refused {d.failed}, skipped {d.skipped}, expired {d.expired}, in doubt: "
                  f"found at the gateway {d.recovered}, resent {d.requeued}, waiting {d.waiting}; "
                  f"statuses updated {d.statuses_updated}; "
                  f"consent changes {report.consent_changes}", highlight=False)
    if report.error:
        ui.print_error(report.error, report.connector_id)


@click.group()
def messages() -> None:
    """Inspect the outbox."""


@messages.command("list")
@click.option("--status", help="Only messages with this status (pending, queued, delivered, failed, skipped...).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def messages_list(c: Ctx, status: str | None, limit: int, as_json: bool) -> None:
    """List messages, newest first, with status, encoding and the estimated cost in segments."""
    ui, rows = _ui(), list_messages(c.session().store, status=status, limit=limit)
    if as_json:
        return ui.emit_json(rows)
    ui.table("messages", ["id", "key", "to", "lang", "status", "detail", "segments", "provider id", "body"],
          [[r["id"], r["idempotency_key"], r["to"], r["language"], r["status"], _detail(r),
            f"{r['segments']} ({r['encoding']})", r["provider_id"], r["body"]] for r in rows])
    ui.out.print(f"{len(rows)} messages, estimated cost {sum(r['segments'] or 0 for r in rows)} segments",
              highlight=False)


def _detail(row: dict[str, Any]) -> str:
    code = row.get("error_code")
    return " ".join(str(p) for p in (code, row.get("detail")) if p)
