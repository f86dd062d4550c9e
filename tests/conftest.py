"""Shared fixtures: the example plugin package, store URLs for SQLite and PostgreSQL, a CLI runner."""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
EXAMPLE_PLUGIN = HERE / "plugins" / "storesync-example"
PG_ENV = "STORESYNC_TEST_PG_URL"


sys.path.insert(0, str(HERE))  # tests/ is not a package: test modules import its helper modules directly

from pgschema import fresh_schema  # noqa: E402


@pytest.fixture(scope="session")
def example_plugin() -> str:
    """Install the example third-party plugin package (once) so entry-point discovery can find it."""
    try:
        md.distribution("storesync-example")
    except md.PackageNotFoundError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        str(EXAMPLE_PLUGIN)], check=True)
    return "storesync-example"


def _pg_base() -> str | None:
    return os.environ.get(PG_ENV)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = _pg_base()
    if not base:
        pytest.skip(f"set {PG_ENV} to run PostgreSQL tests")
    with fresh_schema(base) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL (skipped without STORESYNC_TEST_PG_URL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``storesync`` as a user would, in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "storesync.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
