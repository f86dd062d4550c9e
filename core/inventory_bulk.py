"""Whole-catalogue reconciliation in the database: every position and channel target by set-based SQL.

``core/inventory.py`` is the reference for the rules and explains a few SKUs; over 100,000 SKUs and a million open
order lines it is too slow and too large in Python. This module computes the same numbers with grouped queries
(SQLAlchemy Core, SQLite and PostgreSQL alike) into ``inventory_position`` and ``inventory_target``
(``core/inventory_tables.py``); only the exceptions (the SKUs with an oversell, a disagreement or an unmapped
report) come back to Python, capped, for the reference to explain.

The rules are the reference's, per SKU: the authority's report is on hand as of its time; open demand placed at a
location after that time is uncounted and committed; available = max(0, on hand - committed - safety stock).
Two choices the reference leaves to the order of its input are fixed here: of several authority reports of one
SKU at one location the latest ``as_of`` wins (one without a time counts as the oldest; ties: the first stored),
and a variant key (connector, variant id or inventory item id) that several stored variants share names the SKU
of the last stored one.

Per push channel, ``inventory_target`` says what the channel should show at each of its own location ids: the
available of that location (locations where the channel has no id fold into its default location, the first of
its locations where it has an id and is not the authority; where it is the authority nothing is pushed: it is
the truth there), less the channel's open demand waiting for a location, taken from the default location first,
then from the others in order, never below zero.

Every number depends on one SKU's rows only, so ``refresh`` recomputes just the SKUs whose reports, orders,
forwarded copies, variants or products changed since the last run (``synced_at`` after the time the last refresh
started, looked back a little for writers that committed late), and everything when the ``[inventory]`` settings
changed or the last full refresh is a day old.
"""

from __future__ import annotations

import ctypes
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .forwarded import ForwardedOrderRow
from .inventory_ledger import AllocationRow
from .inventory_config import InventorySettings
from .inventory_tables import EXCEPTION, POSITION, STATE, TARGET, ensure_indexes, item_id_of_level
from .store import Store
from .tables import CHILD_TABLES, ENTITY_TABLES, UtcDateTime

__all__ = ["BulkResult", "Exceptions", "changed_skus", "exception_skus", "load_tags", "reconcile_bulk", "refresh",
           "settings_hash"]

_LEVEL = ENTITY_TABLES["inventory_level"]
_VARIANT = ENTITY_TABLES["variant"]
_ORDER = ENTITY_TABLES["order"]
_PRODUCT = ENTITY_TABLES["product"]
_LINE = CHILD_TABLES["order"][1]
_FORWARDED = ForwardedOrderRow.__table__  # type: ignore[attr-defined]
_ALLOCATION = AllocationRow.__table__  # type: ignore[attr-defined]

KINDS = ("oversell", "disagree", "unmapped")
#: the PostgreSQL advisory lock key of a refresh (transaction-scoped: released at commit or rollback)
REFRESH_LOCK = int.from_bytes(hashlib.sha256(b"storesync.inventory_refresh").digest()[:7], "big")
#: more changed SKUs than this and a refresh recomputes everything (one pass beats many look-ups)
FULL_ABOVE = 20_000
#: how far before the last refresh's start the next one looks again: a writer stamps ``synced_at`` when it
#: prepares a batch and commits later (waiting up to the store's 60 s busy timeout), and clocks of several workers
#: differ a little; the SKUs written in this window before a refresh are recomputed once more by the next one
LOOKBACK = timedelta(minutes=2)
#: a refresh is full when the last full one is older than this: a stored row that changes its SKU, or an order
#: edited to drop a line, leaves the SKU it no longer names stale, and nothing incremental can find that SKU
FULL_EVERY = timedelta(days=1)


@dataclass
class Exceptions:
    """The SKUs the reference should explain, per kind (each list capped, sorted), and the full counts."""

    skus: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def all_skus(self) -> set[str]:
        return {s for kind in self.skus.values() for s in kind}


@dataclass
class BulkResult:
    """What a refresh did: how many SKUs and rows it recomputed, the exceptions now stored, and its time."""

    full: bool
    skus_recomputed: int
    positions: int
    targets: int
    exceptions: Exceptions
    seconds: float
    without_variant: dict[str, int] = field(default_factory=dict)  # channel -> SKUs it sells but has no variant of
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step, for the benchmark's breakdown
    skus: set[str] | None = None  # the SKUs recomputed; None: every SKU (a full refresh)


def settings_hash(settings: InventorySettings) -> str:
    """A digest of the whole ``[inventory]`` table: a different one makes the next refresh a full one."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()


# -- the temporary tables of one refresh --------------------------------------------------------------------

_TMP = sa.MetaData()


def _temp(name: str, *columns: sa.Column) -> sa.Table:
    """A temporary table; on SQLite one with a key is stored in key order (WITHOUT ROWID): one b-tree, not two."""
    keyed = any(c.primary_key for c in columns)
    return sa.Table(name, _TMP, *columns, prefixes=["TEMPORARY"], sqlite_with_rowid=not keyed)


def _text(name: str, primary: bool = False, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Text(), primary_key=primary, nullable=nullable and not primary)


def _qty(name: str, primary: bool = False) -> sa.Column:
    return sa.Column(name, sa.BigInteger, primary_key=primary, autoincrement=False)


SRC = _temp("_inv_src", _text("cid", True), _text("ext", True), _text("loc"), _qty("auth"), _qty("quiet"))
LOC = _temp("_inv_loc", _text("loc", True), _qty("safety"))
FOLD = _temp("_inv_fold", _text("loc", True), _text("channel", True))  # loc first: joined on it
CTG = _temp("_inv_ctg", _text("channel", True), _qty("ord", True), _text("target_id"), _text("loc"))
TAGRULE = _temp("_inv_tagrule", _text("tag", True), _qty("qty"))
SSRAW = _temp("_inv_ssraw", _text("sku"), _qty("qty"))
SS = _temp("_inv_ss", _text("sku", True), _qty("qty"))
SKUS = _temp("_inv_skus", _text("sku", True))
SVAR = _temp("_inv_svar", _text("cid"), _text("ext"), _text("item"))
CAND_LEVEL = _temp("_inv_cand_level", sa.Column("id", sa.BigInteger, primary_key=True))
CAND_LINE = _temp("_inv_cand_line", sa.Column("id", sa.BigInteger, primary_key=True))
VKEY = _temp("_inv_vkey", _text("cid", True), _text("ext", True))
IKEY = _temp("_inv_ikey", _text("cid", True), _text("item", True))
VID = _temp("_inv_vid", _text("cid", True), _text("ext", True), _text("sku"))
VIT = _temp("_inv_vit", _text("cid", True), _text("item", True), _text("sku"))
FWD = _temp("_inv_fwd", _text("cid", True), _text("target", True))
REP = _temp("_inv_rep", sa.Column("id", sa.BigInteger), _text("sku"), _text("loc"), _text("cid"), _qty("auth"),
            _qty("quiet"), _qty("on_hand"), _qty("committed"), sa.Column("as_of", UtcDateTime()))
DEM = _temp("_inv_dem", _text("sku"), _text("cid"), _text("loc"), sa.Column("placed_at", UtcDateTime()), _qty("qty"),
            _text("fwd"))
FWDTO = _temp("_inv_fwdto", _text("cid", True), _text("ext", True), _text("target"))
UNC = _temp("_inv_unc", _text("sku", True), _text("loc", True), _qty("qty"))
OLD = _temp("_inv_old", _text("channel", True), _text("sku", True), sa.Column("as_of", UtcDateTime()))
WAIT = _temp("_inv_wait", _text("channel", True), _text("sku", True), _qty("qty"))
ITEM = _temp("_inv_item", _text("channel", True), _text("sku", True), _text("item_id"))
FOLDED = _temp("_inv_folded", _text("channel", True), _text("sku", True), _qty("qty"))
ADJ = _temp("_inv_adj", _text("channel", True), _text("sku", True), _qty("ord", True), _qty("qty"))


def _create_temps(conn: sa.Connection) -> None:
    for table in _TMP.sorted_tables:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
        table.create(conn)


def _drop_temps(conn: sa.Connection) -> None:
    for table in _TMP.sorted_tables:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")


def _fill(conn: sa.Connection, table: sa.Table, query: Any) -> None:
    """INSERT INTO ``table`` the rows of ``query`` (its columns in the table's order).

    On PostgreSQL the table is analysed too: autovacuum never visits temporary tables, and without statistics
    the planner takes one of a million rows for one of ten and loops where it should hash.
    """
    conn.execute(sa.insert(table).from_select([c.name for c in table.columns], query))
    if conn.dialect.name == "postgresql" and table.metadata is _TMP:
        conn.exec_driver_sql(f"ANALYZE {table.name}")


def _positive(expr: Any) -> Any:
    """max(0, expr), portably."""
    return sa.case((expr > 0, expr), else_=0)


# -- the settings as small tables ---------------------------------------------------------------------------

def _push_channels(settings: InventorySettings) -> dict[str, list[str]]:
    return {cid: list(dict.fromkeys(spec.locations)) for cid, spec in settings.channels.items() if spec.push}


def _load_settings(conn: sa.Connection, settings: InventorySettings) -> dict[str, list[str]]:
    """The location map, safety stock and each push channel's target locations, as temporary tables; returns the
    channels with somewhere to push to, and the canonical locations each sells from."""
    push = _push_channels(settings)
    src, locs = [], []
    for loc, spec in settings.locations.items():
        locs.append({"loc": loc, "safety": spec.safety_stock})
        for cid, ext in spec.sources.items():
            quiet = int(cid != spec.authority and loc in push.get(cid, ()))  # storesync writes those levels
            src.append({"cid": cid, "ext": str(ext), "loc": loc, "auth": int(cid == spec.authority), "quiet": quiet})
    fold, ctg = [], []
    selling: dict[str, list[str]] = {}
    for cid, places in push.items():
        own = {loc: settings.locations[loc].sources.get(cid) for loc in places}
        pushed = [loc for loc in places if own[loc] is not None and settings.locations[loc].authority != cid]
        if not pushed:
            continue  # the truth wherever it sells (or no location id anywhere): nothing to push to this channel
        selling[cid] = places
        ctg.extend({"channel": cid, "ord": i, "target_id": own[loc], "loc": loc} for i, loc in enumerate(pushed))
        # where the channel has no location id, what is available there shows at its default location
        fold.extend({"channel": cid, "loc": loc} for loc in places if own[loc] is None)
    for table, rows in ((SRC, src), (LOC, locs), (FOLD, fold), (CTG, ctg)):
        if rows:
            conn.execute(sa.insert(table), rows)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"ANALYZE {table.name}")
    return selling


def _largest_rules(settings: InventorySettings, by: str) -> dict[str, int]:
    """The largest ``[[inventory.safety_stock]]`` quantity per SKU (``by="sku"``) or per tag (``by="tag"``)."""
    out: dict[str, int] = {}
    for rule in settings.safety_stock:
        key = getattr(rule, by)
        if key is not None:
            out[key] = max(rule.quantity, out.get(key, 0))
    return out


def _load_safety(conn: sa.Connection, settings: InventorySettings, scoped: bool) -> None:
    """``_inv_ss``: per SKU the largest matching ``[[inventory.safety_stock]]`` rule, by SKU or product tag."""
    by_sku, by_tag = _largest_rules(settings, "sku"), _largest_rules(settings, "tag")
    if by_sku:
        conn.execute(sa.insert(SSRAW), [{"sku": s, "qty": q} for s, q in by_sku.items()])
    if by_tag:
        conn.execute(sa.insert(TAGRULE), [{"tag": t, "qty": q} for t, q in by_tag.items()])
        pairs = _sku_tag_pairs(conn, scoped).subquery()
        query = (sa.select(pairs.c.sku, sa.func.max(TAGRULE.c.qty))
                 .join(TAGRULE, TAGRULE.c.tag == pairs.c.tag).group_by(pairs.c.sku))
        _fill(conn, SSRAW, query)
    _fill(conn, SS, sa.select(SSRAW.c.sku, sa.func.max(SSRAW.c.qty)).group_by(SSRAW.c.sku))


def _sku_tag_pairs(conn: sa.Connection, scoped: bool) -> Any:
    """(SKU, tag) for the tags of the products of a SKU's live variants (same connector)."""
    v, p = _VARIANT, _PRODUCT
    if conn.dialect.name == "postgresql":
        tags = sa.func.jsonb_array_elements_text(p.c.tags).table_valued("value").lateral()
    else:
        tags = sa.func.json_each(p.c.tags).table_valued("value")
    query = (sa.select(v.c.sku, tags.c.value.label("tag"))
             .select_from(v.join(p, (p.c.connector_id == v.c.connector_id)
                                 & (p.c.external_id == v.c.product_external_id)).join(tags, sa.true()))
             .where(v.c.sku.is_not(None), _live(v), _live(p)))
    if scoped:
        query = query.where(v.c.sku.in_(sa.select(SKUS.c.sku)))
    return query.distinct()


def _live(table: sa.Table) -> Any:
    return sa.func.coalesce(table.c.deleted, False) == sa.false()


def load_tags(store: Store, skus: Iterable[str] | None = None) -> dict[str, frozenset[str]]:
    """Each SKU's product tags as the bulk reconciliation sees them (for ``reconcile(..., tags=)``)."""
    with store.engine.begin() as conn:
        _create_temps(conn)
        if skus is not None:
            _insert_skus(conn, skus)
        out: dict[str, set[str]] = {}
        for sku, tag in conn.execute(_sku_tag_pairs(conn, skus is not None)):
            out.setdefault(sku, set()).add(tag)
        _drop_temps(conn)
    return {sku: frozenset(tags) for sku, tags in out.items()}


def _insert_skus(conn: sa.Connection, skus: Iterable[str]) -> int:
    rows = [{"sku": s} for s in sorted(set(skus))]
    if rows:
        conn.execute(sa.insert(SKUS), rows)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {SKUS.name}")
    return len(rows)


# -- SKU resolution ------------------------------------------------------------------------------------------

def _last_variant(key: list[Any], where: Any) -> Any:
    """The id of the last stored variant per ``key`` among those matching ``where`` (and naming a SKU)."""
    v = _VARIANT
    return sa.select(sa.func.max(v.c.id)).where(v.c.sku.is_not(None), where).group_by(*key)


def _load_variant_keys(conn: sa.Connection, scoped: bool) -> None:
    """``_inv_vid`` and ``_inv_vit``: (connector, variant id) and (connector, inventory item id) -> SKU.

    Scoped, only the keys the candidate rows use (``_find_candidates`` fills ``_inv_vkey``/``_inv_ikey``).
    """
    v = _VARIANT
    vid_where: Any = sa.true()
    vit_where: Any = v.c.inventory_item_id.is_not(None)
    if scoped:
        vid_where = sa.tuple_(v.c.connector_id, v.c.external_id).in_(sa.select(VKEY.c.cid, VKEY.c.ext))
        vit_where = sa.tuple_(v.c.connector_id, v.c.inventory_item_id).in_(sa.select(IKEY.c.cid, IKEY.c.item))
    ids = _last_variant([v.c.connector_id, v.c.external_id], vid_where)
    _fill(conn, VID, sa.select(v.c.connector_id, v.c.external_id, v.c.sku).where(v.c.id.in_(ids)))
    ids = _last_variant([v.c.connector_id, v.c.inventory_item_id], vit_where)
    _fill(conn, VIT, sa.select(v.c.connector_id, v.c.inventory_item_id, v.c.sku).where(v.c.id.in_(ids)))


def _find_candidates(conn: sa.Connection) -> None:
    """The level and line rows that may name a SKU of ``_inv_skus``, and the variant keys they resolve through."""
    v, lv, o, ln = _VARIANT, _LEVEL, _ORDER, _LINE
    item = item_id_of_level()
    _fill(conn, SVAR, sa.select(v.c.connector_id, v.c.external_id, v.c.inventory_item_id)
          .where(v.c.sku.in_(sa.select(SKUS.c.sku))))
    # row values IN (...) rather than joins: the candidates are few, and this way the planner looks them up
    # through the indexes whatever it guesses of a temporary table's size
    # (SQLite uses the expression index on the item id only for one connector at a time)
    by_item = [sa.select(lv.c.id).where(lv.c.connector_id == cid, item.in_(sa.select(SVAR.c.item)
                                                                            .where(SVAR.c.cid == cid)))
               for cid in conn.execute(sa.select(SVAR.c.cid).where(SVAR.c.item.is_not(None)).distinct()).scalars()]
    levels = sa.union(
        sa.select(lv.c.id).where(lv.c.sku.in_(sa.select(SKUS.c.sku))),
        sa.select(lv.c.id).where(sa.tuple_(lv.c.connector_id, lv.c.variant_external_id)
                                 .in_(sa.select(SVAR.c.cid, SVAR.c.ext))), *by_item)
    _fill(conn, CAND_LEVEL, levels)
    lines = sa.union(
        sa.select(ln.c.id).where(ln.c.sku.in_(sa.select(SKUS.c.sku))),
        sa.select(ln.c.id).select_from(ln.join(o, o.c.id == ln.c.order_id))
        .where(ln.c.variant_external_id.in_(sa.select(SVAR.c.ext)),
               sa.tuple_(o.c.connector_id, ln.c.variant_external_id).in_(sa.select(SVAR.c.cid, SVAR.c.ext))))
    _fill(conn, CAND_LINE, lines)
    in_level = lv.c.id.in_(sa.select(CAND_LEVEL.c.id))
    keys = sa.union(
        sa.select(SVAR.c.cid, SVAR.c.ext).where(SVAR.c.ext.is_not(None)),
        sa.select(lv.c.connector_id, lv.c.variant_external_id).where(in_level, lv.c.variant_external_id.is_not(None)),
        sa.select(o.c.connector_id, ln.c.variant_external_id).select_from(ln.join(o, o.c.id == ln.c.order_id))
        .where(ln.c.id.in_(sa.select(CAND_LINE.c.id)), ln.c.variant_external_id.is_not(None)))
    _fill(conn, VKEY, keys)
    items = sa.union(
        sa.select(SVAR.c.cid, SVAR.c.item).where(SVAR.c.item.is_not(None)),
        sa.select(lv.c.connector_id, item).where(in_level, item.is_not(None)))
    _fill(conn, IKEY, items)


# -- reports, demand, positions -----------------------------------------------------------------------------

def _level_sku() -> Any:
    """A level report's SKU: its own, else its variant's, else its inventory item's (as ``load_reports``)."""
    return sa.func.coalesce(sa.func.nullif(_LEVEL.c.sku, ""), VID.c.sku, VIT.c.sku)


def _levels(scoped: bool, *columns: Any) -> Any:
    """Live level reports with their SKU resolved (``sku`` label) and canonical location (NULL: unmapped)."""
    lv = _LEVEL
    sku = _level_sku()
    joined = (lv.outerjoin(SRC, (SRC.c.cid == lv.c.connector_id) & (SRC.c.ext == lv.c.location_external_id))
              .outerjoin(VID, (VID.c.cid == lv.c.connector_id) & (VID.c.ext == lv.c.variant_external_id))
              .outerjoin(VIT, (VIT.c.cid == lv.c.connector_id) & (VIT.c.item == item_id_of_level())))
    query = sa.select(lv.c.id, sku.label("sku"), *columns).select_from(joined).where(~lv.c.deleted, sku.is_not(None))
    if scoped:
        query = query.where(lv.c.id.in_(sa.select(CAND_LEVEL.c.id)), sku.in_(sa.select(SKUS.c.sku)))
    return query


def _load_reports(conn: sa.Connection, scoped: bool) -> None:
    """``_inv_rep``: the reports that are no authority's and that storesync does not write (compared, for
    disagreements), and those at no canonical location."""
    lv = _LEVEL
    query = _levels(scoped, SRC.c.loc, lv.c.connector_id, sa.func.coalesce(SRC.c.auth, 0),
                    sa.func.coalesce(SRC.c.quiet, 0), sa.func.coalesce(lv.c.on_hand, lv.c.available),
                    lv.c.committed, lv.c.as_of)
    # filtered on the location map first: the SKU of a report nobody compares is never resolved
    _fill(conn, REP, query.where(sa.or_(SRC.c.loc.is_(None), (SRC.c.auth == 0) & (SRC.c.quiet == 0))))


def _write_positions(conn: sa.Connection, scoped: bool, now: datetime) -> None:
    """``inventory_position`` from each SKU and location's latest authority report, as if nothing were uncounted.

    Of several authority reports the latest ``as_of`` wins; one without a time is the oldest; ties: first stored.
    PostgreSQL ranks them with a window (an upsert may not touch a row twice in one statement there).
    """
    if conn.dialect.name == "sqlite":
        _upsert_positions(conn, scoped, now)
        return
    lv = _LEVEL
    latest = sa.func.row_number().over(
        partition_by=(_level_sku(), SRC.c.loc),
        order_by=(sa.case((lv.c.as_of.is_(None), 1), else_=0), lv.c.as_of.desc(), lv.c.id)).label("rn")
    ranked = _levels(scoped, SRC.c.loc, lv.c.connector_id, sa.func.coalesce(lv.c.on_hand, lv.c.available, 0)
                     .label("on_hand"), sa.func.coalesce(lv.c.committed, 0).label("committed"), lv.c.as_of,
                     latest).where(SRC.c.auth == 1).subquery()
    safety = LOC.c.safety + sa.func.coalesce(SS.c.qty, 0)
    query = (sa.select(ranked.c.sku, ranked.c.loc, ranked.c.connector_id, ranked.c.on_hand, ranked.c.committed,
                       sa.literal(0), safety, _positive(ranked.c.on_hand - ranked.c.committed - safety),
                       _positive(ranked.c.committed - ranked.c.on_hand), ranked.c.as_of,
                       sa.literal(now, UtcDateTime()))
             .select_from(ranked.join(LOC, LOC.c.loc == ranked.c.loc).outerjoin(SS, SS.c.sku == ranked.c.sku))
             .where(ranked.c.rn == 1))
    _fill(conn, POSITION, query)
    if conn.dialect.name == "postgresql" and not scoped:  # its statistics are of the rows just truncated
        conn.exec_driver_sql(f"ANALYZE {POSITION.name}")


def _upsert_positions(conn: sa.Connection, scoped: bool, now: datetime) -> None:
    """SQLite: the same rule as an upsert over the reports in stored order, a later report replacing the kept one
    only when strictly newer: no sort of every report by SKU and location (SQLite's window sort is the slow part),
    the rows go straight into the position table's key order."""
    lv, p = _LEVEL, POSITION
    safety = LOC.c.safety + sa.func.coalesce(SS.c.qty, 0)
    on_hand = sa.func.coalesce(lv.c.on_hand, lv.c.available, 0)
    committed = sa.func.coalesce(lv.c.committed, 0)
    query = (_levels(scoped, SRC.c.loc, lv.c.connector_id, on_hand, committed, sa.literal(0), safety,
                     _positive(on_hand - committed - safety), _positive(committed - on_hand), lv.c.as_of,
                     sa.literal(now, UtcDateTime()))
             .join_from(lv, LOC, LOC.c.loc == SRC.c.loc).outerjoin(SS, SS.c.sku == _level_sku())
             .where(SRC.c.auth == 1).order_by(lv.c.id))
    cols = [c.name for c in p.columns]
    stmt = sqlite_insert(p).from_select(cols, query.with_only_columns(*list(query.selected_columns)[1:]))
    newer = stmt.excluded.as_of.is_not(None) & sa.or_(p.c.as_of.is_(None), stmt.excluded.as_of > p.c.as_of)
    conn.execute(stmt.on_conflict_do_update(index_elements=[p.c.sku, p.c.location],
                                            set_={c: stmt.excluded[c] for c in cols[2:]}, where=newer))


def _count(conn: sa.Connection, table: sa.Table, scoped: bool) -> int:
    """Rows of ``table`` for the SKUs computed (DB-API row counts of INSERT ... SELECT are not portable)."""
    query = sa.select(sa.func.count()).select_from(table)
    if scoped:
        query = query.where(table.c.sku.in_(sa.select(SKUS.c.sku)))
    return conn.execute(query).scalar_one()


def _load_demand(conn: sa.Connection, scoped: bool) -> None:
    """``_inv_dem``: open lines still to fulfil, SKU resolved, ERP copies of forwarded orders left out; a line
    reconciliation allocated is demand at its allocated location from its allocation time, a parked or denied one
    is no demand at a location (``core/inventory_ledger.py``); ``fwd`` names the connector the order was forwarded
    into (the ERP, whose count then knows it)."""
    o, ln, f, a = _ORDER, _LINE, _FORWARDED, _ALLOCATION
    _fill(conn, FWD, sa.select(f.c.connector_id, f.c.target_id).where(f.c.target_id.is_not(None)).distinct())
    _fill(conn, FWDTO, sa.select(f.c.source_connector_id, f.c.source_external_id, sa.func.min(f.c.connector_id))
          .where(f.c.target_id.is_not(None)).group_by(f.c.source_connector_id, f.c.source_external_id))
    sku = sa.func.coalesce(sa.func.nullif(ln.c.sku, ""), VID.c.sku)
    left = sa.func.coalesce(ln.c.quantity, 0) - sa.func.coalesce(ln.c.fulfilled_quantity, 0)
    allocated = a.c.state == "allocated"
    joined = (o.join(ln, ln.c.order_id == o.c.id)
              .outerjoin(FWD, (FWD.c.cid == o.c.connector_id) & (FWD.c.target == o.c.external_id))
              .outerjoin(VID, (VID.c.cid == o.c.connector_id) & (VID.c.ext == ln.c.variant_external_id))
              .outerjoin(SRC, (SRC.c.cid == o.c.connector_id) & (SRC.c.ext == o.c.location_external_id))
              .outerjoin(a, (a.c.connector_id == o.c.connector_id) & (a.c.order_id == o.c.external_id)
                         & (a.c.sku == sku))
              .outerjoin(FWDTO, (FWDTO.c.cid == o.c.connector_id) & (FWDTO.c.ext == o.c.external_id)))
    query = (sa.select(sku, o.c.connector_id, sa.case((allocated, a.c.location), else_=SRC.c.loc),
                       sa.case((allocated, a.c.updated_at), else_=o.c.created_at), left, FWDTO.c.target)
             .select_from(joined)
             .where(o.c.status == "open", ~o.c.deleted, FWD.c.cid.is_(None), sku.is_not(None), left > 0,
                    sa.or_(a.c.state.is_(None), allocated)))
    if scoped:
        query = query.where(ln.c.id.in_(sa.select(CAND_LINE.c.id)), sku.in_(sa.select(SKUS.c.sku)))
    _fill(conn, DEM, query)


def _add_uncounted(conn: sa.Connection, now: datetime) -> None:
    """Demand placed at a location after its count is committed there: added to the positions (a position of its
    own where no authority reported the SKU)."""
    p, u = POSITION, UNC
    joined = DEM.outerjoin(p, (p.c.sku == DEM.c.sku) & (p.c.location == DEM.c.loc))
    # in the authority's count already: an order it knows (its own, or forwarded into it) placed by its report
    known = (DEM.c.cid == p.c.authority) | (DEM.c.fwd == p.c.authority)
    counted = known & p.c.as_of.is_not(None) & (DEM.c.placed_at <= p.c.as_of)
    _fill(conn, UNC, sa.select(DEM.c.sku, DEM.c.loc, sa.func.sum(DEM.c.qty)).select_from(joined)
          .where(DEM.c.loc.is_not(None), ~sa.func.coalesce(counted, False))
          .group_by(DEM.c.sku, DEM.c.loc))
    committed = p.c.reported_committed + u.c.qty
    # the row-value IN makes SQLite walk the few changed positions by key, not every position probing UNC
    conn.execute(sa.update(p).where(p.c.sku == u.c.sku, p.c.location == u.c.loc,
                                    sa.tuple_(p.c.sku, p.c.location).in_(sa.select(u.c.sku, u.c.loc))).values(
        uncounted=u.c.qty, available=_positive(p.c.on_hand - committed - p.c.safety_stock),
        shortfall=_positive(committed - p.c.on_hand)))
    safety = LOC.c.safety + sa.func.coalesce(SS.c.qty, 0)
    demand_only = (
        sa.select(u.c.sku, u.c.loc, sa.null(), 0, 0, u.c.qty, safety, sa.literal(0), u.c.qty, sa.null(),
                  sa.literal(now, UtcDateTime()))
        .select_from(u.join(LOC, LOC.c.loc == u.c.loc).outerjoin(SS, SS.c.sku == u.c.sku))
        .where(~sa.exists().where(p.c.sku == u.c.sku, p.c.location == u.c.loc)))
    _fill(conn, POSITION, demand_only)


# -- channel targets ------------------------------------------------------------------------------------------

def _write_targets(conn: sa.Connection, selling: dict[str, list[str]], scoped: bool,
                   now: datetime) -> tuple[int, dict[str, int]]:
    """``inventory_target`` per push channel; returns its row count and, per channel, the SKUs with no variant."""
    p, v = POSITION, _VARIANT
    for channel, places in selling.items():  # one channel at a time: grouped in the positions' own (sku) order
        query = (sa.select(sa.literal(channel), p.c.sku, sa.func.min(p.c.as_of))
                 .where(p.c.location.in_(places)).group_by(p.c.sku))
        _fill(conn, OLD, query.where(p.c.sku.in_(sa.select(SKUS.c.sku))) if scoped else query)
    waiting = DEM.join(OLD, (OLD.c.channel == DEM.c.cid) & (OLD.c.sku == DEM.c.sku))
    _fill(conn, WAIT, sa.select(DEM.c.cid, DEM.c.sku, sa.func.sum(DEM.c.qty)).select_from(waiting)
          .where(DEM.c.loc.is_(None), sa.or_(OLD.c.as_of.is_(None), DEM.c.placed_at > OLD.c.as_of))
          .group_by(DEM.c.cid, DEM.c.sku))
    if conn.execute(sa.select(FOLD.c.loc).limit(1)).first() is not None:  # else no need to walk the positions
        folded = (sa.select(FOLD.c.channel, p.c.sku, sa.func.sum(p.c.available))
                  .select_from(p.join(FOLD, FOLD.c.loc == p.c.location)).group_by(FOLD.c.channel, p.c.sku))
        _fill(conn, FOLDED, folded.where(p.c.sku.in_(sa.select(SKUS.c.sku))) if scoped else folded)
    last = _last_variant([v.c.connector_id, v.c.sku], sa.and_(v.c.connector_id.in_(list(selling)), _live(v)))
    if scoped:
        last = last.where(v.c.sku.in_(sa.select(SKUS.c.sku)))
    _fill(conn, ITEM, sa.select(v.c.connector_id, v.c.sku, sa.func.coalesce(v.c.inventory_item_id, v.c.external_id))
          .where(v.c.id.in_(last)))
    have = _have()
    _fill(conn, ADJ, _waiting_walk())
    query = (sa.select(OLD.c.sku, OLD.c.channel, CTG.c.target_id, ITEM.c.item_id, sa.func.coalesce(ADJ.c.qty, have),
                       sa.literal(now, UtcDateTime()))
             .select_from(OLD.join(ITEM, (ITEM.c.channel == OLD.c.channel) & (ITEM.c.sku == OLD.c.sku))
                          .join(CTG, CTG.c.channel == OLD.c.channel)
                          .outerjoin(p, (p.c.sku == OLD.c.sku) & (p.c.location == CTG.c.loc))
                          .outerjoin(FOLDED, (FOLDED.c.channel == OLD.c.channel) & (FOLDED.c.sku == OLD.c.sku))
                          .outerjoin(ADJ, (ADJ.c.channel == OLD.c.channel) & (ADJ.c.sku == OLD.c.sku)
                                     & (ADJ.c.ord == CTG.c.ord))))
    conn.execute(sa.insert(TARGET).from_select([c.name for c in TARGET.columns], query))
    missing = (sa.select(OLD.c.channel, sa.func.count())
               .select_from(OLD.outerjoin(ITEM, (ITEM.c.channel == OLD.c.channel) & (ITEM.c.sku == OLD.c.sku)))
               .where(ITEM.c.sku.is_(None)).group_by(OLD.c.channel))
    return _count(conn, TARGET, scoped), {channel: count for channel, count in conn.execute(missing)}


def _have() -> Any:
    """What a channel has at one of its target locations: the position's available there, and at its default
    location (``ord`` 0) also what is available where it has no location id (``_inv_folded``)."""
    folded = sa.case((CTG.c.ord == 0, sa.func.coalesce(FOLDED.c.qty, 0)), else_=0)
    return sa.cast(sa.func.coalesce(POSITION.c.available, 0) + folded, sa.BigInteger)


def _waiting_walk() -> Any:
    """``_inv_adj``: the targets that a channel's waiting orders lower, location by location in its order.

    The waiting quantity comes off the default location first, then the next, until it is used up: a walk that
    stops there, so it visits a location or two per SKU rather than every one (the others show what they have).
    Each step keeps what is still waiting before its location and what that location then shows.
    """
    p = POSITION
    start = sa.select(WAIT.c.channel, WAIT.c.sku, sa.cast(sa.literal(0), sa.BigInteger).label("ord"),
                      sa.cast(WAIT.c.qty, sa.BigInteger).label("still"),
                      sa.cast(sa.literal(0), sa.BigInteger).label("qty")).where(WAIT.c.qty > 0)
    walk = start.cte("walk", recursive=True)
    have = _have()
    step = (sa.select(walk.c.channel, walk.c.sku, sa.cast(walk.c.ord + 1, sa.BigInteger),
                      sa.cast(_positive(walk.c.still - have), sa.BigInteger),
                      sa.cast(_positive(have - walk.c.still), sa.BigInteger))
            .select_from(walk.join(CTG, (CTG.c.channel == walk.c.channel) & (CTG.c.ord == walk.c.ord))
                         .outerjoin(p, (p.c.sku == walk.c.sku) & (p.c.location == CTG.c.loc))
                         .outerjoin(FOLDED, (FOLDED.c.channel == walk.c.channel) & (FOLDED.c.sku == walk.c.sku)))
            .where(walk.c.still > 0))
    walk = walk.union_all(step)
    # a step's row carries the location before it: what was left there is what it shows
    return sa.select(walk.c.channel, walk.c.sku, walk.c.ord - 1, walk.c.qty).where(walk.c.ord > 0)


# -- exceptions -----------------------------------------------------------------------------------------------

def _write_exceptions(conn: sa.Connection, settings: InventorySettings, scoped: bool) -> None:
    """``inventory_exception`` for the SKUs computed: oversold, disagreeing beyond the tolerance, unmapped."""
    p = POSITION
    in_scope = p.c.sku.in_(sa.select(SKUS.c.sku)) if scoped else sa.true()
    oversell = sa.select(sa.literal("oversell"), p.c.sku).where(p.c.shortfall > 0, in_scope)
    differ = sa.func.abs(REP.c.on_hand - p.c.on_hand) > settings.tolerance
    disagree = (sa.select(sa.literal("disagree"), REP.c.sku)
                .select_from(REP.join(p, (p.c.sku == REP.c.sku) & (p.c.location == REP.c.loc)))
                .where(REP.c.auth == 0, REP.c.quiet == 0, REP.c.on_hand.is_not(None), differ))
    unmapped = sa.select(sa.literal("unmapped"), REP.c.sku).where(REP.c.loc.is_(None))
    for query in (oversell, disagree, unmapped):
        _fill(conn, EXCEPTION, query.distinct())


def _read_exceptions(conn: sa.Connection, cap: int) -> Exceptions:
    out = Exceptions()
    e = EXCEPTION
    for kind in KINDS:
        out.counts[kind] = conn.execute(sa.select(sa.func.count()).where(e.c.kind == kind)).scalar_one()
        out.skus[kind] = list(conn.execute(sa.select(e.c.sku).where(e.c.kind == kind).order_by(e.c.sku)
                                           .limit(cap)).scalars())
    return out


def exception_skus(store: Store, skus: Iterable[str]) -> set[str]:
    """Those of ``skus`` that have an exception stored, of any kind (not capped: the changed SKUs a run examines)."""
    ordered, out = sorted(set(skus)), set()
    with store.engine.connect() as conn:
        for start in range(0, len(ordered), 500):
            chunk = ordered[start:start + 500]
            out.update(conn.execute(sa.select(EXCEPTION.c.sku).where(EXCEPTION.c.sku.in_(chunk))).scalars())
    return out


# -- the entry points ---------------------------------------------------------------------------------------

def reconcile_bulk(store: Store, settings: InventorySettings, skus: Iterable[str] | None = None, *,
                   cap: int = 10_000) -> BulkResult:
    """Recompute every position and target (``skus`` None) or only those of ``skus``, in one transaction.

    Leaves ``inventory_state`` alone: ``refresh`` is what keeps the high-water mark.
    """
    with _session(store) as conn:
        return _reconcile(conn, settings, None if skus is None else set(skus), cap)


def _reconcile(conn: sa.Connection, settings: InventorySettings, skus: set[str] | None, cap: int) -> BulkResult:
    began = time.perf_counter()
    now = datetime.now(UTC)
    scoped = skus is not None
    steps: dict[str, float] = {}

    def step(name: str, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        value = fn(*args)
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - start
        return value

    _create_temps(conn)
    selling = _load_settings(conn, settings)
    if scoped:
        _insert_skus(conn, skus or ())
        step("delete", _delete_rows, conn, True)
        step("candidates", _find_candidates, conn)
    else:
        step("delete", _delete_rows, conn, False)
    step("safety", _load_safety, conn, settings, scoped)
    step("variants", _load_variant_keys, conn, scoped)
    step("reports", _load_reports, conn, scoped)
    step("positions", _write_positions, conn, scoped, now)
    step("demand", _load_demand, conn, scoped)
    step("uncounted", _add_uncounted, conn, now)
    positions = _count(conn, POSITION, scoped)
    targets, without = step("targets", _write_targets, conn, selling, scoped, now)
    step("exceptions", _write_exceptions, conn, settings, scoped)
    if conn.dialect.name == "postgresql" and not scoped:  # the next incremental refresh plans with these
        for table in (TARGET, EXCEPTION):
            conn.exec_driver_sql(f"ANALYZE {table.name}")
    exceptions = _read_exceptions(conn, cap)
    _drop_temps(conn)
    count = len(skus) if skus is not None else conn.execute(
        sa.select(sa.func.count(sa.distinct(POSITION.c.sku)))).scalar_one()
    return BulkResult(not scoped, count, positions, targets, exceptions, time.perf_counter() - began, without, steps,
                      skus)


def _delete_rows(conn: sa.Connection, scoped: bool) -> None:
    """The rows about to be recomputed go first: all of them, or those of the SKUs in ``_inv_skus``."""
    for table in (POSITION, TARGET, EXCEPTION):
        if scoped:
            conn.execute(sa.delete(table).where(table.c.sku.in_(sa.select(SKUS.c.sku))))
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"TRUNCATE {table.name}")  # no dead rows left behind by every full refresh
        else:
            conn.execute(sa.delete(table))  # SQLite truncates a DELETE without WHERE itself


class _session:
    """One write transaction for a refresh; on SQLite with temporary tables in memory and a larger page cache."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> sa.Connection:
        self.conn = self.store.engine.connect()
        if self.store.dialect == "sqlite":
            raw = self.conn.connection.driver_connection
            raw.execute("PRAGMA temp_store = MEMORY")
            raw.execute("PRAGMA cache_size = -262144")  # 256 MiB: the positions and targets written stay cached
        self.transaction = self.conn.begin()
        if self.store.dialect == "postgresql":  # one refresh at a time: two would insert the same rows
            self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(REFRESH_LOCK)))
            # sorts and hashes of the whole catalogue in memory rather than in batches on disk (this transaction only)
            self.conn.exec_driver_sql("SET LOCAL work_mem = '128MB'")
            self.conn.exec_driver_sql("SET LOCAL jit = off")  # compiling costs more than it saves on these plans
            # temporary tables live in the session's own buffers (8 MB by default, the rest goes to files); the
            # size can only be set before the session's first temporary table
            self.conn.exec_driver_sql("SELECT set_config('temp_buffers', '512MB', false) "
                                      "WHERE pg_my_temp_schema() = 0")
        return self.conn

    def __exit__(self, kind: Any, *_: Any) -> None:
        try:
            if kind is None:
                self.transaction.commit()
            else:
                self.transaction.rollback()
        finally:
            if self.store.dialect == "sqlite":  # the pages cached for the refresh go back (the pool keeps it)
                raw = self.conn.connection.driver_connection
                raw.execute("PRAGMA cache_size = -16384")
                raw.execute("PRAGMA shrink_memory")
                _trim_heap()
            self.conn.close()


def _trim_heap() -> None:
    """Hand the heap freed just now back to the system (glibc): the refresh's page cache (256 MiB) is free again,
    but a process that goes on (a catalogue run deciding its orders next) would keep it resident otherwise."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the allocator keeps its own counsel
        pass


# -- incremental ----------------------------------------------------------------------------------------------

def changed_skus(conn: sa.Connection, since: datetime, *, tags: bool = True) -> set[str]:
    """The SKUs whose level reports, orders (their lines), forwarded orders, allocations or variants were written after
    ``since``, and with ``tags`` those of the variants of changed products. A superset: every SKU a changed row
    may resolve to (its own, its variant's, its inventory item's).
    """
    lv, v, o, ln, p, f = _LEVEL, _VARIANT, _ORDER, _LINE, _PRODUCT, _FORWARDED
    out: set[str] = set()
    levels = sa.select(lv.c.connector_id, lv.c.sku, lv.c.variant_external_id,
                       item_id_of_level().label("item")).where(lv.c.synced_at > since).subquery()
    out.update(conn.execute(sa.select(levels.c.sku).where(levels.c.sku.is_not(None))).scalars())
    by_variant = (v.c.connector_id == levels.c.connector_id) & (v.c.external_id == levels.c.variant_external_id)
    by_item = (v.c.connector_id == levels.c.connector_id) & (v.c.inventory_item_id == levels.c.item)
    for on in (by_variant, by_item):
        out.update(conn.execute(sa.select(v.c.sku).join(levels, on).where(v.c.sku.is_not(None))).scalars())
    copies = sa.select(o.c.id).join(f, (f.c.connector_id == o.c.connector_id) & (f.c.target_id == o.c.external_id))
    sources = sa.select(o.c.id).join(f, (f.c.source_connector_id == o.c.connector_id)
                                     & (f.c.source_external_id == o.c.external_id))
    orders = sa.union(sa.select(o.c.id).where(o.c.synced_at > since), copies.where(f.c.updated_at > since),
                      sources.where(f.c.updated_at > since))
    lines = (sa.select(o.c.connector_id, ln.c.sku, ln.c.variant_external_id)
             .join(ln, ln.c.order_id == o.c.id).where(o.c.id.in_(orders)).subquery())
    out.update(conn.execute(sa.select(lines.c.sku).where(lines.c.sku.is_not(None))).scalars())
    out.update(conn.execute(sa.select(v.c.sku).join(lines, (v.c.connector_id == lines.c.connector_id)
                                                     & (v.c.external_id == lines.c.variant_external_id))
                            .where(v.c.sku.is_not(None))).scalars())
    out.update(conn.execute(sa.select(v.c.sku).where(v.c.synced_at > since, v.c.sku.is_not(None))).scalars())
    a = _ALLOCATION  # a line allocated, parked or denied since moves its demand
    out.update(conn.execute(sa.select(a.c.sku).where(a.c.updated_at > since)).scalars())
    if tags:
        changed = (p.c.connector_id == v.c.connector_id) & (p.c.external_id == v.c.product_external_id)
        out.update(conn.execute(sa.select(v.c.sku).join(p, changed)
                                .where(p.c.synced_at > since, v.c.sku.is_not(None))).scalars())
    out.discard("")
    return out


def refresh(store: Store, settings: InventorySettings, *, full: bool = False, lookback: timedelta = LOOKBACK,
            full_every: timedelta = FULL_EVERY, cap: int = 10_000) -> BulkResult:
    """Bring the positions and targets up to date: only the changed SKUs' when possible, else everything.

    Full when asked, on the first run, when the ``[inventory]`` settings changed since the last one, when the
    last full one is older than ``full_every``, or when more than ``FULL_ABOVE`` SKUs changed. Incremental
    otherwise: the SKUs ``changed_skus`` finds since the start of the last refresh less ``lookback`` (a writer
    stamps ``synced_at`` before it commits).
    """
    digest = settings_hash(settings)
    began = time.perf_counter()
    mark = datetime.now(UTC)  # before anything is read: what commits later is stamped later, or looked back at
    with _session(store) as conn:
        ensure_indexes(conn)
        state = conn.execute(sa.select(STATE.c.high_water, STATE.c.settings_hash, STATE.c.full_at)
                             .where(STATE.c.id == 1)).first()
        skus: set[str] | None = None
        recent = state is not None and state.full_at is not None and mark - state.full_at < full_every
        if not full and recent and state.settings_hash == digest and state.high_water is not None:
            tagged = any(rule.tag is not None for rule in settings.safety_stock)
            skus = changed_skus(conn, state.high_water - lookback, tags=tagged)
            if len(skus) > FULL_ABOVE:
                skus = None
        looked = time.perf_counter()
        result = _reconcile(conn, settings, skus, cap)
        _save_state(conn, mark, digest, result.full)
    result.steps["changes"] = looked - began
    result.seconds = time.perf_counter() - began
    return result


def _save_state(conn: sa.Connection, mark: datetime | None, digest: str, full: bool) -> None:
    now = datetime.now(UTC)
    values: dict[str, Any] = {"high_water": mark, "settings_hash": digest, "refreshed_at": now}
    if full:
        values["full_at"] = now
    if conn.execute(sa.update(STATE).where(STATE.c.id == 1).values(**values)).rowcount == 0:
        conn.execute(sa.insert(STATE).values(id=1, **values))
