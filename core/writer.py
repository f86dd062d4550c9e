"""Batch writes on the hot path, through the DB-API (sqlite3 ``executemany``; psycopg ``COPY``).

One ``BatchWriter`` lives inside one transaction. ``upsert`` looks up the batch's bindings in one query,
inserts the new rows, updates the changed ones and leaves the unchanged ones alone (same ``row_hash``), so
writing the same batch twice changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from .models import Canonical
from .tables import CHILD_TABLES, ENTITY_TABLES, json_text, table_columns, to_utc_text

__all__ = ["BatchWriter", "Counts", "Item", "QuarantineEntry"]

#: nested canonical lists stored as entity rows of their own: target -> (field, child target, link field)
NESTED_ENTITIES = {"product": ("variants", "variant", "product_external_id")}
_BINDING = ("connector_id", "stream", "external_id", "row_hash", "raw", "synced_at")
_CHUNK = 5000


class Item(NamedTuple):
    """One mapped record to store: its external id, validated model and raw payload as JSON text."""

    external_id: str
    model: Canonical
    raw: str | None


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

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _identity(v: Any) -> Any:
    return v


def _converter(dialect: str, sample_type: Any) -> Callable[[Any], Any]:
    """Python value -> DB-API parameter for one column type."""
    name = type(sample_type).__name__
    if name == "JsonType":
        return lambda v: None if v is None else json_text(v)
    if dialect == "sqlite":
        if name == "DecimalType":
            return lambda v: None if v is None else str(v)
        if name == "UtcDateTime":
            return to_utc_text
    if name == "String" and getattr(sample_type, "length", None) == 10:  # dates
        return lambda v: v.isoformat() if isinstance(v, date) else v
    return _identity


@lru_cache(maxsize=None)
def _plan(table_name: str, dialect: str) -> tuple[list[str], list[tuple[str, Callable[[Any], Any]]]]:
    """Columns of a table in write order and, for the model fields, their converters."""
    table = _table(table_name)
    cols = table_columns(table)
    skip = ("order_id", "position") if table_name == "order_line" else _BINDING
    data_cols = [c for c in cols if c not in skip]
    convs = [(c, _converter(dialect, table.c[c].type)) for c in data_cols]
    return cols, convs


def _table(name: str) -> Any:
    for t in ENTITY_TABLES.values():
        if t.name == name:
            return t
    return next(t for _f, t, _p in CHILD_TABLES.values() if t.name == name)


def _values(obj: Any, convs: list[tuple[str, Callable[[Any], Any]]]) -> list[Any]:
    d = obj.__dict__
    return [conv(d[name]) for name, conv in convs]


class BatchWriter:
    """Writes inside one open transaction of ``conn`` (a SQLAlchemy connection)."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.dbapi = conn.connection.driver_connection
        self.ph = "?" if dialect == "sqlite" else "%s"
        self.now = datetime.now(UTC)
        self.now_param = to_utc_text(self.now) if dialect == "sqlite" else self.now

    # -- entity upsert ----------------------------------------------------------------------------------

    def upsert(self, connector_id: str, stream: str, target: str, items: Sequence[Item], *,
               dry_run: bool = False) -> Counts:
        """Insert new, update changed and skip unchanged records of one stream; return the counts."""
        table = ENTITY_TABLES[target]
        cols, convs = _plan(table.name, self.dialect)
        by_id: dict[str, tuple[Item, list[Any], str]] = {}
        child = CHILD_TABLES.get(target)
        for item in items:  # the last occurrence of an external id wins
            values = _values(item.model, convs)
            digest = self._hash(item.raw, values, item.model, child)
            by_id[item.external_id] = (item, values, digest)
        existing = self._existing(table.name, connector_id, stream, list(by_id))
        counts = Counts()
        inserts, updates, changed = [], [], []
        for ext, (_item, values, digest) in by_id.items():
            old = existing.get(ext)
            if old is None:
                inserts.append([connector_id, stream, ext, digest, _item.raw, self.now_param, *values])
            elif old[1] != digest:
                updates.append([digest, _item.raw, self.now_param, *values, old[0]])
                changed.append(ext)
            else:
                counts.unchanged += 1
        counts.inserted, counts.updated = len(inserts), len(updates)
        if dry_run or not (inserts or updates):
            return counts
        self._insert(table.name, cols, inserts)
        if updates:
            sets = ", ".join(f"{c} = {self.ph}" for c in cols[3:])
            self._executemany(f"UPDATE {table.name} SET {sets} WHERE id = {self.ph}", updates)
        touched = [r[2] for r in inserts] + changed
        self._write_children(connector_id, stream, target, table.name, touched, by_id, existing, changed)
        return counts

    def _hash(self, raw: str | None, values: list[Any], model: Any, child: Any) -> str:
        h = hashlib.blake2b((raw or "").encode(), digest_size=12)
        h.update(repr(values).encode())
        if child:
            _f, ctable, _p = child
            _c, cconvs = _plan(ctable.name, self.dialect)
            h.update(repr([_values(line, cconvs) for line in getattr(model, child[0])]).encode())
        return h.hexdigest()

    def _existing(self, table: str, connector_id: str, stream: str,
                  keys: list[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        if not keys:
            return found
        cur = self.dbapi.cursor()
        base = f"SELECT external_id, id, row_hash FROM {table} WHERE connector_id = {self.ph} AND stream = {self.ph}"
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i:i + _CHUNK]
            if self.dialect == "sqlite":
                cur.execute(f"{base} AND external_id IN ({','.join('?' * len(chunk))})", [connector_id, stream, *chunk])
            else:
                cur.execute(f"{base} AND external_id = ANY(%s)", [connector_id, stream, chunk])
            for ext, rid, digest in cur.fetchall():
                found[ext] = (rid, digest)
        return found

    def _write_children(self, connector_id: str, stream: str, target: str, table: str, touched: list[str],
                        by_id: dict[str, tuple[Item, list[Any], str]], existing: dict[str, tuple[int, str]],
                        changed: list[str]) -> None:
        if target in CHILD_TABLES:
            field, ctable, parent_col = CHILD_TABLES[target]
            ids = {**{k: v[0] for k, v in existing.items()},
                   **{k: v[0] for k, v in self._existing(table, connector_id, stream,
                                                         [t for t in touched if t not in existing]).items()}}
            if changed:
                self._delete_in(ctable.name, parent_col, [ids[e] for e in changed])
            ccols, cconvs = _plan(ctable.name, self.dialect)
            rows = [[ids[ext], pos, *_values(line, cconvs)]
                    for ext in touched for pos, line in enumerate(getattr(by_id[ext][0].model, field))]
            self._insert(ctable.name, ccols, rows)
        if target in NESTED_ENTITIES:
            field, ctarget, link = NESTED_ENTITIES[target]
            nested = []
            for ext in touched:
                for sub in getattr(by_id[ext][0].model, field):
                    if getattr(sub, link) is None:
                        setattr(sub, link, ext)
                    nested.append(Item(sub.external_id, sub, None))
            if nested:
                self.upsert(connector_id, stream, ctarget, nested)

    def _delete_in(self, table: str, column: str, ids: list[int]) -> None:
        cur = self.dbapi.cursor()
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            if self.dialect == "sqlite":
                cur.execute(f"DELETE FROM {table} WHERE {column} IN ({','.join('?' * len(chunk))})", chunk)
            else:
                cur.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", [chunk])

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
        cur = self.dbapi.cursor()
        total = 0
        for i in range(0, len(record_keys), _CHUNK):
            chunk = record_keys[i:i + _CHUNK]
            if self.dialect == "sqlite":
                cur.execute("DELETE FROM quarantine WHERE connector_id = ? AND stream = ? AND record_key IN "
                            f"({','.join('?' * len(chunk))})", [connector_id, stream, *chunk])
            else:
                cur.execute("DELETE FROM quarantine WHERE connector_id = %s AND stream = %s AND "
                            "record_key = ANY(%s)", [connector_id, stream, chunk])
            total += max(cur.rowcount, 0)
        return total

    def quarantine_count(self, connector_id: str, stream: str) -> int:
        cur = self.dbapi.cursor()
        cur.execute(f"SELECT COUNT(*) FROM quarantine WHERE connector_id = {self.ph} AND stream = {self.ph}",
                    [connector_id, stream])
        return int(cur.fetchone()[0])

