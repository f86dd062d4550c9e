"""The ``storesync`` command: parses, calls core, renders. No business logic here.

Exit codes: 0 success; 1 finished with quarantined records (or a mapping apply with failures); 2 invalid
configuration, mapping or store URL; 3 a connector failed; 4 another run holds the connector's lock.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__
from .core import operations as ops
from .core.errors import StoresyncError
from .core.logjson import json_logging_enabled, log_error, setup_logging

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


class Ctx:
    """What the global options leave for the commands."""

    def __init__(self, config: str | None, verbose: int) -> None:
        self.config_path = config
        self.verbose = verbose

    def session(self) -> ops.Session:
        return ops.Session.open(self.config_path)


pass_ctx = click.make_pass_decorator(Ctx)


class Steps:
    """Progress of a long command: one line per step on stderr, with the time since the start."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            click.echo(f"[{time.perf_counter() - self.started:6.1f}s] {message}", err=True)


def emit_json(data: Any) -> None:
    sys.stdout.write(_json_text(data) + "\n")


def emit_json_stream(fields: dict[str, Any]) -> None:
    """``emit_json`` of an object whose values may be iterators, each written item by item as a JSON array: the
    same text, but a large list (a first inventory run decides hundreds of thousands of lines) is never one
    string, nor one list of dicts."""
    write = sys.stdout.write
    write("{")
    for n, (key, value) in enumerate(fields.items()):
        write(("," if n else "") + "\n  " + _json_text(key) + ": ")
        if not isinstance(value, Iterator):
            write(_json_text(value).replace("\n", "\n  "))
            continue
        empty = True
        for item in value:
            write(("[" if empty else ",") + "\n    " + _json_text(item).replace("\n", "\n    "))
            empty = False
        write("[]" if empty else "\n  ]")
    write("\n}\n" if fields else "}\n")


def _json_text(data: Any) -> str:
    return orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2).decode()


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    out.print(t)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="storesync")
@click.option("--config", "config", metavar="FILE", envvar="STORESYNC_CONFIG",
              help="plugins.toml to use (default: $STORESYNC_CONFIG, then ./plugins.toml).")
@click.option("-v", "--verbose", count=True, help="More logging; tracebacks on errors.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="STORESYNC_LOG_FORMAT",
              help="Logs on stderr as text, or one JSON object per line (with connector and run id).")
@click.pass_context
def cli(ctx: click.Context, config: str | None, verbose: int, log_format: str) -> None:
    """storesync keeps a merchant's web shop, tills, ERP and SMS gateway in agreement.

    \b
    Exit codes: 0 ok, 1 quarantined records, 2 bad configuration,
                3 a connector failed, 4 locked by another run.
    """
    setup_logging(log_format, verbose)  # core/logjson.py
    ctx.obj = Ctx(config, verbose)


# -- plugins, config, status --------------------------------------------------------------------------------

@cli.group()
def plugins() -> None:
    """Inspect the loaded plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def plugins_list(c: Ctx, as_json: bool) -> None:
    """List plugins with their connector types, version, distribution, capabilities and streams."""
    rows = c.session().plugin_rows()
    if as_json:
        return emit_json(rows)
    table("plugins", ["plugin", "distribution", "version", "connector type", "capabilities", "streams"],
          [[r["plugin"], r["distribution"], r["version"], r["connector_type"], ", ".join(r["capabilities"]),
            ", ".join(r["streams"])] for r in rows])


@cli.group()
def config() -> None:
    """Validate the configuration."""


@config.command("check")
@pass_ctx
def config_check(c: Ctx) -> None:
    """Validate plugins.toml, every connector's settings and every mapping it references (exit 2 if invalid)."""
    summary = c.session().check_config()
    out.print(summary)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def status(c: Ctx, as_json: bool) -> None:
    """Show recent runs, cursors and quarantine counts."""
    data = c.session().store.status()
    if as_json:
        return emit_json(data)
    out.print(f"store: {data['database']}")
    table("records", ["entity", "rows"], [[k, v] for k, v in data["records"].items()])
    table("recent runs", ["run", "connector", "status", "started", "finished", "error"],
          [[r["id"], r["connector_id"], r["status"], r["started_at"], r["finished_at"], r["error"]]
           for r in data["runs"]])
    table("cursors", ["connector", "stream", "updated"], [[r["connector_id"], r["stream"], r["updated_at"]]
                                                          for r in data["cursors"]])
    table("quarantine", ["connector", "stream", "records"],
          [[q["connector_id"], q["stream"], q["count"]] for q in data["quarantine"]])


# -- sync and quarantine ------------------------------------------------------------------------------------

@cli.command()
@click.argument("connector_ids", nargs=-1, metavar="[CONNECTOR_ID]...")
@click.option("--stream", "streams", multiple=True, help="Only this stream (repeatable).")
@click.option("--full-refresh", is_flag=True, help="Ignore saved cursors and read everything.")
@click.option("--dry-run", is_flag=True, help="Read, map and compare, but write nothing.")
@click.option("--remap", is_flag=True, help="Re-apply the current mappings to stored raw records; no API calls.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-progress", is_flag=True, help="No live progress line, even on a terminal.")
@pass_ctx
def sync(c: Ctx, connector_ids: tuple[str, ...], streams: tuple[str, ...], full_refresh: bool, dry_run: bool,
         remap: bool, as_json: bool, no_progress: bool) -> None:
    """Sync connectors (default: every enabled one) into the store."""
    reports = c.session().sync(list(connector_ids) or None, streams=list(streams) or None,
                               full_refresh=full_refresh, dry_run=dry_run, remap=remap,
                               progress=not (no_progress or as_json))
    render_reports(reports, as_json, c.verbose)
    sys.exit(max((r.exit_code for r in reports), default=0))


def render_reports(reports: list[Any], as_json: bool, verbose: int) -> None:
    if as_json:
        return emit_json([r.as_dict() for r in reports])
    cols = ["stream", "target", "read", "inserted", "updated", "unchanged", "deleted", "quarantined", "seconds"]
    for r in reports:
        table(f"{r.connector_id}: {r.status}", cols, [[getattr(s, k) for k in cols] for s in r.streams])
        for s in r.streams:
            if s.error:
                print_error(s.error, f"{r.connector_id}/{s.stream}")
        if r.error:
            print_error(r.error, r.connector_id)
        if verbose and r.exception is not None:
            traceback.print_exception(r.exception, file=sys.stderr)


@cli.group()
def quarantine() -> None:
    """Inspect and replay records that failed mapping or validation."""


@quarantine.command("list")
@click.argument("connector_id", required=False)
@click.option("--stream", help="Only this stream.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with raw payloads).")
@pass_ctx
def quarantine_list(c: Ctx, connector_id: str | None, stream: str | None, limit: int, as_json: bool) -> None:
    """List quarantined records with the reason."""
    rows = c.session().store.quarantined(connector_id, stream, limit)
    if as_json:
        return emit_json(rows)
    table("quarantine", ["connector", "stream", "record", "field", "reason", "attempts", "last seen"],
          [[r["connector_id"], r["stream"], r["record_key"], r["field"], r["reason"], r["attempts"],
            r["last_seen"]] for r in rows])


@quarantine.command("retry")
@click.argument("connector_ids", nargs=-1, metavar="[CONNECTOR_ID]...")
@click.option("--stream", help="Only this stream.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def quarantine_retry(c: Ctx, connector_ids: tuple[str, ...], stream: str | None, as_json: bool) -> None:
    """Replay quarantined records through the current mapping (after you fixed it)."""
    reports = c.session().retry_quarantine(list(connector_ids) or None, stream)
    render_reports(reports, as_json, c.verbose)
    sys.exit(max((r.exit_code for r in reports), default=0))


# -- mappings -----------------------------------------------------------------------------------------------

@cli.group()
def mappings() -> None:
    """Check and try mappings without a server."""


@mappings.command("check")
@click.argument("connector_ids", nargs=-1, metavar="[CONNECTOR_ID]...")
@pass_ctx
def mappings_check(c: Ctx, connector_ids: tuple[str, ...]) -> None:
    """Compile the mappings of the given (default: all) connectors; exit 2 on any error."""
    for line in c.session().check_mappings(list(connector_ids) or None):
        out.print(line, highlight=False)


@mappings.command("apply")
@click.argument("connector_id")
@click.argument("stream")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Raw records: a JSON array, a JSON object holding one array, or JSON Lines.")
@pass_ctx
def mappings_apply(c: Ctx, connector_id: str, stream: str, input_path: Path) -> None:
    """Map raw records: canonical JSON Lines on stdout, failures as JSON lines on stderr (exit 1 if any)."""
    failed = 0
    for ok, data in c.session().apply_mapping(connector_id, stream, input_path):
        stream_out = sys.stdout if ok else sys.stderr
        stream_out.write(orjson.dumps(data, default=str).decode() + "\n")
        failed += not ok
    sys.exit(1 if failed else 0)


@mappings.command("preview")
@click.argument("connector_id")
@click.argument("stream")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True)
@pass_ctx
def mappings_preview(c: Ctx, connector_id: str, stream: str, limit: int) -> None:
    """Read live from the connector and print what the first records become; writes nothing."""
    failed = 0
    for ok, data in c.session().preview_mapping(connector_id, stream, limit):
        (sys.stdout if ok else sys.stderr).write(orjson.dumps(data, default=str).decode() + "\n")
        failed += not ok
    sys.exit(1 if failed else 0)


from .cli_orders import orders as _orders  # noqa: E402  (a command group in its own module)

cli.add_command(_orders)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: turns storesync errors into one clear message and an exit code."""
    try:
        cli.main(args=argv, prog_name="storesync", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except StoresyncError as exc:
        args = sys.argv[1:] if argv is None else argv
        if any(a in ("--verbose", "-v", "-vv", "-vvv") for a in args):
            traceback.print_exc()
        print_error(str(exc))
        sys.exit(exc.exit_code)


def print_error(message: str, where: str = "") -> None:
    """``error: [where: ]message`` on stderr; the message is never read as markup (a JSON record with --log-format
    json)."""
    if json_logging_enabled():
        return log_error(message, where)
    err.print(Text("error: ", style="red") + Text(f"{where}: " if where else "") + Text(message),
              highlight=False, soft_wrap=True)


from .cli_notify import messages, notify  # noqa: E402  (their own module; it imports the helpers above)

cli.add_command(notify)
cli.add_command(messages)

from .cli_inventory import inventory  # noqa: E402  (its own module)

cli.add_command(inventory)

from .cli_demo import demo  # noqa: E402  (its own module)

cli.add_command(demo)

from .cli_report import report  # noqa: E402  (its own module)

cli.add_command(report)

from .cli_connector import connector  # noqa: E402  (its own module: tools for connector authors)

cli.add_command(connector)

from .cli_serve import serve, webhooks  # noqa: E402  (real time: storesync serve, its own module)

cli.add_command(serve)
cli.add_command(webhooks)

from .cli_identity import identities  # noqa: E402  (its own module)

cli.add_command(identities)

from .cli_runs import runs  # noqa: E402  (its own module: the run reports)

cli.add_command(runs)


if __name__ == "__main__":  # pragma: no cover
    main()
