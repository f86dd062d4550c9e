"""Shopify webhooks, ready for a receiver: signature check and conversion into stream records.

Shopify signs each delivery with ``X-Shopify-Hmac-Sha256`` = base64(HMAC-SHA256(app client secret, raw body)).
``verify_signature`` checks it over the raw bytes exactly as received (never a re-serialised body) and compares
in constant time. ``webhook_record`` turns a delivery's body into the raw record the matching stream yields (a
webhook body is the REST representation of the resource), so the connector's mapping applies unchanged; delete
topics become a ``Tombstone``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

from ...core.connector import Tombstone
from ...core.errors import SkippableRecordError

__all__ = ["TOPICS", "WebhookRecord", "verify_signature", "webhook_record"]

#: topic -> the stream whose records its body is
TOPICS: dict[str, str] = {
    "orders/create": "orders",
    "orders/updated": "orders",
    "orders/cancelled": "orders",
    "orders/paid": "orders",
    "orders/fulfilled": "orders",
    "orders/delete": "orders",
    "inventory_levels/update": "inventory_levels",
    "inventory_levels/connect": "inventory_levels",
    "customers/create": "customers",
    "customers/update": "customers",
    "customers/delete": "customers",
    "products/create": "products",
    "products/update": "products",
    "products/delete": "products",
    "locations/create": "locations",
    "locations/update": "locations",
}


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """What one delivery means: a record (or tombstone) of ``stream``, and the keys to drop repeats and stale ones.

    ``webhook_id`` is Shopify's delivery id (the same on every retry); ``updated_at`` is the resource's own
    timestamp, for dropping a delivery older than the stored record.
    """

    topic: str
    stream: str
    record: dict[str, Any] | Tombstone
    webhook_id: str | None = None
    updated_at: str | None = None


def verify_signature(secret: str | bytes, body: bytes, signature: str | None) -> bool:
    """True when ``signature`` (the ``X-Shopify-Hmac-Sha256`` header) signs ``body`` with ``secret``.

    Compared in constant time over the decoded digests; a missing or malformed header is simply False.
    """
    if not signature or not secret:
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    expected = hmac.new(key, body, hashlib.sha256).digest()
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(expected, given)


def webhook_record(topic: str, body: bytes | str | dict[str, Any],
                   headers: dict[str, str] | None = None) -> WebhookRecord:
    """Convert one delivery into the record its stream would yield.

    Raises ``SkippableRecordError`` naming the topic for an unknown topic, a body that is not a JSON object or
    one without the resource's key fields; the caller quarantines it and goes on.
    """
    stream = TOPICS.get(topic)
    if stream is None:
        raise SkippableRecordError(f"Shopify webhook topic {topic!r} is not handled; known: {', '.join(TOPICS)}")
    data = _parse(topic, body)
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    webhook_id = lower.get("x-shopify-webhook-id")
    if stream == "inventory_levels":
        item, location = data.get("inventory_item_id"), data.get("location_id")
        if item is None or location is None:
            raise SkippableRecordError(f"Shopify webhook {topic}: body lacks inventory_item_id or location_id")
        data.setdefault("admin_graphql_api_id", f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}")
        return WebhookRecord(topic, stream, data, webhook_id, data.get("updated_at"))
    if data.get("id") is None:
        raise SkippableRecordError(f"Shopify webhook {topic}: body has no 'id'")
    if topic.endswith("/delete"):
        return WebhookRecord(topic, stream, Tombstone(str(data["id"])), webhook_id, lower.get("x-shopify-triggered-at"))
    return WebhookRecord(topic, stream, data, webhook_id, data.get("updated_at"))


def _parse(topic: str, body: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, dict):
        return dict(body)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SkippableRecordError(f"Shopify webhook {topic}: body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SkippableRecordError(f"Shopify webhook {topic}: body is a JSON {type(data).__name__}, not an object")
    return data
