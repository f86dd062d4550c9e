"""Reading the stored stock reports and open orders that ``core/inventory.py`` reconciles.

A level report names its SKU in one of three ways, by system: directly (Odoo's quants), through the variant it
counts (Square's catalog object id), or through the variant's ``inventory_item_id`` (Shopify's levels). Open
demand is every line, not yet fulfilled, of an order whose status is ``open``; an order that a connector
forwarded into another (web and till orders written into the ERP, ``forwarded_order``) counts once, as the
source's order, not again as the ERP's copy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from .inventory import Demand, LevelReport
from .store import Store

__all__ = ["load_demand", "load_reports"]


def load_reports(store: Store, sku: str | None = None) -> list[LevelReport]:
    """Every current level report (``sku``: only that SKU's)."""
    with store.engine.connect() as conn:
        variants = _variant_skus(conn)
        rows = conn.execute(sa.text(
            "SELECT connector_id, location_external_id, sku, variant_external_id, attributes, on_hand, available, "
            "committed, as_of FROM inventory_level WHERE deleted = :no"), {"no": False}).all()
    by_id, by_item = variants
    out = []
    for cid, location, own_sku, variant, attributes, on_hand, available, committed, as_of in rows:
        resolved = own_sku or by_id.get((cid, variant))
        if resolved is None:
            item = _attributes(attributes).get("inventory_item_id")
            resolved = by_item.get((cid, str(item))) if item is not None else None
        if resolved is None or (sku is not None and resolved != sku):
            continue
        out.append(LevelReport(cid, str(location), resolved, on_hand if on_hand is not None else available,
                               committed, _when(as_of)))
    return out


def load_demand(store: Store, sku: str | None = None) -> list[Demand]:
    """Open order lines still to fulfil (``sku``: only that SKU's), the ERP's copies of forwarded orders left out."""
    query = ("SELECT o.connector_id, o.external_id, o.created_at, o.location_external_id, l.sku, "
             "l.variant_external_id, l.quantity, l.fulfilled_quantity FROM orders o "
             "JOIN order_line l ON l.order_id = o.id WHERE o.status = 'open' AND o.deleted = :no")
    with store.engine.connect() as conn:
        by_id, _by_item = _variant_skus(conn)
        copies = _forwarded_copies(conn)
        rows = conn.execute(sa.text(query), {"no": False}).all()
    out = []
    for cid, order_id, created_at, location, own_sku, variant, quantity, fulfilled in rows:
        if (cid, str(order_id)) in copies:
            continue
        resolved = own_sku or by_id.get((cid, variant))
        left = (quantity or 0) - (fulfilled or 0)
        if resolved is None or left <= 0 or (sku is not None and resolved != sku):
            continue
        out.append(Demand(cid, str(order_id), _when(created_at), resolved, left,
                          str(location) if location is not None else None))
    return out


def _variant_skus(conn: Any) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    by_id: dict[tuple[str, str], str] = {}
    by_item: dict[tuple[str, str], str] = {}
    for cid, ext, sku, item in conn.execute(sa.text(
            "SELECT connector_id, external_id, sku, inventory_item_id FROM variant WHERE sku IS NOT NULL")):
        by_id[(cid, str(ext))] = sku
        if item is not None:
            by_item[(cid, str(item))] = sku
    return by_id, by_item


def _forwarded_copies(conn: Any) -> set[tuple[str, str]]:
    """(ERP connector, ERP order id) of every order storesync created there from another connector's order."""
    if not sa.inspect(conn).has_table("forwarded_order"):
        return set()
    rows = conn.execute(sa.text("SELECT connector_id, target_id FROM forwarded_order WHERE target_id IS NOT NULL"))
    return {(cid, str(target)) for cid, target in rows}


def _attributes(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        loaded = orjson.loads(value) if value else {}
    except orjson.JSONDecodeError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)  # SQLite keeps UTC times as ISO text
