"""``storesync inventory show|reconcile`` over a store holding reports and orders of three systems."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from e2e_support import write_store_project

from storesync.core.models import InventoryLevel, Order, OrderLine, Variant
from storesync.core.store import Store
from storesync.core.writer import Item

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

INVENTORY = """
[inventory.locations.cwb]
authority = "tills"
sources = { tills = "L1", shop = "7" }
safety_stock = 1

[inventory.locations.warehouse]
authority = "erp"
sources = { erp = "WH", shop = "9" }

[inventory.channels.shop]
locations = ["cwb", "warehouse"]
push = false            # so Shopify's own level at cwb is a second opinion, compared with the till's

[inventory.allocation]
strategy = "priority"
priority = ["warehouse", "cwb"]
"""


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def store_with_stock(root: Path) -> None:
    db = f"sqlite:///{root / 'store.db'}"
    write_store_project(root, db, ["shop", "tills", "erp"], INVENTORY)
    store = Store(db)
    with store.write() as w:
        # Shopify names the SKU through its variant's inventory item; Square through the variation; Odoo directly
        w.upsert("shop", "products", "variant", [Item("v1", Variant(external_id="v1", sku="VASE", currency="HKD",
                                                                   inventory_item_id="777"), None)])
        w.upsert("tills", "catalog", "variant", [Item("sq1", Variant(external_id="sq1", sku="VASE", currency="HKD"),
                                                      None)])
        w.upsert("shop", "inventory_levels", "inventory_level", [Item("l1", InventoryLevel(
            external_id="l1", location_external_id="7", available=9, as_of=at(0), attributes={
                "inventory_item_id": "777"}), None)])
        w.upsert("tills", "inventory", "inventory_level", [Item("l2", InventoryLevel(
            external_id="l2", variant_external_id="sq1", location_external_id="L1", on_hand=2, committed=0,
            as_of=at(0)), None)])
        w.upsert("erp", "quants", "inventory_level", [Item("l3", InventoryLevel(
            external_id="l3", sku="VASE", location_external_id="WH", on_hand=0, committed=0, as_of=at(0)), None)])
        orders = [Order(external_id=f"r{i}", currency="HKD", created_at=at(i), location_external_id="L1",
                        lines=[OrderLine(sku="VASE", quantity=1)]) for i in (1, 2, 3)]
        w.upsert("tills", "orders", "order", [Item(o.external_id, o, None) for o in orders])


def test_show_explains_each_number_and_the_oversell(cli, tmp_path: Path) -> None:
    store_with_stock(tmp_path)
    proc = cli("inventory", "show", "VASE", "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # a conflict: three sold, two held
    shown = json.loads(proc.stdout)
    cwb = next(p for p in shown["locations"] if p["location"] == "cwb")
    assert (cwb["authority"], cwb["on_hand"], cwb["committed"], cwb["available"]) == ("tills", 2, 3, 0)
    assert [o["order_id"] for o in cwb["orders"]] == ["r1", "r2", "r3"]
    (oversell,) = [x for x in shown["conflicts"] if x["kind"] == "oversell"]
    assert [(o["order_id"], o["verdict"]) for o in oversell["orders"]] == [
        ("r1", "within stock"), ("r2", "within stock"), ("r3", "beyond stock")]
    disagree = [x for x in shown["conflicts"] if x["kind"] == "disagree"]
    assert disagree and "shop reports 9 on hand" in disagree[0]["detail"]  # Shopify's level, found by item id
    assert shown["channels"] == {"shop": 0}

    text = cli("inventory", "show", "VASE", cwd=tmp_path)
    assert "order r3 (tills)" in text.stdout and "beyond stock" in text.stdout


def test_reconcile_lists_conflicts_and_a_missing_table_is_a_usage_error(cli, tmp_path: Path) -> None:
    store_with_stock(tmp_path)
    proc = cli("inventory", "reconcile", "--json", cwd=tmp_path)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert {x["kind"] for x in report["conflicts"]} == {"oversell", "disagree"}
    assert {"channel": "shop", "sku": "VASE", "available": 0} in report["available_to_sell"]
    assert proc.stderr == ""  # no progress lines with --json

    text = cli("inventory", "reconcile", cwd=tmp_path)
    steps = [line.split("] ", 1)[1] for line in text.stderr.splitlines() if line.startswith("[")]
    assert steps[0] == "reconciling the catalogue in the database", text.stderr
    assert any(s.startswith("deciding ") for s in steps) and any(s.startswith("recording ") for s in steps), steps
    assert cli("inventory", "reconcile", "--no-progress", cwd=tmp_path).stderr == ""

    write_store_project(tmp_path, "sqlite:///x.db", ["shop", "tills", "erp"])
    bare = cli("inventory", "reconcile", cwd=tmp_path)
    assert bare.returncode == 2 and "no [inventory.locations]" in bare.stderr


def test_reconcile_stores_the_positions_its_allocations_moved(cli, tmp_path: Path) -> None:
    """A web order allocated by the run is demand at its location in ``inventory_position`` when the run ends
    (the database recomputes the decided SKUs after the decisions); an undecided SKU keeps its numbers."""
    store_with_stock(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.write() as w:
        w.upsert("erp", "quants", "inventory_level", [Item("l4", InventoryLevel(
            external_id="l4", sku="CUP", location_external_id="WH", on_hand=5, committed=0, as_of=at(0)), None)])
        w.upsert("shop", "orders", "order", [Item("w1", Order(external_id="w1", currency="HKD", created_at=at(5),
                                                              lines=[OrderLine(sku="CUP", quantity=2)]), None)])
    store.close()
    assert cli("inventory", "reconcile", "--no-progress", cwd=tmp_path).returncode == 1  # VASE stays oversold
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.engine.connect() as conn:
        rows = {(r.sku, r.location): (r.uncounted, r.available) for r in conn.exec_driver_sql(
            "SELECT sku, location, uncounted, available FROM inventory_position")}
        decided = conn.exec_driver_sql("SELECT state, location FROM inventory_allocation WHERE sku = 'CUP'").all()
    store.close()
    assert decided == [("allocated", "warehouse")]
    assert rows[("CUP", "warehouse")] == (2, 3)
    assert rows[("VASE", "cwb")] == (3, 0)


def test_a_later_run_leaves_an_unchanged_conflict_as_stored_and_clears_it_once_its_sku_changes(
        cli, tmp_path: Path) -> None:
    """Only the SKUs that changed since the last run (or that wait for a decision) are examined again; the open
    conflicts of the others stand, and still make the exit code 1."""
    store_with_stock(tmp_path)
    first = cli("inventory", "reconcile", "--json", cwd=tmp_path)
    report = json.loads(first.stdout)
    assert first.returncode == 1 and report["open_conflicts"] == 2
    assert {(x["kind"], x["sku"]) for x in report["conflicts"]} == {("oversell", "VASE"), ("disagree", "VASE")}

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.engine.begin() as conn:  # everything synced an hour ago: outside the next run's look-back
        for table in ("inventory_level", "orders", "variant"):
            conn.exec_driver_sql(f"UPDATE {table} SET synced_at = '2026-11-30T09:00:00+00:00'")
    store.close()
    second = cli("inventory", "reconcile", "--json", cwd=tmp_path)
    report = json.loads(second.stdout)
    assert second.returncode == 1 and report["conflicts"] == [] and report["cleared"] == 0, report
    assert report["open_conflicts"] == 2

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.write() as w:  # the till counts 9 now, after its three sales: as the web shop says
        w.upsert("tills", "inventory", "inventory_level", [Item("l2", InventoryLevel(
            external_id="l2", variant_external_id="sq1", location_external_id="L1", on_hand=9, committed=0,
            as_of=at(10)), None)])
    store.close()
    third = cli("inventory", "reconcile", "--json", cwd=tmp_path)
    report = json.loads(third.stdout)
    assert third.returncode == 0 and report["open_conflicts"] == 0 and report["cleared"] == 2, report
