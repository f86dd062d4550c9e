"""Batch writes on the hot path, through the DB-API (sqlite3 ``executemany``; psycopg ``COPY``).

One ``BatchWriter`` lives inside one transaction. ``upsert`` looks up the batch's bindings in one query,
inserts the new rows, updates the changed ones and leaves the unchanged ones alone (same ``row_hash``), so
writing the same batch twice changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from .models import Canonical
from .tables import CHILD_TABLES, ENTITY_TABLES, json_text, table_columns, to_utc_text

__all__ = ["BatchWriter", "Counts", "Item", "Prepared", "QuarantineEntry", "RowPreparer", "keeps_model"]

#: nested canonical lists stored as entity rows of their own: target -> (field, child target, link field)
NESTED_ENTITIES = {"product": ("variants", "variant", "product_external_id")}
_BINDING = ("connector_id", "stream", "external_id", "row_hash", "raw", "synced_at")
_CHUNK = 5000


class Item(NamedTuple):
    """One mapped record to store: its external id, validated model and raw payload as JSON text.

    Once prepared, ``model`` is only read for targets with nested entities (``keeps_model``); records mapped
    in a page worker (core/pages.py) come back without it (``None``) for the others.
    """

    external_id: str
    model: Canonical | None
    raw: str | None


def keeps_model(target: str) -> bool:
    """Whether writing a prepared record of ``target`` still needs its model (to store nested entities)."""
    return target in NESTED_ENTITIES


class Prepared(NamedTuple):
    """A record turned into its row parameters and content hash (see ``RowPreparer``)."""

    item: Item
    row: list[Any]  # binding columns then data columns, in table write order; row[2] is the external id
    kids: list[list[Any]] | None


class QuarantineEntry(NamedTuple):
    record_key: str
    external_id: str | None
    field: str | None
    reason: str
    raw: str


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


def _expression(dialect: str, column_type: Any, var: str) -> str:
    """Python expression converting ``var`` to a DB-API parameter for one column type."""
    name = type(column_type).__name__
    if name == "JsonType":
        return f"(None if {var} is None else _json({var}))"
    if dialect == "sqlite" and name == "DecimalType":
        return f"(None if {var} is None else str({var}))"
    if dialect == "sqlite" and name == "UtcDateTime":
        return f"(None if {var} is None else {var}.astimezone(_UTC).isoformat())"
    if name == "String" and getattr(column_type, "length", None) == 10:  # dates
        return f"(None if {var} is None else {var}.isoformat())"
    return var


@lru_cache(maxsize=None)
def _plan(table_name: str, dialect: str) -> tuple[list[str], Callable[[Any], list[Any]]]:
    """Columns of a table in write order, and a compiled function model -> parameters of its data columns."""
    table = _table(table_name)
    cols = table_columns(table)
    skip = ("order_id", "position") if table_name == "order_line" else _BINDING
    data_cols = [c for c in cols if c not in skip]
    lines = ["def build(obj):", "    d = obj.__dict__"]
    lines += [f"    v{i} = d[{c!r}]" for i, c in enumerate(data_cols)]
    exprs = [_expression(dialect, table.c[c].type, f"v{i}") for i, c in enumerate(data_cols)]
    lines.append(f"    return [{', '.join(exprs)}]")
    namespace: dict[str, Any] = {"_json": json_text, "_UTC": UTC}
    exec(compile("\n".join(lines), f"<row builder {table_name}>", "exec"), namespace)  # column names only
    return cols, namespace["build"]


def _now_param(dialect: str) -> Any:
    """The current time as the DB-API parameter of a ``UtcDateTime`` column."""
    now = datetime.now(UTC)
    return to_utc_text(now) if dialect == "sqlite" else now


def _table(name: str) -> Any:
    for t in ENTITY_TABLES.values():
        if t.name == name:
            return t
    return next(t for _f, t, _p in CHILD_TABLES.values() if t.name == name)


class RowPreparer:
    """Turns items of one connector, stream and target into row parameters plus a content hash.

    The engine calls it per record right after validation, while the record is still in the CPU cache;
    the hash covers the raw payload and every stored value, so an unchanged record is skipped on write.
    """

    def __init__(self, target: str, dialect: str, connector_id: str, stream: str) -> None:
        self.build = _plan(ENTITY_TABLES[target].name, dialect)[1]
        child = CHILD_TABLES.get(target)
        self.child_field = child[0] if child else None
        self.build_child = _plan(child[1].name, dialect)[1] if child else None
        self.head = [connector_id, stream]
        self.now = _now_param(dialect)

    def __call__(self, item: Item, raw_bytes: bytes | None = None) -> Prepared:
        """``raw_bytes``: ``item.raw`` UTF-8 encoded, when the caller has it (saves re-encoding a large payload)."""
        values = self.build(item.model)
        kids = [self.build_child(x) for x in getattr(item.model, self.child_field)] if self.build_child else None
        # SHA-256 runs on the CPU's SHA instructions through OpenSSL: twice as fast as blake2b on 9 KB payloads
        digest = hashlib.sha256(raw_bytes if raw_bytes is not None else (item.raw or "").encode())
        digest.update(orjson.dumps([values, kids], default=str))
        return Prepared(item, [*self.head, item.external_id, digest.hexdigest()[:24], item.raw, self.now, *values],
                        kids)


class BatchWriter:
    """Writes inside one open transaction of ``conn`` (a SQLAlchemy connection)."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.dbapi = conn.connection.driver_connection
        self.ph = "?" if dialect == "sqlite" else "%s"
        self.now_param = _now_param(dialect)

    # -- entity upsert ----------------------------------------------------------------------------------

    def upsert(self, connector_id: str, stream: str, target: str, items: Sequence[Item]) -> Counts:
        """Insert new, update changed and skip unchanged records of one stream; return the counts."""
        prepare = RowPreparer(target, self.dialect, connector_id, stream)
        return self.upsert_prepared(connector_id, stream, target, [prepare(i) for i in items])

    def upsert_prepared(self, connector_id: str, stream: str, target: str, rows: Sequence[Prepared]) -> Counts:
        """``upsert`` for rows a ``RowPreparer`` of the same connector, stream and target made."""
        by_id = {p.row[2]: p for p in rows}  # the last occurrence of an external id wins
        if not by_id:
            return Counts()
        table = ENTITY_TABLES[target]
        cols = _plan(table.name, self.dialect)[0]
        merge = self._merge_postgres if self.dialect == "postgresql" else self._merge_sqlite
        ids, inserted, updated = merge(table.name, cols, connector_id, stream, by_id)
        self._write_children(connector_id, stream, target, ids, inserted + updated, updated, by_id)
        return Counts(inserted=len(inserted), updated=len(updated),
                      unchanged=len(by_id) - len(inserted) - len(updated))

    def _merge_sqlite(self, table: str, cols: list[str], connector_id: str, stream: str,
                      by_id: dict[str, Prepared]) -> tuple[dict[str, int], list[str], list[str]]:
        """Look the batch up by binding, insert the new rows, update the changed ones."""
        existing = self._existing(table, connector_id, stream, list(by_id))
        inserts, updates, updated = [], [], []
        for ext, prep in by_id.items():
            old = existing.get(ext)
            if old is None:
                inserts.append(prep.row)
            elif old[1] != prep.row[3]:
                updates.append([*prep.row[3:], old[0]])
                updated.append(ext)
        if inserts:
            self._executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                              inserts)
        if updates:
            sets = ", ".join(f"{c} = ?" for c in cols[3:])
            self._executemany(f"UPDATE {table} SET {sets} WHERE id = ?", updates)
        inserted = [r[2] for r in inserts]
        ids = {k: v[0] for k, v in existing.items()}
        if inserted:
            ids.update({k: v[0] for k, v in self._existing(table, connector_id, stream, inserted).items()})
        return ids, inserted, updated

    def _merge_postgres(self, table: str, cols: list[str], connector_id: str, stream: str,
                        by_id: dict[str, Prepared]) -> tuple[dict[str, int], list[str], list[str]]:
        """COPY into a staging table, then one INSERT ... ON CONFLICT that skips unchanged rows (same hash)."""
        stage = self._stage(table, cols)
        col_list = ", ".join(cols)
        with self.dbapi.cursor() as cur:
            with cur.copy(f"COPY {stage} ({col_list}) FROM STDIN") as copy:
                for prep in by_id.values():
                    copy.write_row(prep.row)
            sets = ", ".join(f"{c} = excluded.{c}" for c in cols[3:])
            cur.execute(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} "
                        f"ON CONFLICT (connector_id, stream, external_id) DO UPDATE SET {sets} "
                        f"WHERE {table}.row_hash IS DISTINCT FROM excluded.row_hash "
                        "RETURNING external_id, id, (xmax = 0)")
            returned = cur.fetchall()
            cur.execute(f"TRUNCATE {stage}")  # temp tables are never autovacuumed: DELETE would leave dead rows
        ids = {ext: rid for ext, rid, _new in returned}
        return ids, [e for e, _i, new in returned if new], [e for e, _i, new in returned if not new]

    def _stage(self, table: str, cols: list[str]) -> str:
        """A session-temporary staging table with the write columns of ``table`` (no constraints)."""
        stage = f"stage_{table}"
        self.dbapi.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS "
                           f"SELECT {', '.join(cols)} FROM {table} WITH NO DATA")
        return stage

    def _existing(self, table: str, connector_id: str, stream: str,
                  keys: list[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        cur = self.dbapi.cursor()
        base = f"SELECT external_id, id, row_hash FROM {table} WHERE connector_id = ? AND stream = ?"
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i:i + _CHUNK]
            cur.execute(f"{base} AND external_id IN ({','.join('?' * len(chunk))})", [connector_id, stream, *chunk])
            for ext, rid, digest in cur.fetchall():
                found[ext] = (rid, digest)
        return found

    def _write_children(self, connector_id: str, stream: str, target: str, ids: dict[str, int],
                        touched: list[str], updated: list[str], by_id: dict[str, Prepared]) -> None:
        if target in CHILD_TABLES and touched:
            _field, ctable, parent_col = CHILD_TABLES[target]
            if updated:
                self._delete_in(ctable.name, parent_col, [ids[e] for e in updated])
            ccols = _plan(ctable.name, self.dialect)[0]
            rows = [[ids[ext], pos, *kid] for ext in touched for pos, kid in enumerate(by_id[ext].kids)]
            self._insert(ctable.name, ccols, rows)
        if target in NESTED_ENTITIES and touched:
            field, ctarget, link = NESTED_ENTITIES[target]
            nested = []
            for ext in touched:
                for sub in getattr(by_id[ext].item.model, field):
                    if getattr(sub, link) is None:
                        setattr(sub, link, ext)
                    nested.append(Item(sub.external_id, sub, None))
            if nested:
                self.upsert(connector_id, stream, ctarget, nested)

    def _delete_in(self, table: str, column: str, values: list[Any], **where: str) -> int:
        """DELETE the rows whose ``column`` is one of ``values`` (and ``where`` matches); return how many."""
        cur = self.dbapi.cursor()
        scope = "".join(f" AND {c} = {self.ph}" for c in where)
        total = 0
        for i in range(0, len(values), _CHUNK):
            chunk = values[i:i + _CHUNK]
            if self.dialect == "sqlite":
                cur.execute(f"DELETE FROM {table} WHERE {column} IN ({','.join('?' * len(chunk))}){scope}",
                            [*chunk, *where.values()])
            else:
                cur.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s){scope}", [chunk, *where.values()])
            total += max(cur.rowcount, 0)
        return total

    def _insert(self, table: str, cols: list[str], rows: list[list[Any]]) -> None:
        if not rows:
            return
        if self.dialect == "postgresql":
            with self.dbapi.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(cols))
        self._executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)

    def insert_rows(self, table: str, cols: list[str], rows: list[list[Any]]) -> None:
        """Insert plain rows (COPY on PostgreSQL, executemany on SQLite): bulk writers outside the engine."""
        self._insert(table, cols, rows)

    def delete_in(self, table: str, column: str, values: list[Any]) -> int:
        """DELETE the rows whose ``column`` is one of ``values``, in chunks; return how many."""
        return self._delete_in(table, column, values)

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        cur = self.dbapi.cursor()
        cur.executemany(sql, rows)

    # -- deletions, cursors, quarantine -----------------------------------------------------------------

    def tombstone(self, connector_id: str, stream: str, target: str, external_ids: list[str]) -> int:
        """Mark the rows of these external ids deleted; return how many changed."""
        if not external_ids:
            return 0
        table = ENTITY_TABLES[target].name
        true = "1" if self.dialect == "sqlite" else "TRUE"
        sql = (f"UPDATE {table} SET deleted = {true}, synced_at = {self.ph} WHERE connector_id = {self.ph} "
               f"AND stream = {self.ph} AND external_id = {self.ph} AND (deleted IS NULL OR NOT deleted)")
        cur = self.dbapi.cursor()
        total = 0
        for ext in external_ids:
            cur.execute(sql, [self.now_param, connector_id, stream, ext])
            total += max(cur.rowcount, 0)
        return total

    def save_cursor(self, connector_id: str, stream: str, state: Any) -> None:
        p = self.ph
        self.dbapi.cursor().execute(
            f"INSERT INTO cursor (connector_id, stream, state, updated_at) VALUES ({p}, {p}, {p}, {p}) "
            "ON CONFLICT (connector_id, stream) DO UPDATE SET state = excluded.state, "
            "updated_at = excluded.updated_at",
            [connector_id, stream, json_text(state), self.now_param])

    def quarantine(self, connector_id: str, stream: str, entries: list[QuarantineEntry],
                   run_id: int | None) -> None:
        if not entries:
            return
        p = self.ph
        self._executemany(
            "INSERT INTO quarantine (connector_id, stream, record_key, external_id, field, reason, raw, run_id, "
            f"attempts, first_seen, last_seen) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, 1, {p}, {p}) "
            "ON CONFLICT (connector_id, stream, record_key) DO UPDATE SET reason = excluded.reason, "
            "field = excluded.field, raw = excluded.raw, run_id = excluded.run_id, "
            "attempts = quarantine.attempts + 1, last_seen = excluded.last_seen",
            [[connector_id, stream, e.record_key, e.external_id, e.field, e.reason[:4000], e.raw, run_id,
              self.now_param, self.now_param] for e in entries])

    def clear_quarantine(self, connector_id: str, stream: str, record_keys: list[str]) -> int:
        """Remove quarantine entries of records that have now been stored; return how many."""
        return self._delete_in("quarantine", "record_key", record_keys, connector_id=connector_id, stream=stream)
