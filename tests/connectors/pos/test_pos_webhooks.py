"""Square webhooks: the SDK's signature vectors, and every event fixture turned into stream records."""

from __future__ import annotations

import json

import pytest
from shared_fixtures import fixture_path

from storesync.connectors.pos.webhooks import (
    SIGNATURE_HEADER,
    event_records,
    new_events,
    signature_for,
    verify_signature,
)
from storesync.core.seen import SeenIds

SPEC = "square_connect-api-specification"


def vectors() -> list[dict]:
    return json.loads(fixture_path("square-python-sdk", "webhook_signature_vectors.json").read_text())["vectors"]


def event(name: str) -> str:
    return fixture_path(SPEC, f"{name}.example.json").read_text(encoding="utf-8")


def test_signature_vectors_of_the_square_sdk() -> None:
    cases = vectors()
    assert len(cases) >= 3 and any(not c["valid"] for c in cases)
    for case in cases:
        ok = verify_signature(case["signature_key"], case["notification_url"], case["raw_body"], case["signature"])
        assert ok is case["valid"], case.get("why", case["notification_url"])
        assert verify_signature(case["signature_key"], case["notification_url"], case["raw_body"].encode(),
                                case["signature"]) is case["valid"]  # bytes as received, same answer


def test_a_changed_body_key_or_missing_header_fails() -> None:
    case = next(c for c in vectors() if c["valid"])
    key, url, raw, sig = case["signature_key"], case["notification_url"], case["raw_body"], case["signature"]
    assert signature_for(key, url, raw) == sig
    assert not verify_signature(key, url, raw.replace("webhooks", "webhookz"), sig)
    assert not verify_signature(key + "x", url, raw, sig)
    assert not verify_signature(key, url, raw, None) and not verify_signature(key, url, raw, "")
    assert not verify_signature("", url, raw, sig)
    assert not verify_signature(key, url, raw, "é" + sig[1:])  # non-ASCII header: False, not an exception
    assert SIGNATURE_HEADER == "x-square-hmacsha256-signature"


def test_customer_events_carry_the_whole_customer() -> None:
    for name, kind in (("CustomerCreatedEvent", "customer.created"), ("CustomerUpdatedEvent", "customer.updated")):
        body = json.loads(event(name))
        out = event_records(event(name))
        assert (out.event_id, out.type, out.supported) == (body["event_id"], kind, True)
        assert out.records == [("customers", body["data"]["object"]["customer"])] and not out.refetch


def test_order_events_name_the_order_to_refetch() -> None:
    for name in ("OrderCreatedEvent", "OrderUpdatedEvent"):
        out = event_records(event(name).encode())
        assert out.records == [] and out.refetch == {"orders": ["eA3vssLHKJrv9H0IdJCM3gNqfdcZY"]}


def test_inventory_event_is_folded_like_the_stream_and_marked_for_a_full_reread() -> None:
    out = event_records(event("InventoryCountUpdatedEvent"))
    assert out.event_id == "df5f3813-a913-45a1-94e9-fdc3f7d5e3b6"
    assert out.partial == [("inventory", {
        "id": "FGQ5JJWT2PYTHF35CKZ2DSKP@YYQR03DGCTXA4", "catalog_object_id": "FGQ5JJWT2PYTHF35CKZ2DSKP",
        "catalog_object_type": "ITEM_VARIATION", "location_id": "YYQR03DGCTXA4",
        "calculated_at": "2019-10-29T18:38:45.10296Z", "states": {"IN_STOCK": "10"}})]
    assert out.refetch == {"inventory": [("FGQ5JJWT2PYTHF35CKZ2DSKP", "YYQR03DGCTXA4")]}


def test_other_events_are_unsupported_and_bad_bodies_are_clear_errors() -> None:
    for name in ("CatalogVersionUpdatedEvent", "OrderFulfillmentUpdatedEvent"):
        out = event_records(event(name))
        assert not out.supported and not out.records and not out.refetch
    with pytest.raises(ValueError, match="not JSON"):
        event_records(b"{truncated")
    with pytest.raises(ValueError, match="event_id"):
        event_records({"type": "customer.created"})
    with pytest.raises(ValueError, match="without data.object.customer"):
        event_records({"event_id": "e1", "type": "customer.updated", "data": {"object": {}}})


def test_a_redelivered_event_is_left_out_once_seen() -> None:
    first, other = json.loads(event("CustomerCreatedEvent")), json.loads(event("CustomerUpdatedEvent"))
    redelivered = json.dumps(first)  # the same event_id, as Square sends it again after a timeout
    seen = SeenIds(capacity=2)

    kept = [e.event_id for e in new_events([json.dumps(first), redelivered, json.dumps(other), redelivered], seen)]

    assert kept == [first["event_id"], other["event_id"]]
