"""Reading the stored stock reports and open orders that ``core/inventory.py`` reconciles.

A level report names its SKU in one of three ways, by system: directly (Odoo's quants), through the variant it
counts (Square's catalog object id), or through the variant's ``inventory_item_id`` (Shopify's levels). Open
demand is every line, not yet fulfilled, of an order whose status is ``open``; an order that a connector
forwarded into another (web and till orders written into the ERP, ``forwarded_order``) counts once, as the
source's order, not again as the ERP's copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .forwarded import ForwardedOrderRow
from .inventory import Demand, LevelReport
from .inventory_ledger import AllocationRow
from .inventory_tables import item_id_of_level
from .store import Store
from .tables import CHILD_TABLES, ENTITY_TABLES

__all__ = ["VariantMaps", "bulk_targets", "channel_items", "channel_levels", "channel_totals", "iter_reports",
           "load_demand", "load_reports", "pending_skus", "recent_sales", "sku_titles", "variant_skus", "wanted_skus"]

_LEVEL = ENTITY_TABLES["inventory_level"]
_VARIANT = ENTITY_TABLES["variant"]
_ORDER = ENTITY_TABLES["order"]
_LINE = CHILD_TABLES["order"][1]
_FORWARDED = ForwardedOrderRow.__table__  # type: ignore[attr-defined]
_ALLOCATION = AllocationRow.__table__  # type: ignore[attr-defined]


#: SKUs looked up per query when a run reads the rows of some SKUs only (one IN list stays well within limits)
CHUNK_SKUS = 2000


VariantMaps = tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]


def load_reports(store: Store | Connection, sku: str | set[str] | None = None, *,
                 variants: VariantMaps | None = None) -> list[LevelReport]:
    """Every current level report (``sku``: only that SKU's, or those SKUs'). ``variants``: what
    ``variant_skus`` returns, when the caller has read it already."""
    return list(iter_reports(store, sku, variants=variants))


def iter_reports(store: Store | Connection, sku: str | set[str] | None = None, *,
                 variants: VariantMaps | None = None) -> Iterator[LevelReport]:
    """``load_reports`` one report at a time, as the rows arrive: ``reconcile`` keeps one position per SKU and
    location, not every report (2.7 million on a catalogue of 100,000 SKUs). The names a report carries (its
    connector, location and SKU) are one shared string each, and a report time one shared value (a till's count
    stamps all its SKUs alike), not a copy per row."""
    wanted = wanted_skus(sku)
    names: dict[str, str] = {}
    stamps: dict[Any, Any] = {}
    t = _LEVEL
    query = sa.select(t.c.id, t.c.connector_id, t.c.location_external_id, t.c.sku, t.c.variant_external_id,
                      item_id_of_level(), t.c.on_hand, t.c.available, t.c.committed, t.c.as_of).where(~t.c.deleted)
    with _connection(store) as conn:
        by_id, by_item = variants or variant_skus(conn)
        for _id, cid, location, own_sku, variant, item, on_hand, available, committed, as_of in _level_rows(
                conn, query, wanted):
            resolved = own_sku or by_id.get((cid, variant))
            if resolved is None and item is not None:
                resolved = by_item.get((cid, str(item)))
            if resolved is None or (wanted is not None and resolved not in wanted):
                continue
            location = str(location)
            yield LevelReport(names.setdefault(cid, cid), names.setdefault(location, location),
                              names.setdefault(resolved, resolved), on_hand if on_hand is not None else available,
                              committed, stamps.setdefault(as_of, as_of))


def _level_rows(conn: Any, query: Any, skus: set[str] | None) -> Iterator[Any]:
    """The rows of ``query`` (over ``inventory_level``, its first column the row id): all of them, or, per
    chunk of ``skus``, those that may name one of them, each row once."""
    if skus is None:
        yield from conn.execute(query)
        return
    t, v = _LEVEL, _VARIANT
    with_items = list(conn.execute(sa.select(v.c.connector_id).where(v.c.inventory_item_id.is_not(None))
                                   .distinct()).scalars())
    seen: set[int] = set()
    ordered = sorted(skus)
    for start in range(0, len(ordered), CHUNK_SKUS):
        chunk = ordered[start:start + CHUNK_SKUS]
        # one indexed look-up per way a row names its SKU (an OR of them would scan the table); SQLite uses the
        # index on the inventory item id for one connector at a time
        by_item = [sa.select(t.c.id).where(t.c.connector_id == cid, item_id_of_level().in_(
            sa.select(v.c.inventory_item_id).where(v.c.connector_id == cid, v.c.sku.in_(chunk))))
            for cid in with_items]
        ids = sa.union(sa.select(t.c.id).where(t.c.sku.in_(chunk)),
                       sa.select(t.c.id).where(sa.tuple_(t.c.connector_id, t.c.variant_external_id).in_(
                           sa.select(v.c.connector_id, v.c.external_id).where(v.c.sku.in_(chunk)))), *by_item)
        for row in conn.execute(query.where(t.c.id.in_(ids))):
            if row[0] not in seen:
                seen.add(row[0])
                yield row


def load_demand(store: Store | Connection, sku: str | set[str] | None = None, *,
                variants: VariantMaps | None = None) -> list[Demand]:
    """Open order lines still to fulfil (``sku``: only that SKU's), the ERP's copies of forwarded orders left out,
    each with what reconciliation decided for it before (``inventory_allocation``). ``variants``: as for
    ``load_reports``."""
    o, line, a = _ORDER, _LINE, _ALLOCATION
    query = (sa.select(o.c.connector_id, o.c.external_id, o.c.created_at, o.c.location_external_id, line.c.sku,
                       line.c.variant_external_id, line.c.quantity, line.c.fulfilled_quantity)
             .join(line, line.c.order_id == o.c.id).where(o.c.status == "open", ~o.c.deleted)
             .order_by(o.c.id))  # an order's lines together: two of them for one SKU are merged below
    f = _FORWARDED
    copies = sa.select(f.c.connector_id, f.c.target_id, f.c.source_connector_id, f.c.source_external_id).where(
        f.c.target_id.is_not(None))
    wanted = wanted_skus(sku)
    decided = sa.select(a.c.connector_id, a.c.order_id, a.c.sku, a.c.state, a.c.location, a.c.updated_at)
    if wanted is not None:  # only lines naming those SKUs, directly or through a variant of theirs
        names = sorted(wanted)
        variant_ids = sa.select(_VARIANT.c.external_id).where(_VARIANT.c.sku.in_(names))
        query = query.where(sa.or_(line.c.sku.in_(names), line.c.variant_external_id.in_(variant_ids)))
        decided = decided.where(a.c.sku.in_(names))
    with _connection(store) as conn:
        by_id, _by_item = variants or variant_skus(conn)
        forwarded: set[tuple[str, str]] = set()
        targets: dict[tuple[str, str], list[str]] = {}
        for cid, target, source, source_id in conn.execute(copies):
            forwarded.add((cid, str(target)))
            targets.setdefault((source, str(source_id)), []).append(cid)
        allocations = {(r.connector_id, r.order_id, r.sku): r for r in conn.execute(decided)}
        out: list[Demand] = []
        merged: dict[tuple[str, str, str], int] = {}  # this order's lines so far
        names: dict[str, str] = {}  # one string per connector, SKU and location, not a copy per line
        for cid, order_id, created_at, location, own_sku, variant, quantity, fulfilled in conn.execute(query):
            order_id = str(order_id)
            if merged and next(iter(merged))[:2] != (cid, order_id):
                merged.clear()
            if (cid, order_id) in forwarded:
                continue
            resolved = own_sku or by_id.get((cid, variant))
            left = (quantity or 0) - (fulfilled or 0)
            if resolved is None or left <= 0 or (wanted is not None and resolved not in wanted):
                continue
            key = (cid, order_id, resolved)
            got = allocations.get(key)
            same = merged.get(key)
            if same is not None:  # two lines of one order for one SKU: one demand (and one decision) for both
                out[same] = replace(out[same], quantity=out[same].quantity + left)
                continue
            merged[key] = len(out)
            place = str(location) if location is not None else None
            out.append(Demand(names.setdefault(cid, cid), order_id, created_at, names.setdefault(resolved, resolved),
                              left, names.setdefault(place, place) if place is not None else None,
                              allocated_to=got.location if got is not None and got.state == "allocated" else None,
                              allocated_at=got.updated_at if got is not None and got.state == "allocated" else None,
                              state=got.state if got is not None else None,
                              forwarded_to=tuple(targets.get((cid, order_id), ()))))
    return out


def channel_items(store: Store | Connection, channels: list[str],
                  skus: set[str] | None = None) -> dict[tuple[str, str], str]:
    """(channel, SKU) -> the id that channel's stock API takes: its variant's inventory item id, else the
    variant id (``skus``: only those SKUs')."""
    v = _VARIANT
    query = sa.select(v.c.connector_id, v.c.sku, v.c.external_id, v.c.inventory_item_id).where(
        v.c.connector_id.in_(channels), v.c.sku.is_not(None), ~v.c.deleted)
    with _connection(store) as conn:
        return {(cid, sku): str(item if item is not None else ext) for cid, sku, ext, item in conn.execute(query)
                if skus is None or sku in skus}


def channel_levels(store: Store | Connection, channels: list[str], skus: set[str] | None = None,
                   items: dict[tuple[str, str], str] | None = None) -> dict[tuple[str, str, str], tuple[int, Any]]:
    """(channel, its location id, item id) -> the sellable quantity that channel last reported (its ``available``,
    else on hand) and when storesync stored that report: the compare value of a push. ``skus``: only the levels
    of those SKUs' items (``items``: what ``channel_items`` returns for them, when the caller has it)."""
    t = _LEVEL
    query = sa.select(t.c.id, t.c.connector_id, t.c.location_external_id, t.c.variant_external_id,
                      item_id_of_level(), t.c.available, t.c.on_hand, t.c.synced_at).where(
        t.c.connector_id.in_(channels), ~t.c.deleted)
    out: dict[tuple[str, str, str], tuple[int, Any]] = {}
    with _connection(store) as conn:
        wanted = None if skus is None else {(cid, item) for (cid, _sku), item in
                                            (items or channel_items(conn, channels, skus)).items()}
        for _id, cid, location, variant, item, available, on_hand, synced_at in _level_rows(conn, query, skus):
            item = item or variant
            quantity = available if available is not None else on_hand
            if item is None or quantity is None or (wanted is not None and (cid, str(item)) not in wanted):
                continue
            out[(cid, str(location), str(item))] = (int(quantity), synced_at)
    return out


def sku_titles(conn: Any, skus: set[str]) -> dict[str, str]:
    """A name a customer recognises per SKU: the product's title (the variant's where no product names it)."""
    v, p = _VARIANT, ENTITY_TABLES["product"]
    query = (sa.select(v.c.sku, v.c.title, p.c.title).select_from(v)
             .outerjoin(p, sa.and_(p.c.connector_id == v.c.connector_id, p.c.external_id == v.c.product_external_id))
             .where(v.c.sku.in_(sorted(skus))))
    products: dict[str, str] = {}
    variants: dict[str, str] = {}
    for sku, variant, product in conn.execute(query):
        if product:
            products.setdefault(sku, product)
        if variant and variant != "Default Title":
            variants.setdefault(sku, variant)
    return {**variants, **products}


def variant_skus(conn: Any) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
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


def _connection(source: Store | Connection) -> Any:
    """Read on the caller's connection (inside its transaction and locks), or on a new one of the store."""
    return nullcontext(source) if isinstance(source, Connection) else source.engine.connect()


def recent_sales(conn: Connection, skus: set[str], sources: dict[str, str], since: Any,
                 variants: VariantMaps | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Per SKU of ``skus``: the orders of any status but cancelled placed at one of ``sources`` (connector id ->
    its location id) since ``since``, oldest first: (connector id, order id, placed at, quantity, status). The
    evidence of an oversell at a till, whose sales are closed by the time they are synced. ``variants``: as for
    ``load_reports``."""
    o, line = _ORDER, _LINE
    at_location = sa.or_(*(sa.and_(o.c.connector_id == cid, o.c.location_external_id == ext)
                           for cid, ext in sources.items()))
    query = (sa.select(o.c.connector_id, o.c.external_id, o.c.created_at, line.c.sku, line.c.variant_external_id,
                       line.c.quantity, o.c.status)
             .join(line, line.c.order_id == o.c.id)
             .where(at_location, o.c.created_at >= since, o.c.status != "cancelled", ~o.c.deleted)
             .order_by(o.c.created_at, o.c.external_id))
    by_id, _by_item = variants or variant_skus(conn)
    out: dict[str, list[tuple[Any, ...]]] = {sku: [] for sku in skus}
    for cid, oid, placed, own, variant, qty, status in conn.execute(query):
        sku = own or by_id.get((cid, variant))
        if sku in out:
            out[sku].append((cid, str(oid), placed, int(qty or 0), status))
    return out


def wanted_skus(sku: str | set[str] | None) -> set[str] | None:
    """``sku`` as a set of SKUs (None: all)."""
    return None if sku is None else {sku} if isinstance(sku, str) else set(sku)


def pending_skus(conn: Connection, settings_sources: dict[tuple[str, str], str], channels: list[str]) -> set[str]:
    """SKUs with an open line no reconciliation has decided yet and that its channel placed at no canonical
    location (a web order waiting for allocation), or a line parked as a pre-order or backorder."""
    o, line, a, v = _ORDER, _LINE, _ALLOCATION, _VARIANT
    parked = set(conn.execute(sa.select(a.c.sku).where(a.c.state.in_(("preorder", "backordered"))).distinct())
                 .scalars())
    undecided = (sa.select(o.c.connector_id, o.c.external_id, o.c.location_external_id, line.c.sku,
                           line.c.variant_external_id)
                 .join(line, line.c.order_id == o.c.id)
                 .outerjoin(a, (a.c.connector_id == o.c.connector_id) & (a.c.order_id == o.c.external_id))
                 .where(o.c.status == "open", ~o.c.deleted, a.c.id.is_(None), o.c.connector_id.in_(channels)))
    by_id, _by_item = variant_skus(conn)
    out = set(parked)
    for cid, _oid, location, own, variant in conn.execute(undecided):
        if location is not None and (cid, str(location)) in settings_sources:
            continue  # placed at a location by its channel: counted there, nothing to allocate
        resolved = own or by_id.get((cid, variant))
        if resolved:
            out.add(resolved)
    return out


def bulk_targets(store: Store, exclude: set[str]) -> list[Any]:
    """The targets the database computed (``inventory_target``) that differ from the level last pushed, or whose
    channel reported since that push, for the SKUs not in ``exclude``: the candidates of a push."""
    from .inventory_ledger import PushedRow
    from .inventory_push import Target
    from .inventory_tables import TARGET

    t, p = TARGET, PushedRow.__table__  # type: ignore[attr-defined]
    on = (p.c.channel == t.c.channel) & (p.c.location_id == t.c.location_id) & (p.c.item_id == t.c.item_id)
    query = sa.select(t.c.channel, t.c.location_id, t.c.sku, t.c.item_id, t.c.quantity).select_from(
        t.outerjoin(p, on)).where(sa.or_(p.c.quantity.is_(None), p.c.quantity != t.c.quantity,
                                         sa.exists().where(_LEVEL.c.connector_id == t.c.channel,
                                                           _LEVEL.c.location_external_id == t.c.location_id,
                                                           _LEVEL.c.synced_at > p.c.pushed_at)))
    with store.engine.connect() as conn:
        return [Target(*row) for row in conn.execute(query) if row[2] not in exclude]


def channel_totals(store: Store, exclude: set[str]) -> dict[tuple[str, str], int]:
    """(channel, SKU) -> what the channel can sell, summed over its target locations (``inventory_target``)."""
    from .inventory_tables import TARGET

    t = TARGET
    query = sa.select(t.c.channel, t.c.sku, sa.func.sum(t.c.quantity)).group_by(t.c.channel, t.c.sku)
    with store.engine.connect() as conn:
        return {(ch, sku): int(n) for ch, sku, n in conn.execute(query) if sku not in exclude}
