"""Reading the stored stock reports and open orders that ``core/inventory.py`` reconciles.

A level report names its SKU in one of three ways, by system: directly (Odoo's quants), through the variant it
counts (Square's catalog object id), or through the variant's ``inventory_item_id`` (Shopify's levels). Open
demand is every line, not yet fulfilled, of an order whose status is ``open``; an order that a connector
forwarded into another (web and till orders written into the ERP, ``forwarded_order``) counts once, as the
source's order, not again as the ERP's copy.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .forwarded import ForwardedOrderRow
from .inventory import Demand, LevelReport
from .store import Store
from .tables import CHILD_TABLES, ENTITY_TABLES

__all__ = ["load_demand", "load_reports"]

_LEVEL = ENTITY_TABLES["inventory_level"]
_VARIANT = ENTITY_TABLES["variant"]
_ORDER = ENTITY_TABLES["order"]
_LINE = CHILD_TABLES["order"][1]
_FORWARDED = ForwardedOrderRow.__table__  # type: ignore[attr-defined]


def load_reports(store: Store, sku: str | None = None) -> list[LevelReport]:
    """Every current level report (``sku``: only that SKU's)."""
    t = _LEVEL
    query = sa.select(t.c.connector_id, t.c.location_external_id, t.c.sku, t.c.variant_external_id,
                      t.c.attributes, t.c.on_hand, t.c.available, t.c.committed, t.c.as_of).where(~t.c.deleted)
    with store.engine.connect() as conn:
        by_id, by_item = _variant_skus(conn)
        rows = conn.execute(query).all()
    out = []
    for cid, location, own_sku, variant, attributes, on_hand, available, committed, as_of in rows:
        resolved = own_sku or by_id.get((cid, variant))
        if resolved is None:
            item = (attributes or {}).get("inventory_item_id")
            resolved = by_item.get((cid, str(item))) if item is not None else None
        if resolved is None or (sku is not None and resolved != sku):
            continue
        out.append(LevelReport(cid, str(location), resolved, on_hand if on_hand is not None else available,
                               committed, as_of))
    return out


def load_demand(store: Store, sku: str | None = None) -> list[Demand]:
    """Open order lines still to fulfil (``sku``: only that SKU's), the ERP's copies of forwarded orders left out."""
    o, line = _ORDER, _LINE
    query = (sa.select(o.c.connector_id, o.c.external_id, o.c.created_at, o.c.location_external_id, line.c.sku,
                       line.c.variant_external_id, line.c.quantity, line.c.fulfilled_quantity)
             .join(line, line.c.order_id == o.c.id).where(o.c.status == "open", ~o.c.deleted))
    copies = sa.select(_FORWARDED.c.connector_id, _FORWARDED.c.target_id).where(_FORWARDED.c.target_id.is_not(None))
    with store.engine.connect() as conn:
        by_id, _by_item = _variant_skus(conn)
        forwarded = {(cid, str(target)) for cid, target in conn.execute(copies)}
        rows = conn.execute(query).all()
    out = []
    for cid, order_id, created_at, location, own_sku, variant, quantity, fulfilled in rows:
        if (cid, str(order_id)) in forwarded:
            continue
        resolved = own_sku or by_id.get((cid, variant))
        left = (quantity or 0) - (fulfilled or 0)
        if resolved is None or left <= 0 or (sku is not None and resolved != sku):
            continue
        out.append(Demand(cid, str(order_id), created_at, resolved, left,
                          str(location) if location is not None else None))
    return out


def _variant_skus(conn: Any) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    """(connector, variant id) -> SKU, and (connector, inventory item id) -> SKU."""
    v = _VARIANT
    by_id: dict[tuple[str, str], str] = {}
    by_item: dict[tuple[str, str], str] = {}
    for cid, ext, sku, item in conn.execute(sa.select(v.c.connector_id, v.c.external_id, v.c.sku,
                                                      v.c.inventory_item_id).where(v.c.sku.is_not(None))):
        by_id[(cid, str(ext))] = sku
        if item is not None:
            by_item[(cid, str(item))] = sku
    return by_id, by_item
