"""``storesync demo``: the embedded default, the whole job on an emulated Hong Kong merchant (``core/demo.py``)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import click

__all__ = ["demo"]


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("storesync-demo"),
              show_default=True, help="Where the demo writes its plugins.toml, store and report page.")
@click.option("--size", type=click.Choice(["small", "medium", "large"]), default="small", show_default=True,
              help="How much history the emulators add (small: the story alone, well under a minute).")
@click.option("--keep-running", is_flag=True,
              help="Keep the emulators up after the report, so `storesync sync` and friends work against them "
                   "(Ctrl-C stops).")
def demo(directory: Path, size: str, keep_running: bool) -> None:
    """Run storesync's whole job on an emulated merchant: a Shopify web shop, three shops with Square tills,
    an Odoo warehouse and a Twilio SMS gateway, all on 127.0.0.1 with no account or credential.

    It writes DIR/plugins.toml (SQLite store DIR/store.db), seeds one coherent merchant into every system, then
    syncs, resolves identities, reconciles inventory with push-back, forwards web orders to the ERP, sends the
    texts, and prints a report with what to try next.

    Exit codes: 0 done; 2 the directory cannot be written; 3 a step failed (its error is printed).
    """
    from .core.demo import render, run_demo

    def wait() -> None:
        click.echo(f"\nEmulators running; use `storesync --config {directory / 'plugins.toml'} ...`. Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo("stopped")

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.UsageError(f"cannot write {directory}: {exc.strerror}") from None
    report = run_demo(directory, size, keep_running=keep_running, say=lambda s: click.echo(s, err=True),
                      wait=wait if keep_running else None)
    if not keep_running:
        render(report, click.echo)
    sys.exit(0)
