"""``upsert_rows``: the batched writes of inventory decisions and conflicts, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from storesync.core.inventory_ledger import AllocationRow, ConflictRow, upsert_rows
from storesync.core.store import Store

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONFLICT = ConflictRow.__table__  # type: ignore[attr-defined]
ALLOCATION = AllocationRow.__table__  # type: ignore[attr-defined]
KEY = ("kind", "sku", "location")


def conflict(sku: str, orders: list[dict], seen: datetime) -> tuple[dict, dict, dict]:
    return ({"kind": "oversell", "sku": sku, "location": "cwb"},
            {"detail": f"{sku} short", "orders": orders, "status": "open", "last_seen": seen}, {"first_seen": seen})


def test_stored_rows_are_updated_in_place_and_new_ones_inserted_with_their_types(store_url: str) -> None:
    store = Store(store_url)
    with store.engine.begin() as conn:
        upsert_rows(conn, CONFLICT, KEY, [conflict("VASE", [{"order_id": "1"}], T0)])
    later = T0 + timedelta(hours=1)
    with store.engine.begin() as conn:
        upsert_rows(conn, CONFLICT, KEY, [conflict("VASE", [{"order_id": "1"}, {"order_id": "2"}], later),
                                          conflict("TEAPOT", [], later)])
    with store.engine.connect() as conn:
        rows = {r.sku: r for r in conn.execute(sa.select(CONFLICT))}
    assert set(rows) == {"VASE", "TEAPOT"}
    vase = rows["VASE"]
    assert vase.orders == [{"order_id": "1"}, {"order_id": "2"}], vase  # JSON through the update's parameters
    assert (vase.first_seen, vase.last_seen) == (T0, later), vase  # first_seen only on insert; times stay times
    assert (rows["TEAPOT"].first_seen, rows["TEAPOT"].orders) == (later, [])


def test_rows_setting_different_columns_are_written_in_one_call(store_url: str) -> None:
    store = Store(store_url)
    keys = [{"connector_id": "shop", "order_id": str(n), "sku": "VASE"} for n in range(3)]
    base = {"quantity": 1, "placed_at": T0, "state": "preorder", "updated_at": T0}
    with store.engine.begin() as conn:
        upsert_rows(conn, ALLOCATION, ("connector_id", "order_id", "sku"),
                    [(k, {**base, "origin": "preorder"}, {}) for k in keys])
    with store.engine.begin() as conn:  # 0 allocated as a plain order keeps its origin; 1 changes it; 2 untouched
        upsert_rows(conn, ALLOCATION, ("connector_id", "order_id", "sku"),
                    [(keys[0], {**base, "state": "allocated", "location": "cwb"}, {"origin": "order"}),
                     (keys[1], {**base, "state": "denied", "origin": "backorder"}, {})])
    with store.engine.connect() as conn:
        got = {r.order_id: (r.state, r.location, r.origin) for r in conn.execute(sa.select(ALLOCATION))}
    assert got == {"0": ("allocated", "cwb", "preorder"), "1": ("denied", None, "backorder"),
                   "2": ("preorder", None, "preorder")}
