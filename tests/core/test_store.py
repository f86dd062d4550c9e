"""The store on SQLite and PostgreSQL: idempotent batch upserts, children, tombstones, cursors, quarantine, lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import orjson
import pytest
import sqlalchemy as sa

from storesync.core.errors import LockedError
from storesync.core.lock import connector_lock
from storesync.core.models import Order, Product
from storesync.core.store import Store
from storesync.core.writer import Item, QuarantineEntry


def order(i: int, total: str = "10.00", lines: int = 2) -> Item:
    raw = {"id": i, "total": total}
    model = Order(external_id=str(i), currency="HKD", total=total, created_at="2024-05-01T10:00:00+08:00",
                  lines=[{"sku": f"SKU-{n}", "quantity": n + 1, "unit_price": "2.50"} for n in range(lines)])
    return Item(str(i), model, orjson.dumps(raw).decode())


@pytest.fixture
def store(store_url):
    s = Store(store_url)
    yield s
    s.close()


def rows(store: Store, sql: str) -> list[tuple]:
    with store.read() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).all()]


def test_same_batch_twice_changes_nothing(store):
    batch = [order(i) for i in range(50)]
    with store.write() as w:
        first = w.upsert("web", "orders", "order", batch)
    before = rows(store, "SELECT id, external_id, row_hash, synced_at FROM orders ORDER BY id")
    with store.write() as w:
        second = w.upsert("web", "orders", "order", batch)
    assert (first.inserted, first.updated, first.unchanged) == (50, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 50)
    assert rows(store, "SELECT id, external_id, row_hash, synced_at FROM orders ORDER BY id") == before
    assert rows(store, "SELECT COUNT(*) FROM order_line") == [(100,)]


def test_changed_record_updated_in_place_and_lines_replaced(store):
    with store.write() as w:
        w.upsert("web", "orders", "order", [order(1), order(2)])
    with store.write() as w:
        counts = w.upsert("web", "orders", "order", [order(1, total="99.90", lines=3), order(2), order(3)])
    assert (counts.inserted, counts.updated, counts.unchanged) == (1, 1, 1)
    totals = dict(rows(store, "SELECT external_id, total FROM orders"))
    assert Decimal(str(totals["1"])) == Decimal("99.90")
    assert rows(store, "SELECT COUNT(*) FROM orders") == [(3,)]
    per_order = rows(store, "SELECT o.external_id, COUNT(*) FROM order_line l JOIN orders o ON o.id = l.order_id "
                            "GROUP BY o.external_id ORDER BY o.external_id")
    assert per_order == [("1", 3), ("2", 2), ("3", 2)]


def test_same_external_id_from_two_connectors_is_two_rows(store):
    with store.write() as w:
        w.upsert("shop_a", "orders", "order", [order(1)])
        w.upsert("shop_b", "orders", "order", [order(1)])
    assert rows(store, "SELECT connector_id FROM orders ORDER BY connector_id") == [("shop_a",), ("shop_b",)]


def test_duplicate_ids_in_one_batch_keep_the_last(store):
    with store.write() as w:
        counts = w.upsert("web", "orders", "order", [order(7, "1.00"), order(7, "2.00")])
    assert counts.inserted == 1
    assert Decimal(str(rows(store, "SELECT total FROM orders")[0][0])) == Decimal("2.00")


def test_nested_variants_stored_as_rows_linked_to_product(store):
    product = Product(external_id="p1", title="Tea", variants=[
        {"external_id": "v1", "sku": "TEA-S", "price": "9.90", "currency": "HKD"},
        {"external_id": "v2", "sku": "TEA-L", "price": "19.90", "currency": "HKD"}])
    with store.write() as w:
        w.upsert("web", "products", "product", [Item("p1", product, "{}")])
    assert rows(store, "SELECT sku, product_external_id FROM variant ORDER BY sku") == [
        ("TEA-L", "p1"), ("TEA-S", "p1")]


def test_tombstone_marks_deleted_once(store):
    with store.write() as w:
        w.upsert("web", "orders", "order", [order(1), order(2)])
    with store.write() as w:
        assert w.tombstone("web", "orders", "order", ["1", "404"]) == 1
    with store.write() as w:
        assert w.tombstone("web", "orders", "order", ["1"]) == 0
    assert [bool(d) for _e, d in rows(store, "SELECT external_id, deleted FROM orders ORDER BY external_id")] == [
        True, False]


def test_cursor_commits_with_its_batch_or_not_at_all(store):
    with store.write() as w:
        w.save_cursor("web", "orders", {"value": "2024-05-01T00:00:00Z", "keys": ["1"]})
    with pytest.raises(RuntimeError), store.write() as w:
        w.upsert("web", "orders", "order", [order(1)])
        w.save_cursor("web", "orders", {"value": "2099-01-01T00:00:00Z"})
        raise RuntimeError("crash before commit")
    assert store.get_cursor("web", "orders") == {"value": "2024-05-01T00:00:00Z", "keys": ["1"]}
    assert rows(store, "SELECT COUNT(*) FROM orders") == [(0,)]


def test_quarantine_upserts_per_record_and_clears(store):
    entry = QuarantineEntry("42", "42", "total", "not a decimal", '{"id": 42}')
    with store.write() as w:
        w.quarantine("web", "orders", [entry], run_id=None)
    with store.write() as w:
        w.quarantine("web", "orders", [entry._replace(reason="still bad")], run_id=None)
    (q,) = store.quarantined("web")
    assert (q["record_key"], q["reason"], q["attempts"], q["raw"]) == ("42", "still bad", 2, {"id": 42})
    with store.write() as w:
        assert w.clear_quarantine("web", "orders", ["42"]) == 1
    assert store.quarantined("web") == []


def test_status_on_an_empty_store(store):
    data = store.status()
    assert data["runs"] == [] and data["quarantine"] == []
    assert data["records"]["order"] == 0


def test_run_log(store):
    run_id = store.start_run("web")
    store.finish_run(run_id, "ok", {"orders": {"read": 3}})
    (run,) = store.status()["runs"]
    assert (run["connector_id"], run["status"], run["counts"]) == ("web", "ok", {"orders": {"read": 3}})
    assert run["finished_at"] is not None


HOLDER = textwrap.dedent("""
    import sys, time
    from storesync.core.store import Store
    from storesync.core.lock import connector_lock
    with connector_lock(Store(sys.argv[1]), "web"):
        print("held", flush=True)
        time.sleep(30)
""")


def test_lock_contention_between_processes(store):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, store.url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError) as info, connector_lock(store, "web"):
            pass
        assert info.value.exit_code == 4
        with connector_lock(store, "other"):  # other connector instances are not blocked
            pass
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # a killed holder releases the lock (the kernel or the server drops it)
        try:
            with connector_lock(store, "web"):
                break
        except LockedError:
            assert time.monotonic() < deadline, "lock not released after the holder was killed"
            time.sleep(0.1)


def test_sqlite_keeps_decimals_exact(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    with store.write() as w:
        w.upsert("web", "orders", "order", [order(1, total="0.10")])
    from storesync.core.tables import ENTITY_TABLES
    with store.read() as conn:
        total = conn.execute(sa.select(ENTITY_TABLES["order"].c.total)).scalar_one()
    assert total == Decimal("0.10") and isinstance(total, Decimal)
