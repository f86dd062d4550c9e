"""``storesync report``: one self-contained HTML page about the store (``core/report_html.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["report"]


@click.command()
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Write the page here (one file: charts inline, no network needed to view it).")
@click.pass_obj
def report(c: Any, html_file: Path) -> None:
    """Write a page with records per connector and run, stock per SKU across locations and channels (oversells
    marked), pre-order queues and merged persons with their source records.

    Exit codes: 0 written; 2 bad configuration or the file cannot be written.
    """
    from .core.report_html import write_report

    try:
        path = write_report(c.session(), html_file)
    except OSError as exc:
        raise click.UsageError(f"cannot write {html_file}: {exc.strerror}") from None
    click.echo(str(path))
