"""One run per connector instance at a time.

SQLite: an exclusive ``flock`` on a file beside the database (the store lives on one machine; the kernel
drops the lock when the process dies, even on kill -9). PostgreSQL: a session-level advisory lock held on a
dedicated connection (works across machines; the server drops it when the connection dies).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from .errors import LockedError
from .store import Store

__all__ = ["connector_lock"]

_memory_locks: dict[str, threading.Lock] = {}


@contextmanager
def connector_lock(store: Store, connector_id: str) -> Iterator[None]:
    """Hold the lock of ``connector_id`` for the duration of the block, or raise ``LockedError`` at once."""
    if store.dialect == "postgresql":
        with _advisory_lock(store, connector_id):
            yield
    elif store.sqlite_path:
        with _file_lock(Path(f"{store.sqlite_path}.{_safe(connector_id)}.lock"), connector_id):
            yield
    else:
        with _thread_lock(connector_id):
            yield


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _locked(connector_id: str, holder: str = "") -> LockedError:
    return LockedError(f"connector '{connector_id}' is locked by another run{holder}",
                       hint="wait for it to finish; a crashed run releases its lock automatically")


@contextmanager
def _file_lock(path: Path, connector_id: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            raise _locked(connector_id, f" ({holder})" if holder else "") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _advisory_lock(store: Store, connector_id: str) -> Iterator[None]:
    with store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        # advisory locks are server-wide: key them by database and schema too, so two stores never collide
        where = conn.execute(sa.text("SELECT current_database() || '.' || current_schema()")).scalar()
        key = int.from_bytes(hashlib.blake2b(f"storesync:{where}:{connector_id}".encode(), digest_size=8).digest(),
                             "big", signed=True)
        if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            raise _locked(connector_id)
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})


@contextmanager
def _thread_lock(connector_id: str) -> Iterator[None]:
    lock = _memory_locks.setdefault(connector_id, threading.Lock())
    if not lock.acquire(blocking=False):
        raise _locked(connector_id)
    try:
        yield
    finally:
        lock.release()
