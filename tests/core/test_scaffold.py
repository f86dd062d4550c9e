"""``storesync connector new``: the scaffolded plugin package installs, is discovered, and passes its own tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


def _types(cli, cwd: Path) -> dict[str, str]:
    proc = cli("plugins", "list", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return {r["connector_type"]: r["distribution"] for r in json.loads(proc.stdout)}


def test_scaffolded_package_passes_its_tests_right_after_install(cli, tmp_path: Path) -> None:
    proc = cli("connector", "new", "acme_kit", "--dir", str(tmp_path), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    package = Path(made["path"])
    assert package == (tmp_path / "acme_kit").resolve()
    assert {"pyproject.toml", "README.md", "storesync_acme_kit/__init__.py", "storesync_acme_kit/emulator.py",
            "storesync_acme_kit/acme_kit.toml", "tests/test_acme_kit_conformance.py"} <= set(made["files"])
    assert not list(package.rglob("*.tmpl")) and "{{" not in (package / "storesync_acme_kit/__init__.py").read_text()
    assert "acme_kit" not in _types(cli, tmp_path)

    installed = _pip("install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(package))
    assert installed.returncode == 0, installed.stderr[-3000:]
    try:
        assert _types(cli, tmp_path)["acme_kit"] == "storesync-acme-kit"  # found through its entry point
        run = subprocess.run([sys.executable, "-m", "pytest", str(package), "-q", "-p", "no:cacheprovider"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
        summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "failed" not in summary and "error" not in summary, summary
        passed = int(summary.split(" passed")[0].split()[-1])
        assert passed >= 8, summary  # the conformance checks that apply, plus the incremental one
    finally:
        _pip("uninstall", "--quiet", "--yes", "storesync-acme-kit")
    assert "acme_kit" not in _types(cli, tmp_path)


def test_refuses_a_bad_name_a_taken_type_and_a_non_empty_folder(cli, tmp_path: Path) -> None:
    for name in ("Acme", "9shop", "acme-pos"):
        proc = cli("connector", "new", name, "--dir", str(tmp_path), cwd=tmp_path)
        assert proc.returncode == 2 and "lower-case" in proc.stderr, (name, proc.stderr)
    proc = cli("connector", "new", "shopify", "--dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "already registered" in proc.stderr
    (tmp_path / "acme" / "keep.txt").parent.mkdir()
    (tmp_path / "acme" / "keep.txt").write_text("mine")
    proc = cli("connector", "new", "acme", "--dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert [p.name for p in (tmp_path / "acme").iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob("*/pyproject.toml"))
