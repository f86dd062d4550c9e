"""The outbox: messages are written to the store before any network call, then delivered exactly once.

Life of a message (``message.status``)::

    pending ──claim──> submitting ──gateway answered──> queued / sent / delivered / undelivered / failed ...
       │                   │ (process died, or the answer was lost)
       │                   └──a run settle_after_seconds later asks the gateway (find_message)──> its
       │                      status, or back to pending
       └──> skipped (opted out, flagged number, no phone, no marketing consent) / expired (older than max_age)

A message's ``idempotency_key`` is ``<rule>:<event id>``, unique in the table, so planning the same event twice
plans nothing new. Delivery claims a message (``submitting``, committed) before the send and records the answer
after it; a crash between the two leaves it ``submitting``, and the next run looks it up at the gateway by
recipient, body and time before deciding to send it: so a message is never sent twice and never lost. A gateway
without ``find_message`` leaves such a message ``unknown`` for a person to check (never resent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .capabilities import ConsentChange, Delivery, OutboundMessage
from .connector import Connector
from .consent import apply_consent, blocked_reason, flag_invalid
from .errors import RetriableSyncError
from .hookspecs import hookimpl
from .models import Event
from .rules import NotificationSettings, Rule, pick_language, quiet_until, render
from .segments import count_segments
from .store import Store
from .tables import MessageRow

__all__ = ["DeliveryReport", "RulePlanner", "deliver", "insert_messages", "list_messages", "record_status",
           "refresh_statuses", "upgrade_schema"]

logger = logging.getLogger("storesync.outbox")
MESSAGES = MessageRow.__table__
#: the longest body Twilio takes (concatenated segments); a longer one is skipped with the reason
MAX_BODY = 1600
#: statuses a gateway reports while a message is still on its way
#: sends in doubt in a row after which a delivery pass stops (the gateway is down, not just flaky)
MAX_DOUBTFUL_IN_A_ROW = 3
IN_FLIGHT = frozenset({"accepted", "scheduled", "queued", "sending", "sent", "receiving"})


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    expired: int = 0
    recovered: int = 0  # in-doubt messages found at the gateway (not resent)
    requeued: int = 0  # in-doubt messages the gateway never got (sent again)
    waiting: int = 0  # in-doubt messages too recent to look up yet (settled by a later run)
    statuses_updated: int = 0
    in_doubt: int = 0  # sends whose answer was a transient error: left 'submitting', settled by the next run


def upgrade_schema(store: Store) -> list[str]:
    """Add the outbox columns to a ``message`` table made by an earlier storesync (no migrations before 1.0).

    Returns the columns added. Every added column is nullable or has a default, so old rows stay valid.
    """
    present = {c["name"] for c in sa.inspect(store.engine).get_columns("message")}
    missing = [c for c in MESSAGES.columns if c.name not in present]
    with store.engine.begin() as conn:
        for column in missing:
            kind = column.type.compile(dialect=store.engine.dialect)
            default = " DEFAULT 0" if column.name == "attempts" else ""
            conn.exec_driver_sql(f'ALTER TABLE message ADD COLUMN "{column.name}" {kind}{default}')
    return [c.name for c in missing]


# -- planning -----------------------------------------------------------------------------------------------

class RulePlanner:
    """A ``storesync_event`` listener: turns each event into one outbox row per matching rule.

    Registered on the plugin manager only while ``storesync notify`` fans events out; the rows it plans are
    written by the caller in the transaction that marks the events dispatched.
    """

    def __init__(self, conn: Connection, settings: NotificationSettings, *, connector_id: str, timezone: str,
                 now: datetime) -> None:
        self.conn, self.settings, self.connector_id = conn, settings, connector_id
        self.timezone, self.now = timezone, now
        self.planned: list[dict[str, Any]] = []

    @hookimpl
    def storesync_event(self, event: Event) -> None:
        for name, rule in self.settings.rules.items():
            if rule.enabled and rule.event == event.type:
                self.planned.append(self._plan(name, rule, event))

    def _plan(self, name: str, rule: Rule, event: Event) -> dict[str, Any]:
        data = event.data
        language = pick_language(rule.templates, data.get("language"), self.settings.default_language)
        body = render(rule.templates[language], data)
        seg = count_segments(body)
        phone = data.get("phone")
        status, detail = "pending", None
        reason = self._skip_reason(rule, phone, data) or _too_long(body)
        if reason:
            status, detail = "skipped", reason
        not_before = None
        if rule.purpose == "marketing" and status == "pending":
            not_before = quiet_until(self.now, self.settings.quiet_hours, self.timezone)
        return {"idempotency_key": f"{name}:{event.id}", "person_id": None, "to": phone or "", "body": body,
                "purpose": rule.purpose, "language": language, "status": status, "created_at": self.now,
                "rule": name, "event_id": event.id, "connector_id": self.connector_id, "detail": detail,
                "encoding": seg.encoding, "segments": seg.segments, "attempts": 0, "not_before": not_before,
                "updated_at": self.now}

    def _skip_reason(self, rule: Rule, phone: str | None, data: dict[str, Any]) -> str | None:
        if not phone:
            return "no phone number on the order or its customer"
        blocked = blocked_reason(self.conn, phone)
        if blocked:
            return blocked
        if rule.purpose == "marketing" and data.get("sms_consent") is not True:
            return "marketing needs the customer's SMS consent"
        return None


def _too_long(body: str) -> str | None:
    if len(body) > MAX_BODY:
        return f"the text is {len(body)} characters; gateways take at most {MAX_BODY}: shorten the template"
    return None


def insert_messages(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert planned messages whose idempotency key is new; return how many were inserted."""
    if not rows:
        return 0
    keys = [r["idempotency_key"] for r in rows]
    known = {k for (k,) in conn.execute(sa.select(MESSAGES.c.idempotency_key).where(
        MESSAGES.c.idempotency_key.in_(keys)))}
    fresh = list({r["idempotency_key"]: r for r in rows if r["idempotency_key"] not in known}.values())
    if fresh:
        conn.execute(sa.insert(MESSAGES), fresh)
    return len(fresh)


# -- delivery -----------------------------------------------------------------------------------------------

def deliver(store: Store, connector: Connector, settings: NotificationSettings, *,
            report: DeliveryReport | None = None, sleep: Callable[[float], None] = time.sleep,
            now: Callable[[], datetime] = utcnow) -> DeliveryReport:
    """Settle in-doubt messages, then send every due pending message of ``connector``, paced.

    Counts go into ``report`` as they happen, so they are right even when a gateway error (``SyncError``) ends
    the pass early. A send answered by a transient error (a 5xx, a cut-off answer: the gateway may have acted)
    stays ``submitting`` for the next run to settle, and the pass goes on with the other messages, so one flaky
    answer does not hold back the rest; ``MAX_DOUBTFUL_IN_A_ROW`` of them in a row stop it. Any send left in
    doubt makes the pass raise :class:`RetriableSyncError` at the end (exit 3: run again to settle).
    """
    report = report if report is not None else DeliveryReport()
    _settle_in_doubt(store, connector, report, now, timedelta(seconds=settings.settle_after_seconds))
    _expire(store, connector.id, now() - timedelta(hours=settings.max_age_hours), report, now())
    interval, last, in_a_row, doubt = 1.0 / settings.rate_per_second, 0.0, 0, None
    for row in _due(store, connector.id, now()):
        wait = last + interval - time.monotonic()
        if wait > 0:
            sleep(wait)
        last = time.monotonic()
        try:
            _send_one(store, connector, row, report, now)
            in_a_row = 0
        except RetriableSyncError as exc:
            doubt, in_a_row = exc, in_a_row + 1
            report.in_doubt += 1
            if in_a_row >= MAX_DOUBTFUL_IN_A_ROW:
                raise
    if doubt is not None:
        raise RetriableSyncError(f"{report.in_doubt} message(s) in doubt after transient gateway errors; the next "
                                 f"run settles them without sending twice (last: {doubt})")
    return report


def _due(store: Store, connector_id: str, at: datetime) -> list[Any]:
    m = MESSAGES.c
    with store.read() as conn:
        return conn.execute(sa.select(m.id, m.to, m.body, m.idempotency_key, m.purpose).where(
            m.status == "pending", m.connector_id == connector_id,
            sa.or_(m.not_before.is_(None), m.not_before <= at)).order_by(m.id)).all()


def _expire(store: Store, connector_id: str, oldest: datetime, report: DeliveryReport, at: datetime) -> None:
    m = MESSAGES.c
    with store.write() as w:
        result = w.conn.execute(sa.update(MESSAGES).where(
            m.status == "pending", m.connector_id == connector_id, m.created_at < oldest).values(
            status="expired", detail="not sent within max_age_hours", updated_at=at))
        report.expired += max(result.rowcount, 0)


def _send_one(store: Store, connector: Connector, row: Any, report: DeliveryReport,
              now: Callable[[], datetime]) -> None:
    with store.write() as w:
        reason = blocked_reason(w.conn, row.to)
        if reason:
            _update(w.conn, row.id, status="skipped", detail=reason, updated_at=now())
            report.skipped += 1
            return
        claimed = w.conn.execute(sa.update(MESSAGES).where(MESSAGES.c.id == row.id, MESSAGES.c.status == "pending")
                                 .values(status="submitting", attempts=MESSAGES.c.attempts + 1, claimed_at=now(),
                                         updated_at=now()))
        if claimed.rowcount != 1:
            return
    delivery = connector.send_message(OutboundMessage(to=row.to, body=row.body, idempotency_key=row.idempotency_key))
    _record(store, connector.id, row.id, row.to, delivery, now())
    logger.info("%s: %s -> %s %s%s", connector.id, row.idempotency_key, delivery.provider_id or "refused",
                delivery.status, f" ({delivery.error_code}: {delivery.detail})" if delivery.error_code else "")
    if delivery.provider_id:
        report.sent += 1
    else:
        report.failed += 1


def _record(store: Store, connector_id: str, message_id: int, phone: str, delivery: Delivery, at: datetime) -> None:
    """Write what the gateway said about one message, and what it means for the recipient."""
    values: dict[str, Any] = {"status": delivery.status, "error_code": delivery.error_code,
                              "detail": delivery.detail or None, "updated_at": at}
    if delivery.provider_id:
        values.update(provider_id=delivery.provider_id)
    if delivery.segments:
        values.update(segments=delivery.segments)
    with store.write() as w:
        if delivery.provider_id:
            w.conn.execute(sa.update(MESSAGES).where(MESSAGES.c.id == message_id, MESSAGES.c.sent_at.is_(None))
                           .values(sent_at=at))
        _update(w.conn, message_id, **values)
        source = f"{connector_id} error {delivery.error_code}: {delivery.detail}"
        if delivery.recipient == "opted_out":
            apply_consent(w.conn, ConsentChange(phone, True, at, source))
        elif delivery.recipient == "invalid":
            flag_invalid(w.conn, phone, source, at)


def _settle_in_doubt(store: Store, connector: Connector, report: DeliveryReport, now: Callable[[], datetime],
                     settle_after: timedelta) -> None:
    m = MESSAGES.c
    with store.read() as conn:
        rows = conn.execute(sa.select(m.id, m.to, m.body, m.idempotency_key, m.claimed_at).where(
            m.status == "submitting", m.connector_id == connector.id).order_by(m.id)).all()
    finder = getattr(connector, "find_message", None)
    for row in rows:
        if row.claimed_at is not None and row.claimed_at > now() - settle_after:
            report.waiting += 1  # the gateway may not list a message it has just created: ask next run
            continue
        if finder is None:
            with store.write() as w:
                _update(w.conn, row.id, status="unknown", updated_at=now(),
                        detail="the gateway may have taken it before a crash and cannot be asked; not resent")
            continue
        with store.read() as conn:
            taken = {p for (p,) in conn.execute(sa.select(m.provider_id).where(
                m.to == row.to, m.provider_id.is_not(None)))}
        message = OutboundMessage(to=row.to, body=row.body, idempotency_key=row.idempotency_key)
        found = finder(message, row.claimed_at or now(), taken)
        if found is not None:
            _record(store, connector.id, row.id, row.to, found, now())
            report.recovered += 1
        else:
            with store.write() as w:
                _update(w.conn, row.id, status="pending", updated_at=now())
            report.requeued += 1


def refresh_statuses(store: Store, connector: Connector, since: datetime, before: datetime, *,
                     now: Callable[[], datetime] = utcnow) -> int:
    """Read back the status of every message still in flight, sent between ``since`` and ``before``.

    ``before`` is the start of this run: a message sent a moment ago is still queued, so reading it back now
    would cost a request per message for nothing; the next run reads it. Returns how many changed.
    """
    m = MESSAGES.c
    reader = getattr(connector, "message_status", None)
    if reader is None:
        return 0
    with store.read() as conn:
        rows = conn.execute(sa.select(m.id, m.to, m.provider_id, m.status).where(
            m.connector_id == connector.id, m.provider_id.is_not(None), m.status.in_(IN_FLIGHT),
            m.sent_at >= since, m.sent_at < before).order_by(m.id)).all()
    changed = 0
    for row in rows:
        delivery = reader(row.provider_id)
        if delivery.status != row.status:
            _record(store, connector.id, row.id, row.to, delivery, now())
            changed += 1
    return changed


def record_status(store: Store, connector_id: str, provider_id: str, delivery: Delivery) -> bool:
    """Apply a status a gateway pushed (a verified status callback); return False for an unknown or stale one.

    Callbacks can arrive out of order: a message already in a final status never goes back to an in-flight one.
    """
    m = MESSAGES.c
    with store.read() as conn:
        row = conn.execute(sa.select(m.id, m.to, m.status).where(
            m.connector_id == connector_id, m.provider_id == provider_id)).first()
    if row is None or (row.status not in IN_FLIGHT and delivery.status in IN_FLIGHT):
        return False
    _record(store, connector_id, row.id, row.to, delivery, utcnow())
    return True


def _update(conn: Connection, message_id: int, **values: Any) -> None:
    conn.execute(sa.update(MESSAGES).where(MESSAGES.c.id == message_id).values(**values))


# -- reading --------------------------------------------------------------------------------------------------

def list_messages(store: Store, *, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest messages first, as plain data."""
    upgrade_schema(store)
    stmt = sa.select(MESSAGES).order_by(MESSAGES.c.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(MESSAGES.c.status == status)
    with store.read() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]
