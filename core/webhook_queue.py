"""The webhook queue: every accepted delivery is a row, committed before the provider gets its 2xx.

``storesync serve`` answers a provider only after :func:`enqueue` has committed the delivery, so a process killed
at any moment (even ``kill -9``) loses nothing: a row still ``queued`` at the next start is applied then. A
provider delivers at least once; its delivery id (Shopify ``X-Shopify-Webhook-Id``, Square ``event_id``, Twilio
``I-Twilio-Idempotency-Token``) is unique per connector, so a repeat finds its row and is not queued twice.

States: ``queued`` (waiting, or being applied), ``applied`` (its records are in the store and the affected SKUs
reconciled), ``stale`` (older than what the store holds: nothing written), ``quarantined`` (a record did not map:
it is in the quarantine table like any sync's), ``skipped`` (a topic storesync does not use), ``failed`` (gave up
after ``MAX_ATTEMPTS``; ``error`` says why, and ``storesync webhooks retry`` queues it again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import LargeBinary, Text, UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from .tables import JsonType, UtcDateTime

if TYPE_CHECKING:  # store.py imports this module to create the table
    from .store import Store

__all__ = ["FINAL_STATES", "MAX_ATTEMPTS", "QueuedDelivery", "WebhookDeliveryRow", "claim", "depth", "enqueue",
           "finish", "finish_many", "list_deliveries", "requeue", "retry_later", "state_counts"]

MAX_ATTEMPTS = 5
FINAL_STATES = ("applied", "stale", "quarantined", "skipped", "failed")


class WebhookDeliveryRow(SQLModel, table=True):
    """One delivery a provider made to ``/webhooks/<connector_id>``, as received (the raw body, verified)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (UniqueConstraint("connector_id", "delivery_id", name="uq_webhook_delivery"),)
    id: int | None = Field(default=None, primary_key=True)
    connector_id: str = Field(max_length=64)
    delivery_id: str = Field(max_length=255)
    topic: str = Field(max_length=128)
    headers: dict = Field(default_factory=dict, sa_type=JsonType)  # the provider headers the worker needs
    body: bytes = Field(sa_type=LargeBinary)
    received_at: datetime = Field(sa_type=UtcDateTime)
    state: str = Field(default="queued", max_length=16, index=True)
    attempts: int = 0
    not_before: datetime | None = Field(default=None, sa_type=UtcDateTime)  # back-off after a failed attempt
    error: str | None = Field(default=None, sa_type=Text)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    detail: dict = Field(default_factory=dict, sa_type=JsonType)  # what applying it did (counts, skus)


_T = WebhookDeliveryRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class QueuedDelivery:
    """A queued row as the worker reads it."""

    id: int
    connector_id: str
    delivery_id: str
    topic: str
    headers: dict[str, str]
    body: bytes
    received_at: datetime
    attempts: int


def _now() -> datetime:
    return datetime.now(UTC)


def enqueue(store: Store, connector_id: str, delivery_id: str, topic: str, headers: dict[str, str],
            body: bytes) -> int | None:
    """Commit one delivery; its row id, or ``None`` when this connector already has ``delivery_id`` (a repeat)."""
    values = {"connector_id": connector_id, "delivery_id": delivery_id[:255], "topic": topic[:128],
              "headers": headers, "body": body, "received_at": _now(), "state": "queued", "attempts": 0,
              "detail": {}}
    dialect = postgresql if store.dialect == "postgresql" else sqlite
    stmt = dialect.insert(_T).values(**values).on_conflict_do_nothing(
        index_elements=["connector_id", "delivery_id"]).returning(_T.c.id)
    with store.engine.begin() as conn:
        row = conn.execute(stmt).first()
    return int(row[0]) if row is not None else None


def claim(store: Store, limit: int = 50, *, now: datetime | None = None) -> list[QueuedDelivery]:
    """The oldest queued deliveries that are due, in arrival order (one worker per store applies them)."""
    now = now or _now()
    query = (sa.select(_T).where(_T.c.state == "queued", sa.or_(_T.c.not_before.is_(None), _T.c.not_before <= now))
             .order_by(_T.c.id).limit(limit))
    with store.read() as conn:
        rows = conn.execute(query).mappings().all()
    return [QueuedDelivery(r["id"], r["connector_id"], r["delivery_id"], r["topic"], dict(r["headers"] or {}),
                           bytes(r["body"]), r["received_at"], r["attempts"]) for r in rows]


def finish(store: Store, delivery_id: int, state: str, *, detail: dict[str, Any] | None = None,
           error: str | None = None) -> None:
    """Record a delivery's outcome (one of ``FINAL_STATES``)."""
    finish_many(store, [(delivery_id, state, detail, error)])


def finish_many(store: Store, outcomes: list[tuple[int, str, dict[str, Any] | None, str | None]]) -> None:
    """Record several outcomes ``(row id, state, detail, error)`` in one transaction (one commit per batch)."""
    for _id, state, _detail, _error in outcomes:
        if state not in FINAL_STATES:
            raise ValueError(f"unknown final state {state!r}; one of {FINAL_STATES}")
    if not outcomes:
        return
    stmt = sa.update(_T).where(_T.c.id == sa.bindparam("row_id")).values(
        state=sa.bindparam("new_state"), detail=sa.bindparam("new_detail"), error=sa.bindparam("new_error"),
        finished_at=_now(), attempts=_T.c.attempts + 1)
    with store.engine.begin() as conn:
        conn.execute(stmt, [{"row_id": i, "new_state": st, "new_detail": d or {}, "new_error": e}
                            for i, st, d, e in outcomes])


def retry_later(store: Store, delivery: QueuedDelivery, error: str) -> str:
    """Count a failed attempt: queued again after a back-off (2, 4, 8... s), or ``failed`` after ``MAX_ATTEMPTS``.

    Returns the new state.
    """
    attempts = delivery.attempts + 1
    state = "failed" if attempts >= MAX_ATTEMPTS else "queued"
    with store.engine.begin() as conn:
        conn.execute(sa.update(_T).where(_T.c.id == delivery.id).values(
            attempts=attempts, error=error[:4000], state=state,
            not_before=_now() + timedelta(seconds=2 ** attempts),
            finished_at=_now() if state == "failed" else None))
    return state


def requeue(store: Store, *, state: str = "failed", connector_id: str | None = None) -> int:
    """Queue deliveries in ``state`` again (after fixing what failed them); how many."""
    stmt = sa.update(_T).where(_T.c.state == state).values(state="queued", attempts=0, not_before=None,
                                                           finished_at=None)
    if connector_id:
        stmt = stmt.where(_T.c.connector_id == connector_id)
    with store.engine.begin() as conn:
        return int(conn.execute(stmt).rowcount)


def depth(store: Store) -> int:
    """How many deliveries wait to be applied."""
    with store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(_T).where(_T.c.state == "queued")).scalar_one())


def state_counts(store: Store) -> dict[str, int]:
    """Rows per state, over the whole queue table."""
    with store.read() as conn:
        return {s: int(n) for s, n in conn.execute(sa.select(_T.c.state, sa.func.count()).group_by(_T.c.state))}


def list_deliveries(store: Store, *, state: str | None = None, connector_id: str | None = None,
                    limit: int = 50) -> list[dict[str, Any]]:
    """The newest deliveries first, without their bodies (which may hold personal data), as plain data."""
    cols = [c for c in _T.c if c.name not in ("body", "headers")]
    stmt = sa.select(*cols).order_by(_T.c.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(_T.c.state == state)
    if connector_id:
        stmt = stmt.where(_T.c.connector_id == connector_id)
    with store.read() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]
