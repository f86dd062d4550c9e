"""The store: opening the database, write transactions, cursors, quarantine, run log.

The hot path (batch upserts) goes through the DB-API inside SQLAlchemy-managed connections (see
``writer.py``); the ORM serves runs, cursors and reports. SQLite by default; PostgreSQL by URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from .errors import StoreError
from .forwarded import ForwardedOrderRow  # noqa: F401  (registers the forwarded_order table)
from .tables import ENTITY_TABLES, CursorRow, QuarantineRow, RunRow, metadata
from . import consent, events  # noqa: F401,E402  their tables join the metadata before create_all
from . import inventory_tables  # noqa: F401,E402  inventory_position/_target and their indexes
from . import inventory_ledger  # noqa: F401,E402  (the inventory_pushed, _conflict and _allocation tables)
from . import webhook_queue  # noqa: F401,E402  (the webhook_delivery table of storesync serve)
from . import identity_store  # noqa: F401,E402  the identity tables (issue 8) join it too
from .writer import BatchWriter

__all__ = ["Store", "normalise_url"]

SUPPORTED = ("sqlite", "postgresql")


def normalise_url(url: str) -> str:
    """Check a database URL and pick the psycopg 3 driver for PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"invalid database URL {_redact(url)!r}",
                         hint="use sqlite:///path/to/file.db or postgresql://user@host/db") from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise StoreError(f"unsupported database {backend!r} in URL {_redact(url)!r}; supported: sqlite, postgresql")
    if backend == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable>"


def now() -> datetime:
    return datetime.now(UTC)


class Store:
    """A storesync database. ``Store(url)`` opens it and creates missing tables."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.display_url = _redact(self.url)
        try:
            self.engine: Engine = sa.create_engine(self.url, future=True)
        except (NoSuchModuleError, ImportError) as exc:
            raise StoreError(f"cannot open {self.display_url}: {exc}",
                             hint="for PostgreSQL install the extra: pip install 'storesync[postgres]'") from None
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            _tune_sqlite(self.engine)
        try:
            metadata.create_all(self.engine)
        except (OperationalError, SQLAlchemyError) as exc:
            raise StoreError(f"cannot open the store at {self.display_url}: {_first_line(exc)}",
                             hint="check [storesync] database in plugins.toml and that the server is up") from None

    @property
    def sqlite_path(self) -> str | None:
        """The database file of a SQLite store (``None`` in memory or on PostgreSQL)."""
        db = self.engine.url.database if self.dialect == "sqlite" else None
        return db if db and db != ":memory:" else None

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions -----------------------------------------------------------------------------------

    @contextmanager
    def write(self, *, rollback: bool = False) -> Iterator[BatchWriter]:
        """One write transaction: everything done through the writer commits together or not at all.

        With ``rollback=True`` the work is done and then undone (dry runs get exact counts this way).
        """
        with self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                yield BatchWriter(conn, self.dialect)
            except BaseException:
                transaction.rollback()
                raise
            if rollback:
                transaction.rollback()
            else:
                transaction.commit()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # -- cursors ----------------------------------------------------------------------------------------

    def get_cursor(self, connector_id: str, stream: str) -> Any:
        with self.read() as conn:
            row = conn.execute(sa.select(CursorRow.state).where(
                CursorRow.connector_id == connector_id, CursorRow.stream == stream)).first()
        return row[0] if row else None

    def reset_cursors(self, connector_id: str, streams: list[str] | None = None) -> None:
        stmt = sa.delete(CursorRow).where(CursorRow.connector_id == connector_id)
        if streams is not None:
            stmt = stmt.where(CursorRow.stream.in_(streams))
        with self.engine.begin() as conn:
            conn.execute(stmt)

    # -- run log ----------------------------------------------------------------------------------------

    def start_run(self, connector_id: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(sa.insert(RunRow).values(connector_id=connector_id, started_at=now(),
                                                           status="running", counts={}))
            return int(result.inserted_primary_key[0])

    def finish_run(self, run_id: int, status: str, counts: dict[str, Any], error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(RunRow).where(RunRow.id == run_id).values(
                finished_at=now(), status=status, counts=counts, error=error))

    # -- reports ----------------------------------------------------------------------------------------

    def status(self, limit: int = 10) -> dict[str, Any]:
        """Recent runs, every cursor and quarantine counts, as plain data."""
        with self.read() as conn:
            runs = conn.execute(sa.select(RunRow).order_by(RunRow.id.desc()).limit(limit)).mappings().all()
            cursors = conn.execute(sa.select(CursorRow).order_by(CursorRow.connector_id,
                                                                 CursorRow.stream)).mappings().all()
            quarantine = conn.execute(
                sa.select(QuarantineRow.connector_id, QuarantineRow.stream, sa.func.count())
                .group_by(QuarantineRow.connector_id, QuarantineRow.stream)).all()
            counts = {t: conn.execute(sa.select(sa.func.count()).select_from(tbl)).scalar_one()
                      for t, tbl in ENTITY_TABLES.items()}
        return {
            "database": self.display_url,
            "records": counts,
            "runs": [_plain(r) for r in runs],
            "cursors": [_plain(c) for c in cursors],
            "quarantine": [{"connector_id": c, "stream": s, "count": n} for c, s, n in quarantine],
        }

    def quarantined(self, connector_id: str | None = None, stream: str | None = None,
                    limit: int | None = None) -> list[dict[str, Any]]:
        stmt = sa.select(QuarantineRow).order_by(QuarantineRow.id)
        if connector_id:
            stmt = stmt.where(QuarantineRow.connector_id == connector_id)
        if stream:
            stmt = stmt.where(QuarantineRow.stream == stream)
        if limit:
            stmt = stmt.limit(limit)
        with self.read() as conn:
            return [_plain(r) for r in conn.execute(stmt).mappings().all()]

    def stored_raw(self, target: str, connector_id: str, stream: str, batch: int = 1000) -> Iterator[list[Any]]:
        """Yield the stored raw payloads of one stream in batches of ``batch`` (for ``--remap``)."""
        table = ENTITY_TABLES[target]
        last = 0
        while True:
            with self.read() as conn:
                rows = conn.execute(sa.select(table.c.id, table.c.raw).where(
                    table.c.connector_id == connector_id, table.c.stream == stream,
                    table.c.id > last, table.c.raw.is_not(None)).order_by(table.c.id).limit(batch)).all()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[1] for r in rows]


def _plain(row: Any) -> dict[str, Any]:
    """A result row as JSON-friendly data (datetimes as ISO text)."""
    out = {}
    for key, value in dict(row).items():
        if hasattr(key, "key"):
            key = key.key
        out[str(key)] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0]


def _tune_sqlite(engine: Engine) -> None:
    """WAL for concurrent readers, a busy timeout, and explicit IMMEDIATE transactions (no upgrade deadlocks)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 60000")
        cur.execute("PRAGMA page_size = 16384")  # takes effect on a new database file only
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA cache_size = -16384")  # 16 MiB of page cache per connection, for index lookups
        cur.execute("PRAGMA wal_autocheckpoint = 8192")  # checkpoint every ~32 MiB, not every 4 MiB
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
