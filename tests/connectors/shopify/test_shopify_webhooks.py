"""Shopify webhooks: HMAC vectors, and delivery bodies mapping exactly like stream records."""

from __future__ import annotations

import hmac
import json
from pathlib import Path

import pytest
from shared_fixtures import fixture_path
from storesync.connectors.shopify import ShopifyConnector, ShopifySettings
from storesync.connectors.shopify.webhooks import (
    TOPICS,
    verify_signature,
    webhook_record,
)
from storesync.core.connector import ConnectorContext, Tombstone
from storesync.core.errors import SkippableRecordError
from storesync.core.mapping import load_mapping
from storesync.core.transforms import TransformContext, builtin_transforms

MAPPING = Path(__file__).resolve().parents[3] / "mappings" / "shopify.toml"


def vectors() -> dict:
    return json.loads(fixture_path("generated/shopify_webhook_hmac_vectors.json").read_text(encoding="utf-8"))


def test_every_published_vector_verifies() -> None:
    data = vectors()
    assert data["vectors"]
    for vector in data["vectors"]:
        body = vector["raw_body"].encode()
        assert verify_signature(data["secret"], body, vector["x_shopify_hmac_sha256"])
        assert verify_signature(data["secret"].encode(), body, vector["x_shopify_hmac_sha256"])


def test_a_tampered_body_a_wrong_secret_or_a_bad_header_fail() -> None:
    data = vectors()
    vector = data["vectors"][0]
    body, signature = vector["raw_body"].encode(), vector["x_shopify_hmac_sha256"]
    assert not verify_signature(data["secret"], body.replace(b'"available":6', b'"available":60'), signature)
    assert not verify_signature("another-secret", body, signature)
    # the body re-serialised (spaces after separators) is not the body Shopify signed
    assert not verify_signature(data["secret"], json.dumps(json.loads(body)).encode(), signature)
    for bad in (None, "", "not base64!!", signature[:-4], "AAAA"):
        assert not verify_signature(data["secret"], body, bad)
    assert not verify_signature("", body, signature)


def test_signature_compare_uses_constant_time(monkeypatch) -> None:
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    vector = vectors()["vectors"][1]
    assert verify_signature(vectors()["secret"], vector["raw_body"].encode(), vector["x_shopify_hmac_sha256"])
    assert len(calls) == 1


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(MAPPING, registry=builtin_transforms(),
                        ctx=TransformContext(timezone="Asia/Hong_Kong", default_region="HK"))


def single(name: str) -> dict:
    """The one resource in a shopify_python_api fixture like order.json ({"order": {...}})."""
    data = json.loads(fixture_path("shopify_python_api", name).read_text(encoding="utf-8"))
    return next(iter(data.values()))


def test_inventory_level_update_maps_like_the_stream(mapping) -> None:
    data = vectors()
    body = data["vectors"][0]["raw_body"].encode()
    delivery = webhook_record("inventory_levels/update", body,
                              {"X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"})
    assert delivery.stream == "inventory_levels" and delivery.webhook_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    level = mapping.stream("inventory_levels").to_model(delivery.record)
    assert (level.location_external_id, level.available) == ("655441491", 6)
    assert level.updated_at.utcoffset().total_seconds() == -5 * 3600
    assert delivery.updated_at == "2024-07-02T08:57:27-05:00"


def test_a_level_body_without_its_gid_gets_the_one_the_stream_uses() -> None:
    delivery = webhook_record("inventory_levels/update", b'{"inventory_item_id":1,"location_id":2,"available":0}')
    assert delivery.record["admin_graphql_api_id"] == "gid://shopify/InventoryLevel/2?inventory_item_id=1"


def test_customer_update_maps_like_the_stream(mapping) -> None:
    body = vectors()["vectors"][1]["raw_body"]
    delivery = webhook_record("customers/update", body)
    customer = mapping.stream("customers").to_model(delivery.record)
    assert (customer.external_id, customer.email, customer.phone) == ("207119551", "bob.norman@mail.example.com",
                                                                      "+85291234567")


def test_order_and_product_bodies_map_like_the_stream(mapping) -> None:
    order = mapping.stream("orders").to_model(webhook_record("orders/create", json.dumps(single("order.json"))).record)
    assert (order.external_id, order.number, order.customer_external_id) == ("450789469", "#1001", "207119551")
    assert [line.sku for line in order.lines][0] == "IPOD2008GREEN"
    product = mapping.stream("products").to_model(
        webhook_record("products/update", json.dumps(single("product.json")).encode()).record)
    assert product.external_id == str(single("product.json")["id"]) and len(product.variants) == len(
        single("product.json")["variants"])


def test_delete_topics_are_tombstones() -> None:
    delivery = webhook_record("customers/delete", b'{"id": 706405506930370084}',
                              {"X-Shopify-Triggered-At": "2024-07-02T09:00:00Z"})
    assert delivery.record == Tombstone("706405506930370084") and delivery.stream == "customers"


@pytest.mark.parametrize(("topic", "body", "message"), [
    ("app/uninstalled", b"{}", "not handled"),
    ("orders/create", b"{not json", "not JSON"),
    ("orders/create", b"[1, 2]", "JSON list"),
    ("orders/create", b'{"name": "#1001"}', "no 'id'"),
    ("inventory_levels/update", b'{"available": 1}', "lacks inventory_item_id"),
])
def test_bad_deliveries_are_skippable_with_the_topic_named(topic: str, body: bytes, message: str) -> None:
    with pytest.raises(SkippableRecordError, match=message) as caught:
        webhook_record(topic, body)
    assert topic in str(caught.value)


def test_every_topic_names_a_stream_of_the_connector() -> None:
    names = {"customers", "products", "orders", "locations", "inventory_levels"}
    assert set(TOPICS.values()) <= names
    bare = ShopifyConnector("web", ShopifySettings(shop="a.myshopify.com", access_token="x"), ConnectorContext())
    assert {s.name for s in bare.streams()} == names
