"""The Odoo emulator's scenario hooks (``add_product``, ``receive``, ``set_on_hand``) as a sync sees them: a
product added with a chosen SKU and stock arriving now reach the store through the shipped mapping, by a full
sync and by an incremental one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))

from e2e_support import rows  # noqa: E402
from erp_support import KEY, erp_id, project, run, streams  # noqa: E402

from storesync.connectors.erp.emulator import OdooEmulator  # noqa: E402

SKU = "SCN-TEA-001"


def levels(url: str, connector: str, product: int) -> dict[str, tuple]:
    """location external id -> (sku, on_hand, committed, available) of the product's stored levels."""
    return {loc: rest for loc, *rest in rows(
        url, "SELECT location_external_id, sku, on_hand, committed, available FROM inventory_level "
             "WHERE connector_id = :c AND variant_external_id = :p", c=connector, p=str(product))}


def test_added_product_and_receipts_full_then_incremental(cli, store_url: str, tmp_path: Path) -> None:
    cid = erp_id()
    with OdooEmulator(api_key=KEY, partners=10, products=8, orders=5) as odoo:
        product = odoo.add_product(SKU, "Scenario Jasmine Tea", price=98.5)
        odoo.receive(SKU, 12)
        project(tmp_path, store_url, cid, odoo)
        (first,) = run(cli, tmp_path, "sync", "--no-progress", cid)
        assert first["status"] == "ok", first
        ((sku, price, tracked, item),) = rows(store_url, "SELECT sku, price, tracked, inventory_item_id FROM variant "
                                                         "WHERE connector_id = :c AND external_id = :p",
                                              c=cid, p=str(product))
        assert (sku, float(price), bool(tracked), item) == (SKU, 98.5, True, str(product))
        assert levels(store_url, cid, product) == {"2": [SKU, 12, 0, 12]}

        odoo.receive(SKU, 5)                                   # more arrives at WH/Stock
        odoo.set_on_hand(SKU, 4, location="WH/Stock/Shelf 1")  # and a first count on the shelf
        (second,) = run(cli, tmp_path, "sync", "--no-progress", cid)
        got = streams(second)
        assert (got["quants"]["inserted"], got["quants"]["updated"], got["products"]["inserted"]) == (1, 1, 0), got
        assert got["quants"]["read"] < 8  # the changed pairs, not every quant again
        assert levels(store_url, cid, product) == {"2": [SKU, 17, 0, 17], "3": [SKU, 4, 0, 4]}

        # a confirmed sale order of the SKU reserves on the received stock; a recount keeps the reservation
        order = odoo.odoo_call("sale.order", "create", vals_list=[{"partner_id": 1, "order_line": [
            [0, 0, {"product_id": product, "product_uom_qty": 3, "price_unit": 98.5}]]}])[0]
        odoo.odoo_call("sale.order", "action_confirm", ids=[order])
        odoo.set_on_hand(SKU, 10)
        (third,) = run(cli, tmp_path, "sync", "--no-progress", cid)
        assert streams(third)["quants"]["updated"] == 1, third
        assert levels(store_url, cid, product)["2"] == [SKU, 10, 3, 7]


def test_hooks_refuse_unknown_skus_locations_and_duplicates_without_changing_anything() -> None:
    with OdooEmulator(partners=3, products=3, orders=0) as odoo:
        odoo.add_product(SKU, "Scenario Tea")
        quants = dict(odoo.db.tables["stock.quant"])
        with pytest.raises(KeyError, match="NO-SUCH"):
            odoo.receive("NO-SUCH", 1)
        with pytest.raises(KeyError, match="WH/Nowhere"):
            odoo.receive(SKU, 1, location="WH/Nowhere")
        with pytest.raises(ValueError, match="not internal"):
            odoo.set_on_hand(SKU, 1, location="Partners/Customers")
        with pytest.raises(ValueError, match="already has default_code"):
            odoo.add_product(SKU, "Again")
        assert odoo.db.tables["stock.quant"] == quants


def test_location_id_finds_an_internal_stock_location_by_its_complete_name() -> None:
    with OdooEmulator(partners=2, products=2, orders=0) as odoo:
        found, shelf = odoo.location_id(), odoo.location_id("WH/Stock/Shelf 1")
        locations = odoo.db.tables["stock.location"]
        assert (locations[found]["name"], locations[shelf]["name"], locations[shelf]["location_id"]) == (
            "Stock", "Shelf 1", found)
        with pytest.raises(KeyError, match="WH/Nowhere"):
            odoo.location_id("WH/Nowhere")
