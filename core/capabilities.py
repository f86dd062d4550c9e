"""The shapes of the optional write capabilities a connector may declare.

A connector declares a capability by defining the method (``Connector.capabilities()`` lists them):

- ``push_inventory(updates: list[StockUpdate]) -> list[PushOutcome]``: set stock of items at locations.
  One outcome per update, in order. Compare-and-set where the API offers it: when ``expected`` is given and
  the system holds another quantity, the outcome is ``conflict`` (never forced); the caller re-reads and
  retries. Errors that affect one update are a ``failed`` outcome; errors that affect all (bad credentials)
  raise ``FatalSyncError``.
- ``create_order(order: Order) -> OrderReceipt``: create the order in the target system exactly once, keyed
  by ``order.external_id`` (look up first, create only when absent).
- ``send_message(message: OutboundMessage) -> Delivery``: hand one message to the gateway. A messaging connector
  may also offer ``message_status(provider_id) -> Delivery`` (read a status back),
  ``find_message(message, since, exclude) -> Delivery | None`` (did the gateway already take this message? for a
  send whose answer was lost) and ``consent_changes(since) -> list[ConsentChange]`` (STOP/START replies).

These are plain frozen dataclasses: they cross no process boundary and carry no validation cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["ConsentChange", "Delivery", "OrderReceipt", "OutboundMessage", "PushOutcome", "StockUpdate"]


@dataclass(frozen=True, slots=True)
class StockUpdate:
    """Set the quantity of one item at one location of the target connector.

    ``item_id`` is what that system's stock API takes, as the connector's mapping stores it in
    ``Variant.inventory_item_id`` (Shopify's inventory item id, Square's catalog variation id, Odoo's
    product id). ``location_id`` is the connector's own location id (``Location.external_id``).
    ``expected`` is the quantity storesync believes the system holds now (compare-and-set); ``None``
    sets unconditionally. ``idempotency_key`` makes a retried push apply once.
    """

    item_id: str
    location_id: str
    quantity: int
    idempotency_key: str
    expected: int | None = None
    sku: str | None = None
    reason: str = "correction"


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What became of one ``StockUpdate``.

    ``applied``: the system now holds ``update.quantity``. ``conflict``: the compare failed; ``actual`` is
    the quantity the system reported, when it said. ``failed``: ``detail`` says why (unknown item, ...).
    """

    update: StockUpdate
    status: Literal["applied", "conflict", "failed"]
    actual: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OrderReceipt:
    """The target system's id for a forwarded order; ``created`` is False when it already existed."""

    external_id: str
    created: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to hand to a gateway; ``idempotency_key`` is the outbox's key for it."""

    to: str
    body: str
    idempotency_key: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The gateway's answer to ``send_message``: its id for the message and the status it reported.

    ``status`` is the provider's own word (``queued``, ``sent``, ``delivered``, ``failed``, ...);
    ``error_code`` and ``detail`` say why a message failed. ``recipient`` says what a failure means for the
    person: ``opted_out`` (they replied STOP; record it, never send again) or ``invalid`` (the number cannot take
    SMS; flag it). ``segments`` is what the gateway bills, when it said.
    """

    provider_id: str | None
    status: str
    error_code: int | None = None
    detail: str = ""
    recipient: Literal["opted_out", "invalid"] | None = None
    segments: int | None = None


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A person's phone opted out of (``opted_out=True``) or back into messages, at ``at``, said by ``source``."""

    phone: str
    opted_out: bool
    at: datetime
    source: str
