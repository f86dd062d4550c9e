"""What storesync knows about a phone number as a message recipient: opted out (STOP), or unable to take SMS.

One row per E.164 number in the ``recipient`` table. An opt-out comes from a STOP reply (read back from the
gateway) or from the gateway refusing a send (Twilio 21610); a later START clears it. A number the gateway calls
invalid (21211, 21614) is flagged and never sent to again until the customer record changes its phone. Nothing
is ever sent to an opted-out or flagged number, transactional or marketing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Boolean, Column, String, Table, Text
from sqlalchemy.engine import Connection

from .capabilities import ConsentChange
from .tables import UtcDateTime, metadata

__all__ = ["RECIPIENT_TABLE", "apply_consent", "blocked_reason", "flag_invalid", "recipients"]

RECIPIENT_TABLE = Table(
    "recipient", metadata,
    Column("phone", String(32), primary_key=True),
    Column("opted_out", Boolean, nullable=False, default=False),
    Column("invalid", Boolean, nullable=False, default=False),
    Column("reason", Text, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)


def blocked_reason(conn: Connection, phone: str) -> str | None:
    """Why nothing may be sent to ``phone`` (``None`` when it may)."""
    t = RECIPIENT_TABLE
    row = conn.execute(sa.select(t.c.opted_out, t.c.invalid, t.c.reason).where(t.c.phone == phone)).first()
    if row is None:
        return None
    if row.opted_out:
        return f"opted out ({row.reason})" if row.reason else "opted out"
    if row.invalid:
        return f"number flagged invalid ({row.reason})" if row.reason else "number flagged invalid"
    return None


def apply_consent(conn: Connection, change: ConsentChange) -> None:
    """Record an opt-out or opt-in, unless a newer change for the number is already recorded."""
    t = RECIPIENT_TABLE
    row = conn.execute(sa.select(t.c.updated_at).where(t.c.phone == change.phone)).first()
    values = {"opted_out": change.opted_out, "reason": change.source, "updated_at": change.at}
    if row is None:
        conn.execute(sa.insert(t).values(phone=change.phone, invalid=False, **values))
    elif row.updated_at <= change.at:
        conn.execute(sa.update(t).where(t.c.phone == change.phone).values(**values))


def flag_invalid(conn: Connection, phone: str, reason: str, at: datetime) -> None:
    """Flag a number the gateway says cannot take SMS."""
    t = RECIPIENT_TABLE
    if conn.execute(sa.select(t.c.phone).where(t.c.phone == phone)).first() is None:
        conn.execute(sa.insert(t).values(phone=phone, opted_out=False, invalid=True, reason=reason, updated_at=at))
    else:
        conn.execute(sa.update(t).where(t.c.phone == phone).values(invalid=True, reason=reason, updated_at=at))


def recipients(conn: Connection) -> list[dict[str, Any]]:
    """Every number with a recorded state."""
    return [dict(r) for r in conn.execute(sa.select(RECIPIENT_TABLE).order_by(RECIPIENT_TABLE.c.phone)).mappings()]
