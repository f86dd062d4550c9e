"""The Square emulator's scenario hooks (``add_item``, ``till_sale``) as a sync sees them: an item added with a
chosen SKU and till sales completed now reach the store through the shipped mapping, by a full sync and by an
incremental one; a sale past the count leaves IN_STOCK negative, as Square does."""

from __future__ import annotations

import json
from decimal import Decimal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))

from e2e_support import rows  # noqa: E402
from test_pos_sync import TOKEN, cid, on_hand, project, sync  # noqa: E402

from storesync.connectors.pos.emulator import SquareEmulator  # noqa: E402

SKU = "SCN-TEA-001"


def test_added_item_full_sync_then_till_sales_incremental(cli, store_url: str, tmp_path: Path) -> None:
    tills = cid()
    with SquareEmulator(orders=40, seed=41, token=TOKEN) as pos:
        shop, other, *_ = pos.store.location_ids
        customer = pos.store.customer_ids[0]
        variation = pos.add_item(SKU, "Scenario Jasmine Tea", price=9850, counts={shop: 5, other: 8})
        project(tmp_path, store_url, {tills: {"base_url": pos.base_url}})
        sync(cli, tmp_path)
        ((sku, item_id, price, tracked),) = rows(store_url, "SELECT sku, inventory_item_id, price, tracked FROM "
                                                 "variant WHERE connector_id = :c AND external_id = :v",
                                                 c=tills, v=variation)
        assert (sku, item_id, float(price), bool(tracked)) == (SKU, variation, 98.5, True)
        assert (on_hand(store_url, tills, variation, shop), on_hand(store_url, tills, variation, other)) == (5, 8)

        order_id = pos.till_sale(variation, shop, 2, customer_id=customer)
        assert pos.in_stock(variation, shop) == 3
        second = sync(cli, tmp_path)
        assert (second["orders"]["inserted"], second["inventory"]["updated"], second["catalog"]["updated"]) == \
            (1, 1, 0), second
        # only what changed since the cursors (plus the record at each boundary), not all 40 orders
        assert second["orders"]["read"] <= 2 and second["inventory"]["read"] <= 2
        ((*stored, total),) = rows(store_url, "SELECT status, customer_external_id, location_external_id, total "
                                              "FROM orders WHERE connector_id = :c AND external_id = :o",
                                   c=tills, o=order_id)
        assert stored == ["closed", customer, shop] and Decimal(str(total)) == Decimal("197")
        assert rows(store_url, "SELECT l.variant_external_id, l.quantity FROM order_line l JOIN orders o "
                               "ON o.id = l.order_id WHERE o.connector_id = :c AND o.external_id = :o",
                    c=tills, o=order_id) == [(variation, 2)]
        assert (on_hand(store_url, tills, variation, shop), on_hand(store_url, tills, variation, other)) == (3, 8)

        pos.till_sale(variation, shop, 5)  # more than the till holds
        third = sync(cli, tmp_path)
        assert (third["orders"]["inserted"], third["inventory"]["updated"]) == (1, 1), third
        assert on_hand(store_url, tills, variation, shop) == -2 == pos.in_stock(variation, shop)


def test_till_sale_is_a_completed_order_now_and_bad_calls_change_nothing() -> None:
    with SquareEmulator(orders=10, seed=42) as pos:
        shop = pos.store.location_ids[0]
        variation = pos.add_item(SKU, "Scenario Tea", counts={shop: 1})
        before = len(pos.store.orders)
        order = json.loads(pos.store.orders[pos.till_sale(variation, shop)])
        assert (order["state"], order["location_id"], order["closed_at"]) == ("COMPLETED", shop, order["updated_at"])
        assert order["updated_at"] > max(json.loads(raw)["updated_at"] for oid, raw in pos.store.orders.items()
                                         if oid != order["id"])
        assert order["line_items"][0]["catalog_object_id"] == variation and "customer_id" not in order
        assert order["total_money"] == {"amount": 8800, "currency": "HKD"} and pos.in_stock(variation, shop) == 0

        with pytest.raises(KeyError, match="NOPE"):
            pos.till_sale(variation, "NOPE")
        with pytest.raises(KeyError, match="no customer"):
            pos.till_sale(variation, shop, customer_id="NOBODY")
        with pytest.raises(ValueError, match="already has sku"):
            pos.add_item(SKU, "Again")
        assert len(pos.store.orders) == before + 1 and pos.in_stock(variation, shop) == 0


def test_location_id_finds_a_till_location_by_name_and_names_the_others_when_it_cannot() -> None:
    with SquareEmulator(orders=2, seed=42) as pos:
        found = pos.location_id("Mong Kok Shop")
        assert [loc["name"] for loc in pos.store.locations if loc["id"] == found] == ["Mong Kok Shop"]
        with pytest.raises(KeyError, match="Causeway Bay Shop"):
            pos.location_id("Nowhere Shop")
