"""Fixtures of the end-to-end tests (the CLI runner and store URLs come from tests/conftest.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgschema import fresh_schema

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture
def second_store_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty store of the same dialect as ``store_url`` (a second file or a second fresh schema)."""
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'store_b.db'}"
        return
    with fresh_schema(os.environ["STORESYNC_TEST_PG_URL"]) as url:
        yield url
