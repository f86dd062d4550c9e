"""The ``square`` connector against mocked HTTP (pytest-httpx): cursors, filters, retries, errors, push."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError
from shared_fixtures import fixture_path

from storesync.connectors.pos import SquareConnector, SquareSettings
from storesync.connectors.pos.client import SquareApiError
from storesync.core.capabilities import StockUpdate
from storesync.core.connector import ConnectorContext
from storesync.core.errors import FatalSyncError

BASE = "https://connect.squareup.com"
TOKEN = "EAAAl_secret_square_token_0123456789"
LOCATIONS = {"locations": [{"id": "L1", "name": "Causeway Bay"}, {"id": "L2", "name": "Mong Kok"}]}


def connector(**settings) -> SquareConnector:
    conn = SquareConnector("tills", SquareSettings.model_validate({"access_token": TOKEN, **settings}),
                           ConnectorContext())
    conn.sleep = lambda seconds: None  # backoff waits are not slept in unit tests
    return conn


def body(request) -> dict:
    return json.loads(request.content)


def posts(httpx_mock, path: str) -> list[dict]:
    return [body(r) for r in httpx_mock.get_requests() if r.url.path == path]


def test_search_cursors_go_in_the_body_with_the_original_query_resent(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/locations", json=LOCATIONS)
    httpx_mock.add_response(url=f"{BASE}/v2/orders/search", json={"orders": [{"id": "A"}], "cursor": "c1"})
    httpx_mock.add_response(url=f"{BASE}/v2/orders/search", json={"orders": [{"id": "B"}]})

    records = list(connector(order_page_size=1).stream("orders").read("2025-06-01T00:00:00.000Z"))

    assert [r["id"] for r in records] == ["A", "B"]
    first, second = posts(httpx_mock, "/v2/orders/search")
    assert first == {"location_ids": ["L1", "L2"], "limit": 1, "query": {
        "filter": {"state_filter": {"states": ["OPEN", "COMPLETED", "CANCELED"]},
                   "date_time_filter": {"updated_at": {"start_at": "2025-06-01T00:00:00.000Z"}}},
        "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}}}
    assert second == {**first, "cursor": "c1"}
    request = httpx_mock.get_requests()[0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Square-Version"] == "2025-08-20"


def test_orders_search_ten_locations_at_a_time(httpx_mock) -> None:
    ids = [f"L{i:02d}" for i in range(23)]
    httpx_mock.add_response(url=f"{BASE}/v2/orders/search", json={}, is_reusable=True)
    assert list(connector(location_ids=ids).stream("orders").read(None)) == []
    batches = [b["location_ids"] for b in posts(httpx_mock, "/v2/orders/search")]
    assert batches == [ids[:10], ids[10:20], ids[20:]]
    assert "date_time_filter" not in posts(httpx_mock, "/v2/orders/search")[0]["query"]["filter"]


def test_customers_filter_on_updated_at_only_when_there_is_a_cursor(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/customers/search", json={"customers": [{"id": "C1"}]},
                            is_reusable=True)
    stream = connector().stream("customers")
    list(stream.read(None))
    list(stream.read("2025-01-02T03:04:05.678Z"))
    full, incremental = posts(httpx_mock, "/v2/customers/search")
    assert full == {"limit": 100}
    assert incremental["query"] == {"filter": {"updated_at": {"start_at": "2025-01-02T03:04:05.678Z"}}}
    assert stream.cursor_field == "updated_at"


def test_catalog_reads_items_since_one_millisecond_before_the_cursor_and_skips_other_types(httpx_mock) -> None:
    listed = json.loads(fixture_path("square_connect-api-specification", "ListCatalogResponse.example.json")
                        .read_text())
    items = json.loads(fixture_path("square_connect-api-specification", "SearchCatalogObjectsResponse.example.json")
                       .read_text())
    httpx_mock.add_response(url=f"{BASE}/v2/catalog/search", json={"objects": listed["objects"] + items["objects"]})
    records = list(connector().stream("catalog").read("2025-06-01T00:00:00.000Z"))
    assert [r["id"] for r in records] == [o["id"] for o in items["objects"]]  # CATEGORY and TAX are not items
    (sent,) = posts(httpx_mock, "/v2/catalog/search")
    assert sent == {"object_types": ["ITEM"], "include_deleted_objects": True, "limit": 100,
                    "begin_time": "2025-05-31T23:59:59.999Z"}


def count(obj: str, loc: str, state: str, quantity: str, at: str = "2025-06-02T00:00:00.000Z") -> dict:
    return {"catalog_object_id": obj, "catalog_object_type": "ITEM_VARIATION", "location_id": loc, "state": state,
            "quantity": quantity, "calculated_at": at}


def test_inventory_rereads_every_state_of_the_pairs_that_changed(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/locations", json=LOCATIONS)
    changed = [count("V1", "L1", "IN_STOCK", "7")]
    whole = [count("V1", "L1", "IN_STOCK", "7"), count("V1", "L1", "RESERVED_FOR_SALE", "2", "2025-05-01T00:00:00.000Z"),
             count("V1", "L2", "IN_STOCK", "40")]
    httpx_mock.add_response(url=f"{BASE}/v2/inventory/counts/batch-retrieve", json={"counts": changed})
    httpx_mock.add_response(url=f"{BASE}/v2/inventory/counts/batch-retrieve", json={"counts": whole})

    (record,) = list(connector().stream("inventory").read("2025-06-01T00:00:00.000Z"))

    assert record == {"id": "V1@L1", "catalog_object_id": "V1", "catalog_object_type": "ITEM_VARIATION",
                      "location_id": "L1", "calculated_at": "2025-06-02T00:00:00.000Z",
                      "states": {"IN_STOCK": "7", "RESERVED_FOR_SALE": "2"}}  # V1@L2 did not change
    first, second = posts(httpx_mock, "/v2/inventory/counts/batch-retrieve")
    assert first == {"location_ids": ["L1", "L2"], "limit": 1000, "updated_after": "2025-05-31T23:59:59.999Z"}
    assert second == {"location_ids": ["L1"], "limit": 1000, "catalog_object_ids": ["V1"]}


def test_location_ids_setting_limits_locations_and_skips_the_listing(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/locations", json=LOCATIONS)
    assert [r["id"] for r in connector(location_ids=["L2"]).stream("locations").read(None)] == ["L2"]


def test_429_rate_limited_and_5xx_on_searches_are_retried_with_backoff(httpx_mock) -> None:
    url = f"{BASE}/v2/customers/search"
    httpx_mock.add_response(url=url, status_code=429, json={"errors": [
        {"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED", "detail": "slow down"}]})
    httpx_mock.add_response(url=url, status_code=503, json={"errors": [
        {"category": "API_ERROR", "code": "SERVICE_UNAVAILABLE"}]})
    httpx_mock.add_response(url=url, json={"customers": [{"id": "C9"}]})
    waits: list[float] = []
    conn = connector(http={"backoff_base": 0.5, "backoff_max": 4})
    conn.sleep = waits.append
    assert [r["id"] for r in conn.stream("customers").read(None)] == ["C9"]
    assert len(waits) == 2 and all(0 <= w <= 1.0 for w in waits)  # full jitter under base * 2 ** (n - 1)


def test_error_bodies_become_messages_with_category_code_and_a_hint(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/customers/search", status_code=400, json={"errors": [
        {"category": "INVALID_REQUEST_ERROR", "code": "INVALID_CURSOR", "detail": "Cursor expired", "field": "cursor"}]})
    with pytest.raises(SquareApiError) as info:
        list(connector().stream("customers").read(None))
    assert "HTTP 400 INVALID_REQUEST_ERROR/INVALID_CURSOR: Cursor expired (field: cursor)" in str(info.value)
    assert info.value.codes == ["INVALID_CURSOR"] and "--full-refresh" in info.value.hint


def test_401_is_fatal_and_never_shows_the_token(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/locations", status_code=401, json={"errors": [
        {"category": "AUTHENTICATION_ERROR", "code": "UNAUTHORIZED"}]})
    with pytest.raises(FatalSyncError) as info:
        connector().check()
    assert "401" in str(info.value) and TOKEN not in f"{info.value} {info.value.hint} {info.value.context}"


def test_check_names_the_locations(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/locations", json=LOCATIONS)
    assert connector().check() == "Square, 2 locations (Causeway Bay, Mong Kok), Square-Version 2025-08-20"


def test_settings_reject_unknown_keys_bad_versions_and_page_sizes() -> None:
    for bad in ({"acess_token": "x"}, {"square_version": "2025-8-20"}, {"customer_page_size": 101},
                {"order_states": ["PAID"]}, {"location_ids": "some"}, {"location_ids": []},
                {"base_url": "connect.squareup.com"}):
        with pytest.raises(ValidationError):
            SquareSettings.model_validate({"access_token": TOKEN, **bad})


# -- push_inventory ---------------------------------------------------------------------------------------------

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


def update(**kw) -> StockUpdate:
    return StockUpdate(**{"item_id": "V1", "location_id": "L1", "quantity": 12, "idempotency_key": "k-1", **kw})


def push(conn: SquareConnector, updates: list[StockUpdate]):
    from storesync.connectors.pos import push as push_module
    with conn.client() as client:
        return push_module.push_inventory(client, updates, now=lambda: NOW)


def test_push_sends_a_physical_count_shaped_like_squares_own_example(httpx_mock) -> None:
    example = json.loads(fixture_path("square_connect-api-specification", "BatchChangeInventoryRequest.example.json")
                         .read_text())
    httpx_mock.add_response(url=f"{BASE}/v2/inventory/changes/batch-create",
                            json={"counts": [count("V1", "L1", "IN_STOCK", "12")]})
    (outcome,) = push(connector(), [update()])
    assert (outcome.status, outcome.actual) == ("applied", 12)
    (sent,) = posts(httpx_mock, "/v2/inventory/changes/batch-create")
    assert set(sent) == set(example)
    (change,) = sent["changes"]
    assert set(change["physical_count"]) <= set(example["changes"][0]["physical_count"])
    assert change == {"type": "PHYSICAL_COUNT", "physical_count": {
        "catalog_object_id": "V1", "location_id": "L1", "state": "IN_STOCK", "quantity": "12",
        "occurred_at": "2026-01-02T03:04:04.678Z", "reference_id": "k-1"}}  # a second behind the clock
    assert sent["idempotency_key"] == "k-1"


def test_push_with_expected_reads_first_and_reports_a_conflict_without_writing(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/v2/inventory/counts/batch-retrieve",
                            json={"counts": [count("V1", "L1", "IN_STOCK", "9")]})
    httpx_mock.add_response(url=f"{BASE}/v2/inventory/changes/batch-create",
                            json={"counts": [count("V2", "L1", "IN_STOCK", "12")]})
    stale, fresh = update(expected=10), update(item_id="V2", expected=0, idempotency_key="k-2")
    outcomes = push(connector(), [stale, fresh])
    assert [(o.status, o.actual) for o in outcomes] == [("conflict", 9), ("applied", 12)]  # V2 has no count: 0
    (read,) = posts(httpx_mock, "/v2/inventory/counts/batch-retrieve")
    assert read["catalog_object_ids"] == ["V1", "V2"] and read["states"] == ["IN_STOCK"]
    assert [b["changes"][0]["physical_count"]["catalog_object_id"]
            for b in posts(httpx_mock, "/v2/inventory/changes/batch-create")] == ["V2"]


def test_push_failures_are_per_update_and_a_reused_key_that_landed_counts_as_applied(httpx_mock) -> None:
    error = {"errors": [{"category": "INVALID_REQUEST_ERROR", "code": "NOT_FOUND", "detail": "no such object",
                         "field": "changes[0].physical_count.catalog_object_id"}]}
    reused = {"errors": [{"category": "INVALID_REQUEST_ERROR", "code": "IDEMPOTENCY_KEY_REUSED"}]}
    httpx_mock.add_response(url=f"{BASE}/v2/inventory/changes/batch-create", status_code=400, json=error)
    httpx_mock.add_response(url=f"{BASE}/v2/inventory/changes/batch-create", status_code=400, json=reused)
    httpx_mock.add_response(url=f"{BASE}/v2/inventory/counts/batch-retrieve",
                            json={"counts": [count("V3", "L1", "IN_STOCK", "12")]})
    outcomes = push(connector(), [update(item_id="NOPE"), update(quantity=-1, idempotency_key="k-neg"),
                                  update(item_id="V3", idempotency_key="k-3")])
    assert [o.status for o in outcomes] == ["failed", "failed", "applied"]
    assert "NOT_FOUND" in outcomes[0].detail and "negative" in outcomes[1].detail
    assert outcomes[2].detail == "already applied under this key"
