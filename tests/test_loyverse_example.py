"""``examples/loyverse``, a separate plugin package: storesync finds its connector only through its entry point.

(Its own tests run in ``.ci/run`` with ``pytest examples/loyverse``; here only discovery is checked.)
"""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "examples" / "loyverse"
DIST = "storesync-loyverse"


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--quiet", *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _rows(cli, cwd: Path) -> list[dict]:
    proc = cli("plugins", "list", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_plugins_list_shows_loyverse_after_installing_and_not_before(cli, tmp_path: Path) -> None:
    try:
        md.distribution(DIST)
        was_installed = True
    except md.PackageNotFoundError:
        was_installed = False
    if was_installed:
        _pip("uninstall", "--yes", DIST)
    try:
        assert "loyverse" not in {r["connector_type"] for r in _rows(cli, tmp_path)}
        _pip("install", "--no-deps", "--no-build-isolation", "-e", str(PACKAGE))
        (row,) = [r for r in _rows(cli, tmp_path) if r["connector_type"] == "loyverse"]
        assert (row["plugin"], row["distribution"]) == ("loyverse", DIST)
        assert row["capabilities"] == ["push_inventory"]
    finally:
        if not was_installed:
            _pip("uninstall", "--yes", DIST)
