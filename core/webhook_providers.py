"""What ``storesync serve`` does per provider: check a delivery's signature, name it, and later apply it.

Each connector type that receives webhooks has one :class:`Provider`. The request handler calls only the cheap
parts (``secret``, ``verify``, ``describe``: a signature and a header or two) and queues the delivery; the worker
thread calls ``apply`` on the queued row, which may call the provider's API (Square events name an order only by
id) and writes through the mappings (``core/apply.py``). The signature checks and body parsers are the
connectors' own (``connectors/*/webhooks.py``); nothing here re-implements them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from .apply import Applied, apply_records
from .capabilities import ConsentChange, Delivery
from .errors import MappingError, SkippableRecordError
from .webhook_queue import QueuedDelivery

__all__ = ["PROVIDERS", "Outcome", "PermanentError", "Provider", "Received"]


#: ``apply``'s default: no lock around the store writes (the worker passes its ``write_lock``)
_NO_LOCK = nullcontext()


class PermanentError(Exception):
    """A delivery that can never apply (a body that is not what the provider sends): failed without retries."""


@dataclass(frozen=True, slots=True)
class Received:
    """What the request handler learns from a verified delivery: its id, topic and the headers worth keeping."""

    delivery_id: str
    topic: str
    headers: dict[str, str]


@dataclass
class Outcome:
    """What applying one delivery did: the queue state to record, details, and the SKUs to reconcile."""

    state: str
    detail: dict[str, Any] = field(default_factory=dict)
    skus: set[str] = field(default_factory=set)
    error: str | None = None

    @classmethod
    def of(cls, applied: Applied) -> Outcome:
        """``applied`` if anything was written, ``quarantined`` if a record did not map, else ``stale``."""
        if applied.quarantined and not applied.written:
            state = "quarantined"
        elif applied.stale and not (applied.written or applied.unchanged):
            state = "stale"
        else:
            state = "applied"
        error = "; ".join(applied.quarantined) or None
        return cls(state, applied.as_dict(), set(applied.skus), error)


def _body_id(body: bytes) -> str:
    """A delivery id for a provider that sent none: the body's hash (a retry carries the same body)."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


class Provider:
    """The interface; one subclass per connector type."""

    type_name: str = ""
    #: what the provider expects in a 2xx body (Twilio: TwiML)
    media_type: str = "application/json"

    def secret(self, connector: Any) -> str | None:
        raise NotImplementedError

    def verify(self, connector: Any, url: str, headers: Mapping[str, str], body: bytes) -> bool:
        raise NotImplementedError

    def describe(self, headers: Mapping[str, str], body: bytes) -> Received:
        raise NotImplementedError

    def apply(self, session: Any, connector: Any, delivery: QueuedDelivery,
              lock: AbstractContextManager[Any] = _NO_LOCK) -> Outcome:
        raise NotImplementedError

    def hint(self) -> str:
        """How to give the connector the secret it lacks."""
        raise NotImplementedError


class ShopifyProvider(Provider):
    """``X-Shopify-Hmac-Sha256`` over the raw body with the app's client secret (``webhook_secret``)."""

    type_name = "shopify"
    KEPT = ("x-shopify-topic", "x-shopify-webhook-id", "x-shopify-triggered-at", "x-shopify-shop-domain",
            "x-shopify-api-version", "x-shopify-event-id")

    def secret(self, connector: Any) -> str | None:
        value = connector.settings.webhook_secret
        return value.get_secret_value() if value is not None else None

    def verify(self, connector: Any, url: str, headers: Mapping[str, str], body: bytes) -> bool:
        from ..connectors.shopify.webhooks import verify_signature

        return verify_signature(self.secret(connector) or "", body, headers.get("x-shopify-hmac-sha256"))

    def describe(self, headers: Mapping[str, str], body: bytes) -> Received:
        kept = {k: headers[k] for k in self.KEPT if k in headers}
        return Received(headers.get("x-shopify-webhook-id") or _body_id(body),
                        headers.get("x-shopify-topic") or "unknown", kept)

    def apply(self, session: Any, connector: Any, delivery: QueuedDelivery,
              lock: AbstractContextManager[Any] = _NO_LOCK) -> Outcome:
        from ..connectors.shopify.webhooks import TOPICS, webhook_record

        if delivery.topic not in TOPICS:
            return Outcome("skipped", {"reason": f"topic {delivery.topic!r} is not used by storesync"})
        try:
            record = webhook_record(delivery.topic, delivery.body, delivery.headers)
        except SkippableRecordError as exc:
            raise PermanentError(str(exc)) from None
        return _apply(session, connector.id, [(record.stream, record.record)], lock)

    def hint(self) -> str:
        return 'set webhook_secret = "${SHOPIFY_WEBHOOK_SECRET}" (the app\'s client secret)'


class SquareProvider(Provider):
    """``x-square-hmacsha256-signature`` over the notification URL plus the raw body (``webhook_signature_key``)."""

    type_name = "square"
    KEPT = ("square-initial-delivery-timestamp", "square-retry-number", "square-environment")

    def secret(self, connector: Any) -> str | None:
        value = connector.settings.webhook_signature_key
        return value.get_secret_value() if value is not None else None

    def verify(self, connector: Any, url: str, headers: Mapping[str, str], body: bytes) -> bool:
        from ..connectors.pos.webhooks import SIGNATURE_HEADER, verify_signature

        notification_url = connector.settings.notification_url or url
        return verify_signature(self.secret(connector) or "", notification_url, body, headers.get(SIGNATURE_HEADER))

    def describe(self, headers: Mapping[str, str], body: bytes) -> Received:
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            event = None
        event = event if isinstance(event, dict) else {}
        kept = {k: headers[k] for k in self.KEPT if k in headers}
        return Received(str(event.get("event_id") or _body_id(body)), str(event.get("type") or "unknown"), kept)

    def apply(self, session: Any, connector: Any, delivery: QueuedDelivery,
              lock: AbstractContextManager[Any] = _NO_LOCK) -> Outcome:
        from ..connectors.pos.webhooks import event_records

        try:
            event = event_records(delivery.body)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        if not event.supported:
            return Outcome("skipped", {"reason": f"event type {event.type!r} is not used by storesync"})
        event = connector.resolve_event(delivery.body)  # re-reads the order or the levels the event names
        if not event.records:
            return Outcome("skipped", {"reason": "the event's order or levels are no longer there"})
        return _apply(session, connector.id, event.records, lock)

    def hint(self) -> str:
        return ('set webhook_signature_key = "${SQUARE_WEBHOOK_KEY}" and notification_url = "<the URL in '
                'Square\'s dashboard>"')


class TwilioProvider(Provider):
    """``X-Twilio-Signature``: HMAC-SHA1 over the full URL plus the sorted form parameters (``auth_token``)."""

    type_name = "twilio"
    media_type = "text/xml"

    def secret(self, connector: Any) -> str | None:
        return connector.settings.auth_token.get_secret_value() or None

    def verify(self, connector: Any, url: str, headers: Mapping[str, str], body: bytes) -> bool:
        from ..connectors.sms.webhooks import verify_signature

        signature = headers.get("x-twilio-signature")
        if "json" in headers.get("content-type", ""):
            return verify_signature(self.secret(connector) or "", url, signature, body=body)
        return verify_signature(self.secret(connector) or "", url, signature, _form(body))

    def describe(self, headers: Mapping[str, str], body: bytes) -> Received:
        params = dict(_form(body))
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        status = params.get("MessageStatus") or params.get("SmsStatus")
        topic = "message.status" if status and params.get("Body") is None else "message.inbound"
        token = headers.get("i-twilio-idempotency-token")
        delivery_id = token or (f"{sid}:{status}" if topic == "message.status" and sid else sid) or _body_id(body)
        return Received(delivery_id, topic, {"content-type": headers.get("content-type", "")})

    def apply(self, session: Any, connector: Any, delivery: QueuedDelivery,
              lock: AbstractContextManager[Any] = _NO_LOCK) -> Outcome:
        from ..connectors.sms import INVALID_NUMBER, OPTED_OUT
        from ..connectors.sms.webhooks import parse_inbound, parse_status_callback
        from .consent import apply_consent
        from .outbox import record_status

        params = dict(_form(delivery.body))
        try:
            if delivery.topic == "message.status":
                cb = parse_status_callback(params)
            else:
                inbound = parse_inbound(params)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        store = session.store
        if delivery.topic == "message.status":
            code = cb.error_code
            recipient = "opted_out" if code == OPTED_OUT else "invalid" if code in INVALID_NUMBER else None
            with lock:
                done = record_status(store, connector.id, cb.message_sid,
                                     Delivery(cb.message_sid, cb.status, code, recipient=recipient))
            detail = {"message": cb.message_sid, "status": cb.status}
            return Outcome("applied" if done else "stale", detail)
        if inbound.action not in ("opt_out", "opt_in"):
            return Outcome("skipped", {"reason": "an inbound message without a STOP/START keyword"})
        change = ConsentChange(inbound.sender, inbound.action == "opt_out", delivery.received_at,
                               f"{inbound.body.strip().upper()} reply")
        with lock, store.engine.begin() as conn:
            apply_consent(conn, change)
        return Outcome("applied", {"consent": inbound.action})

    def hint(self) -> str:
        return "set auth_token (it signs Twilio's requests)"


def _form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def _apply(session: Any, connector_id: str, records: list[tuple[str, Any]],
           lock: AbstractContextManager[Any]) -> Outcome:
    """Records through the connector's mapping; streams it does not map are left out (and said so)."""
    mapping = session.host.mapping(connector_id)
    mapped = [(s, r) for s, r in records if s in mapping.streams]
    if not mapped:
        streams = sorted({s for s, _r in records})
        return Outcome("skipped", {"reason": f"the mapping maps none of the streams {streams}"})
    try:
        with lock:
            return Outcome.of(apply_records(session.host, session.store, connector_id, mapped))
    except MappingError as exc:
        raise PermanentError(str(exc)) from None


PROVIDERS: dict[str, Provider] = {p.type_name: p for p in (ShopifyProvider(), SquareProvider(), TwilioProvider())}
