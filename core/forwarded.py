"""The ``forwarded_order`` table: which stored orders were written into which target connector, and how.

One row per (target connector, source connector, source order id). ``state`` is ``pending`` (written before
the target is called), ``created`` or ``found`` (the target holds it: ``target_id``), ``quarantined`` (the
target refused this order, e.g. unknown SKUs: ``detail`` says why; tried again on the next run) or ``failed``
(a transient error; tried again). The target's own reference lookup, not this table, is what prevents a second
copy after a crash between the target's create and the commit of ``created`` here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .tables import UtcDateTime

__all__ = ["DONE_STATES", "STATES", "ForwardedOrderRow"]

STATES = ("pending", "created", "found", "quarantined", "failed")
DONE_STATES = ("created", "found")


class ForwardedOrderRow(SQLModel, table=True):
    """One source order and what became of it in one target connector."""

    __tablename__ = "forwarded_order"
    __table_args__ = (UniqueConstraint("connector_id", "source_connector_id", "source_external_id",
                                       name="uq_forwarded_order_source"),)
    id: int | None = Field(default=None, primary_key=True)
    connector_id: str = Field(max_length=64, index=True)
    source_connector_id: str = Field(max_length=64)
    source_external_id: str = Field(max_length=255)
    reference: str = Field(max_length=255)
    target_id: str | None = Field(default=None, max_length=255)
    state: str = Field(default="pending", max_length=16)
    detail: str | None = Field(default=None, sa_type=Text)
    attempts: int = 0
    first_seen: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
