"""``storesync connector new``: scaffold a connector plugin package. Thin: ``core/scaffold`` does the work."""

from __future__ import annotations

import sys
from pathlib import Path
import click

from .core.plugins import build_plugin_host
from .core.scaffold import create

__all__ = ["connector"]


@click.group()
def connector() -> None:
    """Tools for connector authors."""


@connector.command("new")
@click.argument("name")
@click.option("--dir", "directory", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder to create the package folder NAME in.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def new(name: str, directory: str, as_json: bool) -> None:
    """Scaffold a connector plugin package NAME (type NAME, distribution storesync-NAME).

    The package holds a pyproject with the `storesync` entry point, the connector class with two streams over
    storesync's HTTP client, an emulator of its API, a default mapping, tests running storesync's conformance
    suite, and a README. They pass as written: pip install -e ./NAME && pytest ./NAME

    \b
    Exit codes: 0 written; 2 NAME is not a valid type name or is already installed,
                or DIR/NAME exists and is not empty (nothing is overwritten).
    """
    from . import cli as ui

    # the installed connector types, whatever plugins.toml says (it may not exist yet, or be broken)
    taken = set(build_plugin_host().connector_types)
    result = create(name, Path(directory), taken=taken)
    if as_json:
        ui.emit_json(result.as_dict())
    else:
        ui.out.print(f"wrote {result.path} ({len(result.files)} files); next:\n"
                     f"  pip install -e {result.path}\n  pytest {result.path}\n  storesync plugins list",
                     highlight=False)
    sys.exit(0)
