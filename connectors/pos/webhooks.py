"""Square webhook notifications: signature verification and event bodies turned into stream records.

No HTTP server lives here (the webhook receiver does that); these are plain functions.

- :func:`verify_signature`: ``x-square-hmacsha256-signature`` is base64(HMAC-SHA256(signature key, notification
  URL + raw body)); compared in constant time. Verify the raw bytes as received, before any JSON parsing.
- :func:`event_records`: ``customer.created``/``customer.updated`` carry the whole customer, so they become
  ``("customers", customer)`` at once. ``order.created``/``order.updated`` carry only the order id, and
  ``inventory.count.updated`` only the states that changed: they are listed in ``refetch`` for
  :func:`complete` (``SquareConnector.resolve_event``) to re-read. Records equal what the streams yield, so the
  same mapping applies. Square delivers at least once: drop repeats with ``SeenIds.first_time(event_id)``
  (``storesync.core.seen``), as :func:`new_events` does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...core.seen import SeenIds
from .records import level_records

__all__ = ["SIGNATURE_HEADER", "SUPPORTED_EVENTS", "EventRecords", "complete", "event_records", "new_events",
           "verify_signature"]

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
SUPPORTED_EVENTS = ("customer.created", "customer.updated", "inventory.count.updated", "order.created",
                    "order.updated")
ORDER_BATCH = 100


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def signature_for(signature_key: str, notification_url: str, raw_body: bytes | str) -> str:
    """The base64 HMAC-SHA256 Square sends for ``raw_body`` posted to ``notification_url``."""
    digest = hmac.new(_bytes(signature_key), _bytes(notification_url) + _bytes(raw_body), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(signature_key: str, notification_url: str, raw_body: bytes | str,
                     signature: str | None) -> bool:
    """True when ``signature`` (the header's value) matches; constant-time; False for a missing header or key.

    ``notification_url`` must be exactly the URL configured in Square's dashboard (scheme, host, path, query).
    """
    if not signature or not signature_key:
        return False
    expected = signature_for(signature_key, notification_url, raw_body).encode("ascii")
    return hmac.compare_digest(expected, _bytes(signature.strip()))


@dataclass
class EventRecords:
    """What one webhook event means for the streams.

    ``records``: ``(stream, raw record)`` pairs ready for the stream's mapping. ``refetch``: what the event only
    points at, by stream: ``{"orders": [order ids], "inventory": [(catalog object id, location id)]}``.
    ``partial``: the inventory records as the event carried them (only the states that changed).
    """

    event_id: str
    type: str
    merchant_id: str | None = None
    created_at: str | None = None
    records: list[tuple[str, dict]] = field(default_factory=list)
    refetch: dict[str, list] = field(default_factory=dict)
    partial: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def supported(self) -> bool:
        """False for event types this connector does not turn into records (acknowledge and ignore them)."""
        return self.type in SUPPORTED_EVENTS


def new_events(bodies: Iterator[bytes | str | dict] | list, seen: SeenIds) -> Iterator[EventRecords]:
    """``event_records`` of each body, leaving out events whose ``event_id`` ``seen`` already holds."""
    for body in bodies:
        event = event_records(body)
        if seen.first_time(event.event_id):
            yield event


def event_records(body: bytes | str | dict) -> EventRecords:
    """Read one event body; raises ``ValueError`` naming what is missing when it is not a Square event."""
    event = _parse(body)
    out = EventRecords(event_id=event["event_id"], type=event["type"], merchant_id=event.get("merchant_id"),
                       created_at=event.get("created_at"))
    data = event.get("data") or {}
    obj = data.get("object") or {}
    if out.type in ("customer.created", "customer.updated"):
        customer = obj.get("customer")
        if not isinstance(customer, dict):
            raise ValueError(f"event {out.event_id}: {out.type} without data.object.customer")
        out.records.append(("customers", customer))
    elif out.type in ("order.created", "order.updated"):
        inner = obj.get(out.type.replace(".", "_")) or {}
        order_id = inner.get("order_id") or data.get("id")
        if not order_id:
            raise ValueError(f"event {out.event_id}: {out.type} without an order id")
        out.refetch["orders"] = [str(order_id)]
    elif out.type == "inventory.count.updated":
        levels = level_records(obj.get("inventory_counts") or [])
        out.partial = [("inventory", level) for level in levels]
        out.refetch["inventory"] = [(lv["catalog_object_id"], lv["location_id"]) for lv in levels]
    return out


def complete(event: EventRecords, client: Any,
             current_levels: Callable[[Any, set[tuple[str, str]]], Iterator[dict]]) -> EventRecords:
    """Fetch what ``event.refetch`` names (orders by id, whole inventory levels) into ``event.records``."""
    order_ids = event.refetch.get("orders") or []
    for start in range(0, len(order_ids), ORDER_BATCH):
        data = client.post("/v2/orders/batch-retrieve", {"order_ids": order_ids[start:start + ORDER_BATCH]})
        event.records.extend(("orders", order) for order in data.get("orders") or ())
    pairs = set(event.refetch.get("inventory") or ())
    if pairs:
        event.records.extend(("inventory", level) for level in current_levels(client, pairs))
    event.refetch = {}
    return event


def _parse(body: bytes | str | dict) -> dict:
    if isinstance(body, dict):
        event = body
    else:
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"webhook body is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise ValueError(f"webhook body must be a JSON object, got {type(event).__name__}")
    missing = [k for k in ("event_id", "type") if not isinstance(event.get(k), str) or not event.get(k)]
    if missing:
        raise ValueError(f"webhook body has no {' or '.join(missing)}: not a Square event notification")
    return event
