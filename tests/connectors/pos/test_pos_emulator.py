"""The Square emulator: ledger-derived counts, idempotent writes, time rules, cursors, auth, 429s, determinism."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import orjson
import pytest
from shared_fixtures import fixture_path

from storesync.connectors.pos.emulator import LeakyBucket, SquareEmulator
from storesync.connectors.pos.emulator_data import generate
from storesync.connectors.pos.emulator_ledger import Ledger
from storesync.connectors.pos.records import rfc3339

TOKEN = "sq_emulator_test_token"
BATCH = "/v2/inventory/changes/batch-create"


@pytest.fixture(scope="module")
def pos():
    with SquareEmulator(orders=300, seed=3, token=TOKEN) as emulator:
        yield emulator


def call(pos: SquareEmulator, path: str, body: dict | None = None, token: str = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if body is None:
        return httpx.get(pos.base_url + path, headers=headers)
    return httpx.post(pos.base_url + path, headers=headers, json=body)


def pair(pos: SquareEmulator, n: int = 0) -> tuple[str, str]:
    items = list(pos.store.items.values())
    return items[n]["item_data"]["variations"][0]["id"], pos.store.location_ids[0]


def count_body(key: str, obj: str, loc: str, quantity: int, when: datetime, **extra) -> dict:
    return {"idempotency_key": key, "changes": [{"type": "PHYSICAL_COUNT", "physical_count": {
        "catalog_object_id": obj, "location_id": loc, "state": "IN_STOCK", "quantity": str(quantity),
        "occurred_at": rfc3339(when)}}], **extra}


def now() -> datetime:
    return datetime.now(timezone.utc) - timedelta(seconds=1)


def test_counts_are_the_last_physical_count_plus_later_adjustments_whatever_the_arrival_order() -> None:
    ledger, d = Ledger(), Decimal
    key = ("V", "L", "IN_STOCK")
    ledger.physical_count(key, d(10), "2025-01-01T00:00:00.000Z", 1, "c1")
    ledger.adjustment("V", "L", "IN_STOCK", "SOLD", d(3), "2025-01-03T00:00:00.000Z", 2, "s1")
    assert ledger.current(key) == 7
    ledger.physical_count(key, d(20), "2025-01-02T00:00:00.000Z", 3, "c2")  # dated before the sale, arrives after
    assert ledger.current(key) == 17  # the sale still applies on top of the earlier-dated count
    ledger.physical_count(key, d(5), "2025-01-04T00:00:00.000Z", 4, "c3")
    assert ledger.current(key) == 5 and ledger.counts[key].calculated_ms == 4
    assert ("V", "L", "SOLD") not in ledger.counts  # SOLD is not a reported count


def test_same_idempotency_key_twice_changes_stock_once(pos) -> None:
    obj, loc = pair(pos, 1)
    before, writes = pos.in_stock(obj, loc), len(pos.writes)
    body = count_body("emu-key-1", obj, loc, before + 5, now())
    first, second = call(pos, BATCH, body), call(pos, BATCH, body)
    assert first.status_code == second.status_code == 200 and first.content == second.content
    assert pos.in_stock(obj, loc) == before + 5
    pos.sell(obj, loc, 2)
    call(pos, BATCH, body)  # a late replay does not undo the sale
    assert pos.in_stock(obj, loc) == before + 3
    other = call(pos, BATCH, {**body, "changes": count_body("x", obj, loc, 1, now())["changes"]})
    assert other.status_code == 400 and other.json()["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert pos.in_stock(obj, loc) == before + 3 and len(pos.writes) == writes + 3


def test_batch_create_answers_with_the_derived_counts(pos) -> None:
    obj, loc = pair(pos, 2)
    reply = call(pos, BATCH, count_body("emu-key-2", obj, loc, 33, now())).json()
    (counted,) = [c for c in reply["counts"] if c["state"] == "IN_STOCK"]
    assert (counted["catalog_object_id"], counted["location_id"], counted["quantity"]) == (obj, loc, "33")
    assert reply["changes"][0]["type"] == "PHYSICAL_COUNT"


@pytest.mark.parametrize("when, detail", [(timedelta(minutes=5), "future"), (timedelta(hours=-25), "24 hours")])
def test_occurred_at_may_not_be_in_the_future_or_older_than_a_day(pos, when, detail) -> None:
    obj, loc = pair(pos, 3)
    before = pos.in_stock(obj, loc)
    reply = call(pos, BATCH, count_body(f"emu-time-{detail}", obj, loc, 1, datetime.now(timezone.utc) + when))
    error = reply.json()["errors"][0]
    assert reply.status_code == 400 and error["code"] == "INVALID_TIME" and detail in error["detail"]
    assert error["field"] == "changes[0].physical_count.occurred_at" and pos.in_stock(obj, loc) == before


def test_reserved_for_sale_is_read_only_and_unknown_objects_are_not_found(pos) -> None:
    obj, loc = pair(pos, 0)
    body = count_body("emu-ro", obj, loc, 1, now())
    body["changes"][0]["physical_count"]["state"] = "RESERVED_FOR_SALE"
    assert call(pos, BATCH, body).json()["errors"][0]["code"] == "INVALID_VALUE"
    missing = call(pos, BATCH, count_body("emu-nf", "NOPE", loc, 1, now())).json()["errors"][0]
    assert (missing["code"], missing["field"]) == ("NOT_FOUND", "changes[0].physical_count.catalog_object_id")


def test_search_cursor_must_come_back_with_the_same_query(pos) -> None:
    query = {"location_ids": pos.store.location_ids[:2], "limit": 5,
             "query": {"sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}}}
    first = call(pos, "/v2/orders/search", query).json()
    second = call(pos, "/v2/orders/search", {**query, "cursor": first["cursor"]}).json()
    stamps = [o["updated_at"] for o in first["orders"] + second["orders"]]
    assert stamps == sorted(stamps) and len({o["id"] for o in first["orders"] + second["orders"]}) == 10
    changed = call(pos, "/v2/orders/search", {**query, "limit": 6, "cursor": first["cursor"]})
    assert changed.status_code == 400 and changed.json()["errors"][0]["code"] == "INVALID_CURSOR"
    unsorted = call(pos, "/v2/orders/search", {**query, "query": {"filter": {"date_time_filter": {
        "updated_at": {"start_at": "2025-01-01T00:00:00Z"}}}, "sort": {"sort_field": "CREATED_AT"}}})
    assert unsorted.status_code == 400 and unsorted.json()["errors"][0]["field"] == "query.sort.sort_field"


def test_get_lists_page_with_a_query_cursor(pos) -> None:
    first = call(pos, "/v2/customers?limit=50").json()
    second = call(pos, f"/v2/customers?limit=50&cursor={first['cursor']}").json()
    ids = [c["id"] for c in first["customers"] + second["customers"]]
    assert len(ids) == len(set(ids)) == 100 and ids[:50] == pos.store.customer_ids[:50]


def test_bearer_token_is_checked_and_the_bucket_answers_rate_limited() -> None:
    with SquareEmulator(orders=20, seed=1, token=TOKEN, rate_limit=LeakyBucket(2, 0.5)) as pos:
        denied = call(pos, "/v2/locations", token="wrong")
        assert denied.status_code == 401 and denied.json()["errors"][0]["code"] == "UNAUTHORIZED"
        codes = [call(pos, "/v2/locations").status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and 429 in codes[2:]


def test_the_seed_is_deterministic_with_overlapping_customers_and_four_locations() -> None:
    one, two = generate(seed=9, orders=200), generate(seed=9, orders=200)
    assert one.orders == two.orders and one.customers == two.customers and one.items == two.items
    assert len(one.locations) == 4 and len(one.orders) == 200
    digits = Counter("".join(ch for ch in orjson.loads(raw)["phone_number"] if ch.isdigit())
                     for raw in one.customers.values())
    assert any(n > 1 for n in digits.values())  # one person entered at two tills
    states = Counter(meta[2] for meta in one.order_meta.values())
    assert set(states) == {"COMPLETED", "OPEN", "CANCELED"}
    reserved = [k for k in one.ledger.counts if k[2] == "RESERVED_FOR_SALE"]
    assert reserved  # open pickup orders hold stock


def test_touch_moves_a_record_to_the_end_of_the_updated_at_order(pos) -> None:
    oid = pos.store.order_index[0][1]
    stamp = pos.touch("orders", oid, state="COMPLETED")
    assert pos.store.order_index[-1] == (stamp, oid)
    assert orjson.loads(pos.store.orders[oid])["version"] >= 2


def test_runs_from_the_command_line_and_prints_a_plugins_toml_snippet() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "storesync.connectors.pos.emulator", "--orders", "50"],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(10)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    text = "".join(lines)
    assert "Square emulator: http://127.0.0.1:" in text and 'type = "square"' in text
    assert "[connectors.tills]" in text and 'access_token = "${SQUARE_TOKEN}"' in text


REQUESTS = {  # each request example of Square's spec -> the endpoint taking it and the response example
    "SearchOrdersRequest": ("/v2/orders/search", "SearchOrdersResponse"),
    "SearchCustomersRequest": ("/v2/customers/search", "SearchCustomersResponse"),
    "SearchCatalogObjectsRequest": ("/v2/catalog/search", "SearchCatalogObjectsResponse"),
    "BatchRetrieveInventoryCountsRequest": ("/v2/inventory/counts/batch-retrieve",
                                            "BatchRetrieveInventoryCountsResponse"),
}


def spec(name: str) -> dict:
    return orjson.loads(fixture_path("square_connect-api-specification", f"{name}.example.json").read_bytes())


@pytest.mark.parametrize("request_name", sorted(REQUESTS))
def test_squares_own_request_examples_are_accepted_and_answered_in_the_documented_shape(pos, request_name) -> None:
    path, response_name = REQUESTS[request_name]
    reply = call(pos, path, spec(request_name))
    assert reply.status_code == 200, reply.text
    assert set(reply.json()) <= set(spec(response_name)) | {"cursor", "latest_time"}


def test_search_filters_of_the_examples_select_what_they_say(pos) -> None:
    email = next(c["email_address"] for c in map(orjson.loads, pos.store.customers.values()) if "email_address" in c)
    found = call(pos, "/v2/customers/search", {"query": {"filter": {"email_address": {"fuzzy": email[2:9]}},
                                                         "sort": {"field": "CREATED_AT", "order": "ASC"}}}).json()
    assert found["customers"] and all(email[2:9].lower() in c["email_address"].lower() for c in found["customers"])
    created = [c["created_at"] for c in found["customers"]]
    assert created == sorted(created)
    teas = call(pos, "/v2/catalog/search", {"object_types": ["ITEM"], "query": {"prefix_query": {
        "attribute_name": "name", "attribute_prefix": "jasmine"}}}).json()["objects"]
    assert teas and all(o["item_data"]["name"].startswith("Jasmine") for o in teas)
    closed = call(pos, "/v2/orders/search", {"location_ids": pos.store.location_ids[:3], "return_entries": True,
                                             "query": {"filter": {"state_filter": {"states": ["COMPLETED"]}},
                                                       "sort": {"sort_field": "CLOSED_AT", "sort_order": "DESC"}},
                                             "limit": 7}).json()
    entries = closed["order_entries"]
    assert len(entries) == 7 and set(entries[0]) == {"order_id", "location_id", "version"}
    stamps = [pos.store.order_meta[e["order_id"]][4] for e in entries]
    assert stamps == sorted(stamps, reverse=True)
