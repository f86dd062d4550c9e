"""The ``shopify`` connector against mocked HTTP (pytest-httpx) and the real API payloads through its mapping."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from shared_fixtures import fixture_path

from storesync.connectors.shopify import ShopifyConnector, ShopifySettings
from storesync.connectors.shopify.client import ShopifyClient, parse_link_header
from storesync.core.connector import ConnectorContext
from storesync.core.errors import FatalSyncError, RecordMappingError, RetriableSyncError
from storesync.core.pages import expand_pages
from storesync.core.mapping import load_mapping
from storesync.core.transforms import TransformContext, builtin_transforms

REPO = Path(__file__).resolve().parents[3]
SHOP = "lamkee.myshopify.com"
BASE = f"https://{SHOP}/admin/api/2024-07"
TOKEN = "shpat_0123456789abcdef_secret"


def read(stream, cursor) -> list:
    """A stream's records with its undecoded pages decoded, as the engine sees them."""
    return list(expand_pages(stream.read(cursor)))


def connector(**settings) -> ShopifyConnector:
    values = {"shop": SHOP, "access_token": TOKEN, "pacing": False, **settings}
    conn = ShopifyConnector("web", ShopifySettings.model_validate(values), ConnectorContext())
    conn.sleep = lambda seconds: None  # Retry-After and backoff waits are not slept in unit tests
    return conn


def query(url) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(url)).query)


# -- paging ---------------------------------------------------------------------------------------------------

def test_filters_go_on_the_first_request_only_and_the_next_link_is_followed_exactly(httpx_mock) -> None:
    next_url = f"{BASE}/customers.json?limit=2&page_info=eyJhZnRlciI6Mn0"
    httpx_mock.add_response(
        url=f"{BASE}/customers.json?limit=2&updated_at_min=2025-06-01T00%3A00%3A00%2B08%3A00",
        json={"customers": [{"id": 1}, {"id": 2}]},
        headers={"Link": f'<{BASE}/customers.json?limit=2&page_info=cHJldg>; rel="previous", <{next_url}>; rel="next"'})
    httpx_mock.add_response(url=next_url, json={"customers": [{"id": 3}]})  # last page: no Link header

    stream = connector(page_size=2).stream("customers")
    records = read(stream, "2025-06-01T00:00:00+08:00")

    assert [r["id"] for r in records] == [1, 2, 3]
    first, second = httpx_mock.get_requests()
    assert query(first.url) == {"limit": ["2"], "updated_at_min": ["2025-06-01T00:00:00+08:00"]}
    assert first.headers["X-Shopify-Access-Token"] == TOKEN
    assert str(second.url) == next_url  # exactly as Shopify sent it
    assert "updated_at_min" not in query(second.url)  # a filter here would be a 400 from Shopify
    assert query(second.url) == {"limit": ["2"], "page_info": ["eyJhZnRlciI6Mn0"]}
    assert stream.cursor_field == "updated_at"


def test_without_a_cursor_the_first_request_has_no_updated_at_min_and_orders_ask_for_every_status(httpx_mock):
    httpx_mock.add_response(url=f"{BASE}/orders.json?limit=250&status=any", json={"orders": []})
    assert read(connector().stream("orders"), None) == []
    assert query(httpx_mock.get_requests()[0].url) == {"limit": ["250"], "status": ["any"]}


@pytest.mark.parametrize("header, expected", [
    ('<https://a/x.json?page_info=p&limit=5>; rel="previous", <https://a/x.json?page_info=n&limit=5>; rel="next"',
     {"previous": "https://a/x.json?page_info=p&limit=5", "next": "https://a/x.json?page_info=n&limit=5"}),
    ("<https://a/x.json?page_info=n>;rel=next", {"next": "https://a/x.json?page_info=n"}),
    ('  < https://a/x.json?page_info=n >  ;  title="a, b; c" ; REL = "Next"  ', {"next": "https://a/x.json?page_info=n"}),
    ('<https://a/x.json?ids=1,2&page_info=n>; rel="next prev"',
     {"next": "https://a/x.json?ids=1,2&page_info=n", "prev": "https://a/x.json?ids=1,2&page_info=n"}),
    ("", {}),
    (None, {}),
    ("garbage without brackets", {}),
])
def test_link_headers_are_parsed_robustly(header, expected) -> None:
    assert parse_link_header(header) == expected


def test_inventory_levels_read_every_location_in_batches_of_50_with_the_cursor(httpx_mock) -> None:
    locations = [{"id": 1000 + i} for i in range(60)]
    httpx_mock.add_response(url=f"{BASE}/locations.json?limit=250", json={"locations": locations})
    level_url = re.compile(re.escape(f"{BASE}/inventory_levels.json") + r"\?.*")
    httpx_mock.add_response(url=level_url, json={"inventory_levels": [
        {"inventory_item_id": 7, "location_id": 1000, "available": 3, "updated_at": "2025-06-02T10:00:00+08:00"}]})
    httpx_mock.add_response(url=level_url, json={"inventory_levels": []})

    stream = connector().stream("inventory_levels")
    levels = list(stream.read("2025-06-01T00:00:00+08:00"))

    assert levels == [{"inventory_item_id": 7, "location_id": 1000, "available": 3,
                       "updated_at": "2025-06-02T10:00:00+08:00",
                       "admin_graphql_api_id": "gid://shopify/InventoryLevel/1000?inventory_item_id=7"}]
    assert stream.primary_key == "admin_graphql_api_id"  # unique per level: the engine de-duplicates on it
    _, first, second = httpx_mock.get_requests()
    batches = [query(r.url)["location_ids"][0].split(",") for r in (first, second)]
    assert [len(b) for b in batches] == [50, 10]
    assert batches[0][0] == "1000" and batches[1][-1] == "1059"
    assert all(query(r.url)["updated_at_min"] == ["2025-06-01T00:00:00+08:00"] for r in (first, second))


def test_locations_have_no_cursor_and_are_always_read_in_full(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/locations.json?limit=250", json={"locations": [{"id": 1}, {"id": 2}]})
    stream = connector().stream("locations")
    assert stream.cursor_field is None
    assert [r["id"] for r in stream.read(None)] == [1, 2]


# -- errors, retries, check -----------------------------------------------------------------------------------

def test_429_with_retry_after_is_waited_out_and_retried(httpx_mock) -> None:
    url = f"{BASE}/products.json?limit=250"
    httpx_mock.add_response(url=url, status_code=429, headers={"Retry-After": "2.0"},
                            json={"errors": "Exceeded 2 calls per second for api client."})
    httpx_mock.add_response(url=url, json={"products": [{"id": 9}]})
    waits: list[float] = []
    conn = connector()
    conn.sleep = waits.append

    assert [p["id"] for p in read(conn.stream("products"), None)] == [9]
    assert waits == [2.0]  # exactly the server's Retry-After
    assert len(httpx_mock.get_requests()) == 2


def test_pacing_waits_before_the_bucket_overflows(httpx_mock) -> None:
    waits: list[float] = []
    httpx_mock.add_response(url=f"{BASE}/shop.json", json={"shop": {"name": "x"}}, is_reusable=True)
    with ShopifyClient(name="t", base_url=f"https://{SHOP}", token=TOKEN, api_version="2024-07", pacing=True,
                       bucket_size=5, leak_rate=1.0, sleep=waits.append) as client:
        for _ in range(3):
            client.get("shop")
        assert client.requests_made == 3
    assert waits and all(w > 0 for w in waits)  # headroom 4 of 5: the 2nd call already waits


def test_401_is_fatal_with_a_hint_and_never_shows_the_token(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/shop.json", status_code=401,
                            json={"errors": "[API] Invalid API key or access token"})
    with pytest.raises(FatalSyncError) as info:
        connector().check()
    text = f"{info.value} {info.value.hint}"
    assert "401" in str(info.value) and "access token" in (info.value.hint or "")
    assert TOKEN not in text and TOKEN not in repr(info.value.context)


def test_other_4xx_is_fatal_and_names_the_error(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/orders.json?limit=250&status=any", status_code=400,
                            json={"errors": "created_at_min cannot be passed when page_info is present"})
    with pytest.raises(FatalSyncError, match="HTTP 400: created_at_min cannot be passed"):
        list(connector().stream("orders").read(None))


def test_a_page_that_does_not_decode_is_downloaded_again(httpx_mock) -> None:
    url = f"{BASE}/customers.json?limit=250"
    whole = json.dumps({"customers": [{"id": 1}, {"id": 2}]}).encode()
    httpx_mock.add_response(url=url, content=whole[: len(whole) // 2])  # a short body: valid HTTP, half the JSON
    httpx_mock.add_response(url=url, content=whole)

    assert [r["id"] for r in read(connector().stream("customers"), None)] == [1, 2]
    assert len(httpx_mock.get_requests()) == 2


def test_a_page_that_never_decodes_fails_the_stream_with_a_retriable_error(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/customers.json?limit=250", json={"customer": []}, is_reusable=True)
    with pytest.raises(RetriableSyncError, match="expected a JSON object with a 'customers' list"):
        read(connector().stream("customers"), None)
    assert len(httpx_mock.get_requests()) == 4  # the first download and three more


def test_a_next_link_to_another_host_is_refused(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/customers.json?limit=250", json={"customers": [{"id": 1}]},
                            headers={"Link": '<https://evil.example/steal?page_info=x>; rel="next"'})
    with pytest.raises(FatalSyncError, match="refusing"):
        list(connector().stream("customers").read(None))


def test_check_describes_the_shop(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/shop.json", json={"shop": {"name": "Lam Kee", "myshopify_domain": SHOP}})
    assert connector().check() == f"Shopify shop 'Lam Kee' ({SHOP}), API 2024-07"


def test_settings_reject_unknown_keys_and_bad_page_sizes() -> None:
    for bad in ({"page_size": 251}, {"page_size": 0}, {"acces_token": "x"}):
        with pytest.raises(ValueError):
            ShopifySettings.model_validate({"shop": SHOP, "access_token": TOKEN, **bad})
    assert "shpat" not in repr(ShopifySettings(shop=SHOP, access_token=TOKEN))


# -- the default mapping on real API payloads ---------------------------------------------------------------

@pytest.fixture(scope="module")
def mapping():
    return load_mapping(REPO / "mappings" / "shopify.toml", registry=builtin_transforms(),
                        ctx=TransformContext(timezone="Asia/Hong_Kong", default_region="HK"))


FIXTURES = {"orders": ["order.json", "orders.json"], "customers": ["customer.json", "customers_search.json"],
            "products": ["product.json", "products.json"], "locations": ["location.json", "locations.json"],
            "inventory_levels": ["inventory_level.json", "inventory_levels.json"]}


def payloads(name: str) -> list[dict]:
    data = json.loads(fixture_path("shopify_python_api", name).read_text(encoding="utf-8"))
    if isinstance(data, dict) and len(data) == 1:
        data = next(iter(data.values()))
    return data if isinstance(data, list) else [data]


def mapped(mapping, stream: str) -> dict[str, list]:
    out = {}
    for name in FIXTURES[stream]:
        models = []
        for raw in payloads(name):
            try:
                models.append(mapping.stream(stream).to_model(raw))
            except RecordMappingError as exc:  # pragma: no cover - the failure message is the point
                pytest.fail(f"{name}: {exc} (field {exc.field})")
        assert models, name
        out[name] = models
    return out


def test_every_fixture_payload_maps_without_errors(mapping) -> None:
    for stream in FIXTURES:
        mapped(mapping, stream)


def test_orders_map_money_lines_and_timestamps(mapping) -> None:
    (order,) = mapped(mapping, "orders")["order.json"]
    assert order.external_id == "450789469" and order.number == "#1001"
    assert order.currency == "USD" and order.total == Decimal("409.94") and order.subtotal == Decimal("398.00")
    assert order.status == "open" and order.financial_status == "authorized"
    assert order.email == "bob.norman@hostmail.com" and order.customer_external_id == "207119551"
    assert order.created_at.utcoffset() == timedelta(hours=-5)
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines][0] == \
        ("IPOD2008GREEN", 1, Decimal("199.00"))
    assert all(line.external_id and line.variant_external_id for line in order.lines)
    listed = mapped(mapping, "orders")["orders.json"]
    assert any(o.phone == "+557734881234" for o in listed)  # E.164 kept


def test_order_status_comes_from_cancel_reason_and_closed_at(mapping) -> None:
    (raw,) = payloads("order.json")
    orders = mapping.stream("orders")
    assert orders.to_model({**raw, "closed_at": "2008-01-11T11:00:00-05:00"}).status == "closed"
    cancelled = orders.to_model({**raw, "cancel_reason": "customer", "cancelled_at": "2008-01-11T11:00:00-05:00",
                                 "closed_at": "2008-01-11T11:00:00-05:00"})
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None


def test_customers_map_consent_address_and_tags(mapping) -> None:
    (customer,) = mapped(mapping, "customers")["customer.json"]
    assert customer.external_id == "207119551" and customer.email == "bob.norman@hostmail.com"
    assert customer.city == "Louisville" and customer.region == "KY" and customer.country_code == "US"
    assert customer.postal_code == "40202" and customer.tags == [] and customer.email_consent is False
    raw = payloads("customer.json")[0]
    hk = mapping.stream("customers").to_model({
        **raw, "phone": "+85291234567", "tags": "VIP, Wholesale",
        "sms_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
        "email_marketing_consent": {"state": "unsubscribed"}})
    assert hk.phone == "+85291234567" and hk.tags == ["VIP", "Wholesale"]
    assert hk.sms_consent is True and hk.email_consent is False


def test_products_flatten_variants_with_inventory_fields(mapping) -> None:
    (product,) = mapped(mapping, "products")["product.json"]
    assert product.external_id == "632910392" and product.tags == ["Emotive", "Flash Memory", "MP3", "Music"]
    pink = product.variants[0]
    assert (pink.external_id, pink.sku, pink.price, pink.currency) == ("808950810", "IPOD2008PINK",
                                                                     Decimal("199.00"), "HKD")
    assert pink.inventory_policy == "continue" and pink.tracked is True
    assert pink.product_external_id == "632910392"
    raw = payloads("product.json")[0]
    with_item = {**raw, "variants": [{**raw["variants"][0], "inventory_item_id": 808950810,
                                      "inventory_management": None}]}
    variant = mapping.stream("products").to_model(with_item).variants[0]
    assert variant.inventory_item_id == "808950810" and variant.tracked is False


def test_locations_and_inventory_levels(mapping) -> None:
    locations = mapped(mapping, "locations")["locations.json"]
    assert {(loc.external_id, loc.name, loc.country_code) for loc in locations} >= {
        ("487838322", "Fifth Avenue AppleStore", "US")}
    levels = mapped(mapping, "inventory_levels")["inventory_levels.json"]
    first = levels[0]
    assert first.external_id == "39072856:487838322" and first.location_external_id == "487838322"
    assert first.available == 27 and first.attributes == {"inventory_item_id": "39072856"}
    assert first.as_of is not None and first.as_of.utcoffset() == timedelta(hours=-4)
    assert first.sku is None  # joined to variants by inventory_item_id later
    assert len({lv.external_id for lv in levels}) == len(levels)  # the composite key is unique
