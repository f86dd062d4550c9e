"""The wheel holds the package and its TOML files, nothing else (no tests, no bench, no examples)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = out.glob("storesync-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_wheel_holds_only_the_package(wheel_names):
    package = [n for n in wheel_names if not n.startswith("storesync-")]
    assert package and all(n.startswith("storesync/") for n in package)
    assert not [n for n in package if n.startswith(("storesync/tests/", "storesync/bench/", "storesync/examples/"))]
    # .tmpl: the templates of `storesync connector new` (core/scaffold/template)
    assert {n.rsplit(".", 1)[-1] for n in package} == {"py", "toml", "tmpl"}


def test_wheel_ships_every_module_mapping_and_entry_point(wheel_names):
    for path in REPO.glob("**/*.py"):
        rel = path.relative_to(REPO)
        if rel.parts[0] in ("core", "connectors") or rel.name in ("__init__.py", "cli.py") and len(rel.parts) == 1:
            assert f"storesync/{rel.as_posix()}" in wheel_names, f"{rel} is missing from the wheel"
    for mapping in (REPO / "mappings").glob("*.toml"):
        assert f"storesync/mappings/{mapping.name}" in wheel_names
    assert "storesync/plugins.toml" in wheel_names
    assert any(n.endswith(".dist-info/entry_points.txt") for n in wheel_names)


def test_wheel_ships_the_scaffold_templates(wheel_names):
    templates = list((REPO / "core" / "scaffold" / "template").rglob("*.tmpl"))
    assert templates
    for template in templates:
        assert f"storesync/{template.relative_to(REPO).as_posix()}" in wheel_names, f"{template} is missing"
