"""storesync serve in process (Starlette's TestClient): signatures per provider, the queue, duplicates, stale
deliveries, Twilio statuses and consent, health and metrics. The worker runs on the test's thread (``run_once``)
so each step is observed between receipt and processing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from storesync.connectors.pos.webhooks import signature_for
from storesync.connectors.shopify.emulator import ShopifyEmulator
from storesync.connectors.sms.webhooks import compute_signature
from storesync.core.operations import Session
from storesync.core.tables import ENTITY_TABLES, MessageRow
from storesync.core.webhook_metrics import Metrics
from storesync.core.webhook_queue import list_deliveries, state_counts
from storesync.core.webhook_worker import DeliveryWorker
from storesync.core.webhooks_app import create_app

SHOP_SECRET = "shpss_test_secret"
SQUARE_KEY = "sq_test_signature_key"
TWILIO_TOKEN = "twilio_test_token"
ACCOUNT = "AC" + "3" * 32
BASE = "http://testserver"
SQUARE_URL = "https://hooks.example.com/webhooks/tills"

CONFIG = f"""
[storesync]
database = "{{database}}"

[connectors.shop]
type = "shopify"
shop = "harbour-goods-hk.myshopify.com"
access_token = "shpat_unused"
base_url = "http://127.0.0.1:9"
webhook_secret = "{SHOP_SECRET}"

[connectors.tills]
type = "square"
access_token = "sq_unused"
base_url = "http://127.0.0.1:9"
webhook_signature_key = "{SQUARE_KEY}"
notification_url = "{SQUARE_URL}"

[connectors.sms]
type = "twilio"
account_sid = "{ACCOUNT}"
auth_token = "{TWILIO_TOKEN}"
from_number = "+15005550006"
base_url = "http://127.0.0.1:9"
"""


class Server:
    def __init__(self, session: Session, client: TestClient, worker: DeliveryWorker) -> None:
        self.session, self.client, self.worker = session, client, worker

    def shopify(self, topic: str, payload: dict[str, Any], *, webhook_id: str = "wh-1",
                secret: str = SHOP_SECRET, tamper: bool = False) -> Any:
        body = json.dumps(payload).encode()
        signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        if tamper:
            body = body.replace(b'"', b' "', 1)
        return self.client.post("/webhooks/shop", content=body, headers={
            "X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": signature, "X-Shopify-Webhook-Id": webhook_id,
            "Content-Type": "application/json"})

    def square(self, event: dict[str, Any], *, tamper: bool = False, url: str = SQUARE_URL) -> Any:
        body = json.dumps(event).encode()
        signature = signature_for(SQUARE_KEY, url, body)
        if tamper:
            body = body.replace(b"Chan", b"Chen")
        return self.client.post("/webhooks/tills", content=body, headers={
            "x-square-hmacsha256-signature": signature, "Content-Type": "application/json"})

    def twilio(self, params: dict[str, str], *, tamper: bool = False) -> Any:
        signature = compute_signature(TWILIO_TOKEN, f"{BASE}/webhooks/sms", params)
        if tamper:
            params = {**params, "MessageStatus": "failed"}
        return self.client.post("/webhooks/sms", content=urlencode(params).encode(), headers={
            "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})

    def rows(self) -> list[dict[str, Any]]:
        return list_deliveries(self.session.store, limit=1000)

    def orders(self) -> list[dict[str, Any]]:
        t = ENTITY_TABLES["order"]
        with self.session.store.read() as conn:
            return [dict(r) for r in conn.execute(sa.select(t.c.external_id, t.c.status, t.c.updated_at,
                                                            t.c.financial_status)).mappings()]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str) -> Iterator[Server]:
    """Every test on SQLite and on PostgreSQL (the queue's insert-or-nothing differs by dialect)."""
    (tmp_path / "plugins.toml").write_text(CONFIG.format(database=store_url), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    session = Session.open(str(tmp_path / "plugins.toml"))
    worker = DeliveryWorker(session, Metrics())
    app = create_app(session, worker=None, metrics=worker.metrics)  # the test drives the worker itself
    with TestClient(app, base_url=BASE) as client:
        yield Server(session, client, worker)
    session.store.close()


@pytest.fixture(scope="module")
def shop_order() -> dict[str, Any]:
    """A real web order body, as the Shopify emulator's scenario hook makes it."""
    shop = ShopifyEmulator(orders=1, customers=1, products=1, seed=3)
    shop.add_product("TEA-1", "Tie Guan Yin 150g", stock={next(iter(shop.store.locations.keys)): 5})
    oid = shop.place_order([("TEA-1", 2)])
    return dict(shop.store.orders[oid])


def test_signed_shopify_delivery_is_queued_then_applied_through_the_mapping(server: Server,
                                                                           shop_order: dict) -> None:
    reply = server.shopify("orders/create", shop_order, webhook_id="wh-create")
    assert reply.status_code == 200 and reply.json()["duplicate"] is False
    (row,) = server.rows()
    assert (row["state"], row["topic"], row["delivery_id"]) == ("queued", "orders/create", "wh-create")
    assert server.orders() == []  # nothing applied inside the request
    assert server.worker.run_once() == 1
    (row,) = server.rows()
    assert row["state"] == "applied" and row["detail"]["inserted"] == 1 and row["detail"]["skus"] == ["TEA-1"]
    (order,) = server.orders()
    assert order["external_id"] == str(shop_order["id"]) and order["status"] == "open"


@pytest.mark.parametrize("how", ["tampered body", "wrong secret", "no signature"])
def test_a_bad_shopify_signature_is_401_and_nothing_is_stored(server: Server, shop_order: dict, how: str) -> None:
    if how == "no signature":
        reply = server.client.post("/webhooks/shop", content=json.dumps(shop_order).encode(),
                                   headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "x"})
    else:
        reply = server.shopify("orders/create", shop_order, tamper=how == "tampered body",
                               secret="shpss_other" if how == "wrong secret" else SHOP_SECRET)
    assert reply.status_code == 401
    assert server.rows() == [] and server.worker.run_once() == 0 and server.orders() == []
    assert server.worker.metrics.counts["rejected"] == 1


def test_square_signature_covers_the_notification_url_and_the_body(server: Server) -> None:
    customer = {"id": "CUST9XYZ", "given_name": "Tai Man", "family_name": "Chan", "email_address": "tm@example.com",
                "phone_number": "+85291234567", "created_at": "2026-11-30T02:00:00.000Z",
                "updated_at": "2026-11-30T02:00:00.000Z", "version": 1}
    event = {"merchant_id": "M1", "type": "customer.created", "event_id": "evt-1",
             "created_at": "2026-11-30T02:00:01Z", "data": {"type": "customer", "id": "CUST9XYZ",
                                                             "object": {"customer": customer}}}
    assert server.square(event, tamper=True).status_code == 401
    assert server.square(event, url=f"{BASE}/webhooks/tills").status_code == 401  # signed for another URL
    assert server.rows() == []
    assert server.square(event).status_code == 200
    assert server.square(event).json()["duplicate"] is True  # Square retries carry the same event_id
    assert len(server.rows()) == 1
    server.worker.run_once()
    (row,) = server.rows()
    assert row["state"] == "applied", row
    t = ENTITY_TABLES["customer"]
    with server.session.store.read() as conn:
        stored = conn.execute(sa.select(t.c.external_id, t.c.email).where(t.c.connector_id == "tills")).all()
    assert [tuple(r) for r in stored] == [("CUST9XYZ", "tm@example.com")]


def test_twilio_status_callback_updates_the_message_and_a_tampered_one_is_refused(server: Server) -> None:
    now = datetime.now(UTC)
    with server.session.store.engine.begin() as conn:
        conn.execute(sa.insert(MessageRow.__table__).values(
            idempotency_key="k1", to="+85291234567", body="hi", status="sent", created_at=now,
            connector_id="sms", provider_id="SM" + "a" * 32, attempts=1))
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT,
              "To": "+85291234567", "From": "+15005550006"}
    assert server.twilio(params, tamper=True).status_code == 401
    reply = server.twilio(params)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/xml")
    assert server.twilio(params).status_code == 200  # the same status again: one row
    assert len(server.rows()) == 1
    server.worker.run_once()
    with server.session.store.read() as conn:
        assert conn.execute(sa.select(MessageRow.status)).scalar_one() == "delivered"
    # a late "sent" never moves a delivered message back
    server.twilio({**params, "MessageStatus": "sent"})
    server.worker.run_once()
    with server.session.store.read() as conn:
        assert conn.execute(sa.select(MessageRow.status)).scalar_one() == "delivered"
    assert sorted(r["state"] for r in server.rows()) == ["applied", "stale"]


def test_twilio_inbound_stop_records_the_opt_out(server: Server) -> None:
    from storesync.core.consent import blocked_reason

    params = {"MessageSid": "SM" + "b" * 32, "From": "+85261234567", "To": "+15005550006", "Body": " stop ",
              "SmsStatus": "received", "AccountSid": ACCOUNT}
    assert server.twilio(params).status_code == 200
    server.worker.run_once()
    with server.session.store.read() as conn:
        assert blocked_reason(conn, "+85261234567") is not None


def test_duplicate_deliveries_are_answered_200_without_a_second_row(server: Server, shop_order: dict) -> None:
    first = server.shopify("orders/create", shop_order, webhook_id="wh-dup")
    again = server.shopify("orders/create", shop_order, webhook_id="wh-dup")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == {"queued": None, "duplicate": True}
    assert len(server.rows()) == 1
    server.worker.run_once()
    assert server.shopify("orders/create", shop_order, webhook_id="wh-dup").json()["duplicate"] is True
    assert server.worker.run_once() == 0
    assert server.worker.metrics.counts["duplicates"] == 2 and server.worker.metrics.counts["queued"] == 1


def test_an_older_event_delivered_after_a_newer_one_is_ignored(server: Server, shop_order: dict) -> None:
    created = datetime.fromisoformat(shop_order["updated_at"])
    newer = {**shop_order, "financial_status": "refunded",
             "updated_at": (created + timedelta(minutes=5)).isoformat()}
    older = {**shop_order, "financial_status": "partially_refunded",
             "updated_at": (created + timedelta(minutes=1)).isoformat()}
    server.shopify("orders/updated", newer, webhook_id="wh-newer")
    server.worker.run_once()
    server.shopify("orders/updated", older, webhook_id="wh-older")  # Shopify does not deliver in order
    server.worker.run_once()
    (order,) = server.orders()
    assert order["financial_status"] == "refunded"
    states = {r["delivery_id"]: r["state"] for r in server.rows()}
    assert states == {"wh-newer": "applied", "wh-older": "stale"}
    # the same older event within one batch is left out too
    server.shopify("orders/updated", {**older, "financial_status": "voided"}, webhook_id="wh-older-2")
    server.shopify("orders/updated", {**newer, "financial_status": "paid",
                                      "updated_at": (created + timedelta(minutes=9)).isoformat()},
                   webhook_id="wh-newest")
    server.worker.run_once()
    (order,) = server.orders()
    assert order["financial_status"] == "paid"


def test_unknown_topics_are_acknowledged_and_skipped_and_bad_bodies_fail_without_retrying(server: Server) -> None:
    assert server.shopify("app/uninstalled", {"id": 1}, webhook_id="wh-app").status_code == 200
    assert server.shopify("orders/create", {"no": "id"}, webhook_id="wh-bad").status_code == 200
    server.worker.run_once()
    states = {r["delivery_id"]: (r["state"], r["error"]) for r in server.rows()}
    assert states["wh-app"][0] == "skipped"
    assert states["wh-bad"][0] == "failed" and "has no 'id'" in states["wh-bad"][1]
    assert server.worker.run_once() == 0


def test_a_record_that_does_not_map_is_quarantined_like_a_sync_would(server: Server, shop_order: dict) -> None:
    broken = {**shop_order, "id": 999, "currency": None, "created_at": "not a date"}
    server.shopify("orders/create", broken, webhook_id="wh-broken")
    server.worker.run_once()
    (row,) = server.rows()
    assert row["state"] == "quarantined" and "999" in row["error"]
    assert [q["external_id"] for q in server.session.store.quarantined("shop", "orders")] == ["999"]


def test_unknown_connector_is_404_health_and_metrics_report_counts(server: Server, shop_order: dict) -> None:
    assert server.client.post("/webhooks/nope", content=b"{}").status_code == 404
    server.shopify("orders/create", shop_order, webhook_id="wh-m1")
    server.shopify("orders/create", shop_order, tamper=True)
    health = server.client.get("/healthz")
    assert health.status_code == 200 and health.json()["queue_depth"] == 1
    assert set(health.json()["endpoints"]) == {"shop", "tills", "sms"}
    server.worker.run_once()
    text = server.client.get("/metrics").text
    assert "storesync_webhooks_received_total 3" in text and "storesync_webhooks_rejected_total 2" in text
    assert "storesync_webhooks_applied_total 1" in text and "storesync_webhooks_queue_depth 0" in text
    data = server.client.get("/metrics?format=json").json()
    assert data["queue_depth"] == 0 and data["applied"] == 1 and data["latency_seconds"]["max"] >= 0
    assert state_counts(server.session.store) == {"applied": 1}


def test_register_tells_what_to_set_where_no_api_subscribes(server: Server) -> None:
    from storesync.core.errors import ConfigError
    from storesync.core.webhook_register import register

    (square,) = register(server.session, "tills", SQUARE_URL)
    assert square.status == "manual" and SQUARE_URL in square.detail and "[connectors.tills]" in square.detail
    twilio = register(server.session, "sms", f"{BASE}/webhooks/sms")
    assert [r.topic for r in twilio] == ["message.status", "message.inbound"]
    assert 'status_callback = "http://testserver/webhooks/sms"' in twilio[0].detail
    with pytest.raises(ConfigError, match="did you mean 'shop'"):
        register(server.session, "shops", SQUARE_URL)
