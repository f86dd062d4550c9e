"""Domain events: what happened that a customer may hear about, recorded once and fanned out once.

An event has a stable id (``order.created:<connector>:<order external id>``), so recording it again is a
no-op and listeners de-duplicate by it. ``order.created`` events are derived from the store: every order stored
by a sync whose ``created_at`` is within ``max_age`` and has no event yet gets one, with the fields templates may
use. Other parts of storesync (inventory: oversells, backorders and pre-orders given stock) record events through
``record_events`` with the fields ``EVENT_FIELDS`` lists. ``storesync notify`` fans each new event out through
the ``storesync_event`` hook (rules listen there) and marks it dispatched in the same transaction as the messages
the listeners planned.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column, String, Table
from sqlalchemy.engine import Connection

from .models import Event
from .tables import ENTITY_TABLES, ORDER_LINE_TABLE, JsonType, UtcDateTime, metadata

__all__ = ["EVENT_FIELDS", "EVENT_TABLE", "derive_order_events", "mark_dispatched", "order_data", "record_events",
           "undispatched"]

_RECIPIENT = ("customer_name", "first_name", "last_name")
#: the placeholders each event type carries (besides phone, language and sms_consent, which pick the recipient)
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "order.created": (*_RECIPIENT, "order_number", "total", "currency", "items", "item_count", "location"),
    "stock.back_in_stock": (*_RECIPIENT, "sku", "sku_title", "location"),
    # raised by inventory reconciliation (core/inventory_run.py), one per order line decided
    "oversell_detected": (*_RECIPIENT, "order_number", "sku", "sku_title", "quantity", "detail"),
    "backorder_allocated": (*_RECIPIENT, "order_number", "sku", "sku_title", "quantity", "pickup_location"),
    "preorder_stock_arrived": (*_RECIPIENT, "order_number", "sku", "sku_title", "quantity", "pickup_location"),
}

EVENT_TABLE = Table(
    "event", metadata,
    Column("id", String(255), primary_key=True),
    Column("type", String(64), nullable=False, index=True),
    Column("occurred_at", UtcDateTime(), nullable=False, index=True),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("dispatched_at", UtcDateTime(), nullable=True),
    Column("data", JsonType(), nullable=False),
)


def record_events(conn: Connection, events: Iterable[Event], now: datetime) -> int:
    """Insert events not recorded yet (by id; the first of several with one id); return how many were new."""
    rows = list({e.id: {"id": e.id, "type": e.type, "occurred_at": e.occurred_at, "recorded_at": now,
                        "dispatched_at": None, "data": e.data} for e in reversed(list(events))}.values())[::-1]
    if not rows:
        return 0
    ids = [r["id"] for r in rows]
    known = {r[0] for r in conn.execute(sa.select(EVENT_TABLE.c.id).where(EVENT_TABLE.c.id.in_(ids)))}
    fresh = [r for r in rows if r["id"] not in known]
    if fresh:
        conn.execute(sa.insert(EVENT_TABLE), fresh)
    return len(fresh)


def undispatched(conn: Connection, since: datetime) -> list[Event]:
    """Events not fanned out yet that occurred at or after ``since``, oldest first."""
    t = EVENT_TABLE
    rows = conn.execute(sa.select(t.c.id, t.c.type, t.c.occurred_at, t.c.data).where(
        t.c.dispatched_at.is_(None), t.c.occurred_at >= since).order_by(t.c.occurred_at, t.c.id)).all()
    return [Event(id=r.id, type=r.type, occurred_at=r.occurred_at, data=r.data or {}) for r in rows]


def mark_dispatched(conn: Connection, event_ids: list[str], now: datetime) -> None:
    if event_ids:
        conn.execute(sa.update(EVENT_TABLE).where(EVENT_TABLE.c.id.in_(event_ids)).values(dispatched_at=now))


def derive_order_events(conn: Connection, since: datetime) -> list[Event]:
    """An ``order.created`` event for every stored, not cancelled order created at or after ``since`` that has
    none yet (orders that already have one are not looked at again)."""
    orders = ENTITY_TABLES["order"]
    rows = conn.execute(sa.select(orders).where(
        orders.c.created_at >= since, sa.or_(orders.c.deleted.is_(None), orders.c.deleted.is_(False)),
        orders.c.status != "cancelled").order_by(orders.c.created_at, orders.c.id)).mappings().all()
    ids = {r["id"]: f"order.created:{r['connector_id']}:{r['external_id']}" for r in rows}
    known = {e for (e,) in conn.execute(sa.select(EVENT_TABLE.c.id).where(
        EVENT_TABLE.c.type == "order.created", EVENT_TABLE.c.occurred_at >= since))}
    rows = [r for r in rows if ids[r["id"]] not in known]
    if not rows:
        return []
    lines = _lines(conn, [r["id"] for r in rows])
    return [Event(type="order.created", id=ids[r["id"]], occurred_at=r["created_at"],
                  data=order_data(conn, r, lines.get(r["id"], []))) for r in rows]


def _lines(conn: Connection, order_ids: list[int]) -> dict[int, list[Any]]:
    t = ORDER_LINE_TABLE
    out: dict[int, list[Any]] = {}
    for r in conn.execute(sa.select(t.c.order_id, t.c.title, t.c.sku, t.c.quantity).where(
            t.c.order_id.in_(order_ids)).order_by(t.c.order_id, t.c.position)):
        out.setdefault(r.order_id, []).append(r)
    return out


def order_data(conn: Connection, order: Any, lines: list[Any]) -> dict[str, Any]:
    customer = _customer(conn, order["connector_id"], order["customer_external_id"])
    first, last = customer.get("first_name"), customer.get("last_name")
    name = customer.get("full_name") or " ".join(p for p in (first, last) if p) or None
    return {
        "connector_id": order["connector_id"], "order_external_id": order["external_id"],
        "customer_external_id": order["customer_external_id"],
        "phone": order["phone"] or customer.get("phone"), "language": customer.get("language"),
        "sms_consent": customer.get("sms_consent"),
        "customer_name": name, "first_name": first, "last_name": last,
        "order_number": order["number"] or order["external_id"],
        "total": _money(order["total"]), "currency": order["currency"],
        "items": ", ".join(str(x.title or x.sku) for x in lines if x.title or x.sku),
        "item_count": sum(int(x.quantity or 0) for x in lines), "location": order["location_external_id"],
    }


def _money(value: Decimal | None) -> str | None:
    """``88.00`` whatever scale the database returns (PostgreSQL NUMERIC(24, 8) gives 88.00000000)."""
    if value is None:
        return None
    exact = value.normalize()
    return f"{exact:.2f}" if exact.as_tuple().exponent >= -2 else f"{exact:f}"


def _customer(conn: Connection, connector_id: str, external_id: str | None) -> dict[str, Any]:
    if not external_id:
        return {}
    t = ENTITY_TABLES["customer"]
    row = conn.execute(sa.select(t.c.first_name, t.c.last_name, t.c.full_name, t.c.phone, t.c.language,
                                 t.c.sms_consent).where(t.c.connector_id == connector_id,
                                                        t.c.external_id == external_id)).mappings().first()
    return dict(row) if row else {}
