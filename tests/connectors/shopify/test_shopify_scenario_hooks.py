"""The Shopify emulator's scenario hooks (``add_product``, ``place_order``, ``available``) as a sync sees them:
a product added with a chosen SKU and a web order placed now reach the store through the shipped mapping, by a
full sync and by an incremental one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))

from e2e_support import rows, scalar  # noqa: E402
from test_shopify_sync import TOKEN, cid, project, sync  # noqa: E402

from storesync.connectors.shopify.emulator import ShopifyEmulator  # noqa: E402

SKU = "SCN-TEA-001"
BUYER = {"first_name": "Siu Ming", "last_name": "Wong", "phone": "+85291234567", "email": "siuming.wong@example.hk"}


def level(url: str, connector: str, item: int, location: int) -> tuple | None:
    found = rows(url, "SELECT available FROM inventory_level WHERE connector_id = :c AND location_external_id = :l "
                      "AND external_id LIKE :i", c=connector, l=str(location), i=f"%{item}%")
    return found[0] if found else None


def test_added_product_full_sync_then_placed_order_incremental(cli, store_url: str, tmp_path: Path) -> None:
    web = cid()
    with ShopifyEmulator(orders=30, seed=31, token=TOKEN, rate_limit=None) as shop:
        shop_a, _mong_kok, warehouse, *_ = shop.store.locations.keys
        ids = shop.add_product(SKU, "Scenario Jasmine Tea", price="98.50", stock={shop_a: 5, warehouse: 10})
        item = ids["inventory_item_id"]
        project(tmp_path, store_url, {web: {"base_url": shop.base_url, "page_size": 50, "pacing": False}})
        sync(cli, tmp_path)
        ((sku, item_id, price, tracked),) = rows(store_url, "SELECT sku, inventory_item_id, price, tracked FROM "
                                                  "variant WHERE connector_id = :c AND external_id = :v",
                                                  c=web, v=str(ids["variant_id"]))
        assert (sku, item_id, float(price), bool(tracked)) == (SKU, str(item), 98.5, True)
        assert level(store_url, web, item, shop_a) == (5,) and level(store_url, web, item, warehouse) == (10,)

        order_id = shop.place_order([(SKU, 2)], customer=BUYER)
        assert shop.available(item, shop_a) == 3 and shop.available(item, warehouse) == 10
        second = sync(cli, tmp_path)

        assert (second["orders"]["inserted"], second["customers"]["inserted"]) == (1, 1), second
        assert (second["inventory_levels"]["inserted"], second["inventory_levels"]["updated"]) == (0, 1), second
        assert second["orders"]["read"] <= 2  # incremental: the new order (and the cursor boundary), not all 31
        assert rows(store_url, "SELECT status, financial_status, fulfillment_status, phone, email FROM orders "
                               "WHERE connector_id = :c AND external_id = :o", c=web, o=str(order_id)) == \
            [("open", "paid", None, "+85291234567", "siuming.wong@example.hk")]
        assert rows(store_url, "SELECT l.sku, l.quantity, l.variant_external_id FROM order_line l JOIN orders o "
                               "ON o.id = l.order_id WHERE o.connector_id = :c AND o.external_id = :o",
                    c=web, o=str(order_id)) == [(SKU, 2, str(ids["variant_id"]))]
        assert level(store_url, web, item, shop_a) == (3,) and level(store_url, web, item, warehouse) == (10,)

        # at a named location, past what it holds: Shopify lets available go negative
        shop.place_order([(SKU, 4)], customer=BUYER, location_id=shop_a)
        third = sync(cli, tmp_path)
        assert (third["orders"]["inserted"], third["customers"]["inserted"], third["customers"]["updated"]) == \
            (1, 0, 1), third
        assert level(store_url, web, item, shop_a) == (-1,) == (shop.available(item, shop_a),)
        assert scalar(store_url, "SELECT count(*) FROM orders WHERE connector_id = :c AND phone = :p", c=web,
                      p="+85291234567") == 2


def test_place_order_takes_the_first_location_with_units_and_refuses_bad_lines_whole() -> None:
    with ShopifyEmulator(orders=5, seed=32, rate_limit=None) as shop:
        first, second, third, *_ = shop.store.locations.keys
        item = shop.add_product(SKU, "Scenario Tea", stock={first: 0, second: 4, third: 9})["inventory_item_id"]
        before = len(shop.store.orders)
        order = shop.store.orders[shop.place_order([(SKU, 3)])]
        assert (shop.available(item, first), shop.available(item, second), shop.available(item, third)) == (0, 1, 9)
        assert order["closed_at"] is None and order["financial_status"] == "paid"
        assert order["fulfillment_status"] is None and order["customer"]["phone"] == "+85291234567"
        assert order["line_items"][0]["sku"] == SKU and order["total_price"] == "264.00"
        variant = shop.store.variants[shop.store.item_variant[item]]
        assert variant["inventory_quantity"] == 10

        with pytest.raises(KeyError, match="NO-SUCH-SKU"):
            shop.place_order([(SKU, 1), ("NO-SUCH-SKU", 1)])
        with pytest.raises(ValueError, match="already has a variant"):
            shop.add_product(SKU, "Again")
        assert len(shop.store.orders) == before + 1 and shop.available(item, second) == 1


def test_location_id_finds_a_location_by_name_and_names_the_others_when_it_cannot() -> None:
    with ShopifyEmulator(orders=2, seed=31, token=TOKEN, rate_limit=None) as shop:
        found = shop.location_id("Kwai Chung Warehouse")
        assert shop.store.locations[found]["name"] == "Kwai Chung Warehouse"
        with pytest.raises(KeyError, match="Mong Kok Shop"):
            shop.location_id("Nowhere Shop")


def test_plugins_toml_points_a_connector_at_the_emulator_with_secrets_as_references() -> None:
    import tomllib

    with ShopifyEmulator(orders=2, seed=31, token=TOKEN, rate_limit=None) as shop:
        plain = tomllib.loads(shop.plugins_toml("web"))["connectors"]["web"]
        signed = tomllib.loads(shop.plugins_toml(secret_env="SHOP_SECRET"))["connectors"]["shop"]
        url = shop.base_url
    assert (plain["type"], plain["base_url"], plain["access_token"]) == ("shopify", url, "${SHOPIFY_TOKEN}")
    assert "webhook_secret" not in plain and signed["webhook_secret"] == "${SHOP_SECRET}"
