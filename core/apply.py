"""A few stream records of one connector written through its mapping, as a sync would, outside a sync.

The webhook server (``core/webhooks_app.py``) receives records one delivery at a time; they must land exactly as
the same records read by ``storesync sync`` would: the connector's mapping, validation, the veto hook, quarantine
for a record that does not map, and the engine's batch writer (``core/writer.py``) with its content hashes. What
differs from a sync: no cursor moves, and a record older than the stored one is left out (deliveries arrive out
of order; a sync reads in order, so it never needs the check). The check and the write share one transaction.

``affected_skus`` tells which SKUs the written records touch (order lines, levels, variants), so the caller can
reconcile just those.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .connector import Tombstone
from .models import InventoryLevel, Order, Product, Variant
from .plugins import PluginHost
from .recordmap import map_record
from .store import Store
from .tables import ENTITY_TABLES, ORDER_LINE_TABLE
from .writer import Counts, Prepared, QuarantineEntry, RowPreparer

__all__ = ["Applied", "apply_records"]


@dataclass
class Applied(Counts):
    """What :func:`apply_records` did (the writer's counts and more); ``skus`` are the SKUs of every record written
    or deleted."""

    stale: int = 0
    vetoed: int = 0
    quarantined: list[str] = field(default_factory=list)  # the reasons
    skus: set[str] = field(default_factory=set)

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.deleted

    def as_dict(self) -> dict[str, Any]:
        return {"inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
                "deleted": self.deleted, "stale": self.stale, "vetoed": self.vetoed,
                "quarantined": self.quarantined, "skus": sorted(self.skus)}


def apply_records(host: PluginHost, store: Store, connector_id: str,
                  records: Iterable[tuple[str, dict[str, Any] | Tombstone]]) -> Applied:
    """Map, check and store ``(stream, raw record or Tombstone)`` pairs of ``connector_id``; one transaction per
    stream. A stream the connector's mapping does not map raises ``MappingError`` naming it."""
    by_stream: dict[str, list[dict[str, Any] | Tombstone]] = defaultdict(list)
    for stream, record in records:
        by_stream[stream].append(record)
    out = Applied()
    mapping = host.mapping(connector_id)
    connector = host.connector(connector_id)
    veto = bool(host.pm.hook.storesync_record_mapped.get_hookimpls())
    for stream, items in by_stream.items():
        smap = mapping.stream(stream)
        prepare = RowPreparer(smap.target, store.dialect, connector_id, stream)
        vetoed = functools.partial(_vetoed, host, connector, stream) if veto else None
        prepared: list[Prepared] = []
        quarantine: list[QuarantineEntry] = []
        tombstones: list[str] = []
        for record in items:
            if isinstance(record, Tombstone):
                tombstones.append(str(record.external_id))
                continue
            result = map_record(smap, prepare, record, vetoed)
            if result is None:
                out.vetoed += 1
            elif isinstance(result, QuarantineEntry):
                quarantine.append(result)
                out.quarantined.append(f"{stream} {result.external_id or result.record_key}: {result.reason}")
            else:
                prepared.append(result)
        with store.write() as w:
            fresh = _newer_only(w.conn, ENTITY_TABLES[smap.target], connector_id, stream, prepared)
            out.stale += len(prepared) - len(fresh)
            counts = w.upsert_prepared(connector_id, stream, smap.target, fresh)
            out.inserted, out.updated = out.inserted + counts.inserted, out.updated + counts.updated
            out.unchanged += counts.unchanged
            out.deleted += w.tombstone(connector_id, stream, smap.target, tombstones)
            w.quarantine(connector_id, stream, quarantine, None)
            if fresh:
                w.clear_quarantine(connector_id, stream, [p.item.external_id for p in fresh])
            out.skus |= affected_skus(w.conn, connector_id, [p.item.model for p in fresh])
            out.skus |= _stored_skus(w.conn, connector_id, stream, smap.target, tombstones)
    return out


def _vetoed(host: PluginHost, connector: Any, stream: str, model: Any) -> bool:
    """The ``storesync_record_mapped`` hook, as the engine calls it: any ``False`` drops the record."""
    results = host.hook.storesync_record_mapped(connector=connector, stream=stream, record=model)
    return any(r is False for r in results)


def _newer_only(conn: Any, table: sa.Table, connector_id: str, stream: str,
                prepared: list[Prepared]) -> list[Prepared]:
    """Leave out records whose ``updated_at`` is older than the stored row's (a delivery overtaken by a newer one).

    A record without ``updated_at``, or with no stored row, always passes; an equal time passes too (the content
    hash then decides whether anything changes).
    """
    if not prepared or "updated_at" not in table.c:
        return prepared
    latest: dict[str, Prepared] = {}
    for p in prepared:  # two versions of one record in one call: keep the newer
        ext, seen = p.item.external_id, latest.get(p.item.external_id)
        if seen is None or _older(seen.item.model, p.item.model) is not True:
            latest[ext] = p
    stored = _stored_times(conn, table.name, connector_id, stream, list(latest))
    return [p for ext, p in latest.items()
            if not _before(getattr(p.item.model, "updated_at", None), _aware(stored.get(ext)))]


def _stored_times(conn: Any, table: str, connector_id: str, stream: str, keys: list[str]) -> dict[str, Any]:
    """``external_id -> updated_at`` of the stored rows, through the DB-API as the writer reads (a few rows, on
    the hot path of every delivery: SQLAlchemy's statement building would cost more than the query)."""
    ph = "?" if conn.dialect.name == "sqlite" else "%s"
    cur = conn.connection.driver_connection.cursor()
    cur.execute(f"SELECT external_id, updated_at FROM {table} WHERE connector_id = {ph} AND stream = {ph} "
                f"AND external_id IN ({', '.join([ph] * len(keys))})", [connector_id, stream, *keys])
    return dict(cur.fetchall())


def _older(a: Any, b: Any) -> bool | None:
    """Whether model ``b`` is older than model ``a`` (``None`` when either has no time)."""
    ta, tb = getattr(a, "updated_at", None), getattr(b, "updated_at", None)
    return None if ta is None or tb is None else tb < ta


def _before(incoming: datetime | None, stored: datetime | None) -> bool:
    return incoming is not None and stored is not None and incoming < stored


def _aware(value: Any) -> datetime | None:
    """A stored ``updated_at`` as an aware datetime (SQLite returns text through the raw connection)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def affected_skus(conn: Any, connector_id: str, models: list[Any]) -> set[str]:
    """The SKUs ``models`` touch: an order's lines, a level, a variant, a product's variants; a missing SKU is
    looked up in the connector's stored variants by variant id or inventory item id."""
    skus: set[str] = set()
    variant_ids: set[str] = set()
    item_ids: set[str] = set()

    def note(sku: str | None, variant: str | None = None, item: Any = None) -> None:
        if sku:
            skus.add(sku)
        elif variant:
            variant_ids.add(str(variant))
        elif item is not None:
            item_ids.add(str(item))

    for model in models:
        if isinstance(model, Order):
            for line in model.lines:
                note(line.sku, line.variant_external_id)
        elif isinstance(model, Product):
            for variant in model.variants:
                note(variant.sku)
        elif isinstance(model, InventoryLevel):
            note(model.sku, model.variant_external_id, (model.attributes or {}).get("inventory_item_id"))
        elif isinstance(model, Variant):
            note(model.sku)
    if variant_ids or item_ids:
        v = ENTITY_TABLES["variant"]
        query = sa.select(v.c.sku).where(v.c.connector_id == connector_id, v.c.sku.is_not(None), sa.or_(
            v.c.external_id.in_(sorted(variant_ids)), v.c.inventory_item_id.in_(sorted(item_ids))))
        skus.update(s for (s,) in conn.execute(query))
    return skus


def _stored_skus(conn: Any, connector_id: str, stream: str, target: str, external_ids: list[str]) -> set[str]:
    """The SKUs of stored rows just marked deleted (a cancelled or deleted order frees its units)."""
    if not external_ids or target not in ("order", "variant", "inventory_level"):
        return set()
    table = ENTITY_TABLES[target]
    where = (table.c.connector_id == connector_id, table.c.stream == stream, table.c.external_id.in_(external_ids))
    if target == "order":
        line = ORDER_LINE_TABLE
        query = sa.select(line.c.sku).join(table, line.c.order_id == table.c.id).where(*where,
                                                                                      line.c.sku.is_not(None))
    else:
        query = sa.select(table.c.sku).where(*where, table.c.sku.is_not(None))
    return {s for (s,) in conn.execute(query)}
