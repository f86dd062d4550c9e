"""``push_inventory``: compare-and-set stock writes through GraphQL, against the emulator and with pytest-httpx."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from storesync.connectors.shopify import ShopifyConnector, ShopifySettings
from storesync.connectors.shopify.emulator import ShopifyEmulator
from storesync.connectors.shopify.push import MAX_QUANTITIES
from storesync.core.capabilities import StockUpdate
from storesync.core.connector import ConnectorContext
from storesync.core.errors import FatalSyncError

TOKEN = "shpat_push_test"


def connector(base_url: str, api_version: str = "2024-07", **extra) -> ShopifyConnector:
    settings = ShopifySettings(shop="harbour-goods-hk.myshopify.com", base_url=base_url, access_token=TOKEN,
                               api_version=api_version, pacing=False, **extra)
    conn = ShopifyConnector("web", settings, ConnectorContext(base_dir=Path.cwd()))
    conn.sleep = lambda seconds: None
    return conn


def levels(shop: ShopifyEmulator, n: int) -> list[tuple[int, int, int]]:
    """(inventory_item_id, location_id, available) of the first n levels."""
    out = []
    for key in list(shop.store.inventory_levels.keys)[:n]:
        level = orjson.loads(shop.store.inventory_levels.raw[key])
        out.append((level["inventory_item_id"], level["location_id"], level["available"]))
    return out


def available(shop: ShopifyEmulator, item: int, location: int) -> int:
    return orjson.loads(shop.store.inventory_levels.raw[(item, location)])["available"]


@pytest.mark.parametrize("api_version", ["2024-07", "2026-04"])
def test_push_applies_when_the_compare_value_is_current(api_version: str) -> None:
    with ShopifyEmulator(orders=20, seed=3, token=TOKEN, rate_limit=None) as shop:
        (item, loc, qty), (item2, loc2, qty2) = levels(shop, 2)
        outcomes = connector(shop.base_url, api_version).push_inventory([
            StockUpdate(str(item), str(loc), qty + 5, "k1", expected=qty),
            StockUpdate(str(item2), str(loc2), 0, "k2", expected=qty2)])
        assert [o.status for o in outcomes] == ["applied", "applied"]
        assert available(shop, item, loc) == qty + 5 and available(shop, item2, loc2) == 0
        (write,) = [w for w in shop.writes if w.path.endswith("graphql.json")]
        sent = write.body["variables"]["input"]["quantities"][0]
        if api_version == "2026-04":
            assert sent["changeFromQuantity"] == qty and "compareQuantity" not in sent
            assert write.body["variables"]["key"] and "@idempotent(key: $key)" in write.body["query"]
        else:
            assert sent["compareQuantity"] == qty and "changeFromQuantity" not in sent
            assert "@idempotent" not in write.body["query"]


@pytest.mark.parametrize("api_version", ["2024-07", "2026-04"])
def test_a_sale_in_between_is_a_conflict_and_is_never_overwritten(api_version: str) -> None:
    with ShopifyEmulator(orders=20, seed=4, token=TOKEN, rate_limit=None) as shop:
        (item, loc, qty), (item2, loc2, qty2), (item3, loc3, qty3) = levels(shop, 3)
        shop.set_inventory(item2, loc2, qty2 - 1)  # a customer bought one after storesync read the level
        outcomes = connector(shop.base_url, api_version).push_inventory([
            StockUpdate(str(item), str(loc), qty + 1, "a", expected=qty),
            StockUpdate(str(item2), str(loc2), qty2 + 10, "b", expected=qty2),
            StockUpdate(str(item3), str(loc3), qty3 + 2, "c", expected=qty3)])
        assert [o.status for o in outcomes] == ["applied", "conflict", "applied"]
        assert "STALE" in outcomes[1].detail
        assert available(shop, item2, loc2) == qty2 - 1  # the sale stands
        assert available(shop, item, loc) == qty + 1 and available(shop, item3, loc3) == qty3 + 2


def test_an_unknown_item_fails_alone() -> None:
    with ShopifyEmulator(orders=20, seed=5, token=TOKEN, rate_limit=None) as shop:
        (item, loc, qty), = levels(shop, 1)
        outcomes = connector(shop.base_url, "2026-04").push_inventory([
            StockUpdate("999999999", str(loc), 3, "x", expected=0),
            StockUpdate(f"gid://shopify/InventoryItem/{item}", f"gid://shopify/Location/{loc}", 7, "y",
                        expected=qty)])
        assert outcomes[0].status == "failed" and "INVALID_INVENTORY_ITEM" in outcomes[0].detail
        assert outcomes[1].status == "applied" and available(shop, item, loc) == 7


def test_pushing_the_same_updates_twice_changes_stock_once() -> None:
    with ShopifyEmulator(orders=20, seed=6, token=TOKEN, rate_limit=None) as shop:
        (item, loc, qty), = levels(shop, 1)
        update = StockUpdate(str(item), str(loc), qty + 3, "recount-1", expected=qty)
        conn = connector(shop.base_url, "2026-04")
        assert conn.push_inventory([update])[0].status == "applied"
        # a retry after a lost answer replays Shopify's first result: applied, and nothing changes again
        assert conn.push_inventory([update])[0].status == "applied"
        assert shop.adjustment_groups == 1 and available(shop, item, loc) == qty + 3


def test_unconditional_updates_opt_out_of_the_compare() -> None:
    with ShopifyEmulator(orders=20, seed=7, token=TOKEN, rate_limit=None) as shop:
        (item, loc, _), (item2, loc2, qty2) = levels(shop, 2)
        outcomes = connector(shop.base_url, "2024-07").push_inventory([
            StockUpdate(str(item), str(loc), 42, "u1"), StockUpdate(str(item2), str(loc2), qty2 + 1, "u2",
                                                                     expected=qty2)])
        assert [o.status for o in outcomes] == ["applied", "applied"]
        calls = [w.body["variables"]["input"] for w in shop.writes if w.path.endswith("graphql.json")]
        assert sorted(bool(c.get("ignoreCompareQuantity")) for c in calls) == [False, True]
        assert available(shop, item, loc) == 42


def test_more_than_250_updates_go_in_several_calls() -> None:
    with ShopifyEmulator(orders=20, products=150, seed=8, token=TOKEN, rate_limit=None) as shop:
        rows = levels(shop, MAX_QUANTITIES + 20)
        assert len(rows) == MAX_QUANTITIES + 20
        updates = [StockUpdate(str(i), str(loc), q + 1, f"n{n}", expected=q) for n, (i, loc, q) in enumerate(rows)]
        outcomes = connector(shop.base_url, "2026-04").push_inventory(updates)
        assert {o.status for o in outcomes} == {"applied"}
        assert shop.adjustment_groups == 2
        assert all(available(shop, i, loc) == q + 1 for i, loc, q in rows)


# -- pytest-httpx: what the emulator does not do

GRAPHQL = "https://harbour-goods-hk.myshopify.com/admin/api/2026-04/graphql.json"
APPLIED = {"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": {"id": "gid://x/1", "changes": []},
                                               "userErrors": []}}}


def remote(api_version: str = "2026-04") -> ShopifyConnector:
    settings = ShopifySettings(shop="harbour-goods-hk.myshopify.com", access_token=TOKEN, api_version=api_version,
                               pacing=False, http={"backoff_base": 0.0, "backoff_max": 0.0})
    conn = ShopifyConnector("web", settings, ConnectorContext(base_dir=Path.cwd()))
    conn.sleep = waits.append
    return conn


waits: list[float] = []


def test_throttled_answers_are_waited_out_by_the_cost_they_report(httpx_mock) -> None:
    waits.clear()
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                 "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": None,
                                         "throttleStatus": {"maximumAvailable": 2000, "currentlyAvailable": 4,
                                                            "restoreRate": 100}}}}
    httpx_mock.add_response(url=GRAPHQL, method="POST", json=throttled)
    httpx_mock.add_response(url=GRAPHQL, method="POST", json=APPLIED)
    outcomes = remote().push_inventory([StockUpdate("1", "2", 3, "k", expected=1)])
    assert outcomes[0].status == "applied"
    assert waits == [pytest.approx(0.06)]  # (10 - 4) points at 100 points/s
    first, second = httpx_mock.get_requests()
    assert json.loads(first.content)["variables"]["key"] == json.loads(second.content)["variables"]["key"]


def test_a_5xx_is_retried_with_the_same_idempotency_key(httpx_mock) -> None:
    waits.clear()
    httpx_mock.add_response(url=GRAPHQL, method="POST", status_code=503, json={"errors": "Service Unavailable"})
    httpx_mock.add_response(url=GRAPHQL, method="POST", json=APPLIED)
    assert remote().push_inventory([StockUpdate("1", "2", 3, "k", expected=1)])[0].status == "applied"
    keys = {json.loads(r.content)["variables"]["key"] for r in httpx_mock.get_requests()}
    assert len(keys) == 1 and len(httpx_mock.get_requests()) == 2


def test_a_top_level_graphql_error_is_fatal_and_names_it(httpx_mock) -> None:
    httpx_mock.add_response(url=GRAPHQL, method="POST", json={
        "errors": [{"message": "Access denied for inventorySetQuantities field.",
                    "extensions": {"code": "ACCESS_DENIED"}}]})
    with pytest.raises(FatalSyncError, match="ACCESS_DENIED: Access denied"):
        remote().push_inventory([StockUpdate("1", "2", 3, "k", expected=1)])


def test_an_error_about_the_whole_input_fails_every_row(httpx_mock) -> None:
    httpx_mock.add_response(url=GRAPHQL, method="POST", json={"data": {"inventorySetQuantities": {
        "inventoryAdjustmentGroup": None,
        "userErrors": [{"field": ["input", "reason"], "message": "The specified reason is invalid.",
                        "code": "INVALID_REASON"}]}}})
    outcomes = remote().push_inventory([StockUpdate("1", "2", 3, "k", expected=1, reason="bogus"),
                                        StockUpdate("4", "2", 3, "l", expected=1, reason="bogus")])
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert all("INVALID_REASON" in o.detail for o in outcomes)


def test_the_token_never_leaks_into_a_push_error(httpx_mock) -> None:
    httpx_mock.add_response(url=GRAPHQL, method="POST", status_code=401,
                            json={"errors": f"[API] Invalid API key or access token ({TOKEN})"})
    with pytest.raises(FatalSyncError) as caught:
        remote().push_inventory([StockUpdate("1", "2", 3, "k", expected=1)])
    assert TOKEN not in str(caught.value)


def test_no_updates_make_no_call(httpx_mock) -> None:
    assert remote().push_inventory([]) == []
    assert httpx_mock.get_requests() == []


def test_the_request_is_valid_json_with_gids(httpx_mock) -> None:
    httpx_mock.add_response(url=GRAPHQL, method="POST", json=APPLIED)
    remote().push_inventory([StockUpdate("11", "22", 5, "k", expected=None)])
    body = json.loads(httpx_mock.get_requests()[0].content)
    (q,) = body["variables"]["input"]["quantities"]
    assert q == {"inventoryItemId": "gid://shopify/InventoryItem/11", "locationId": "gid://shopify/Location/22",
                 "quantity": 5, "changeFromQuantity": None}
