"""Fixtures of the end-to-end tests (the CLI runner and store URLs come from tests/conftest.py)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture
def second_store_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty store of the same dialect as ``store_url`` (a second file or a second fresh schema)."""
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'store_b.db'}"
        return
    base = os.environ["STORESYNC_TEST_PG_URL"]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
