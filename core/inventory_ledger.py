"""What inventory reconciliation remembers between runs: levels pushed, conflicts found, order lines allocated.

- ``inventory_pushed``: the last quantity storesync set for one item at one channel location, and when. It is
  the compare value of the next push and what makes a second run with no change push nothing; a channel report
  equal to it is storesync's own echo, not an external change.
- ``inventory_conflict``: one row per (kind, SKU, location) while the conflict lasts and after: ``open`` until a
  policy handles it or it clears, then ``resolved`` with ``resolution`` saying how, in words.
- ``inventory_allocation``: one row per open order line that reconciliation placed or parked: ``allocated`` to a
  fulfilment location, ``backordered`` (waiting for incoming stock, with a promise date), ``preorder`` (waiting
  for a pre-order SKU's stock), ``denied`` (beyond stock under a ``deny`` policy: flagged for cancellation) or
  ``allowed`` (beyond stock within an ``allow`` limit). An allocated line is demand at its location from the
  moment it was allocated.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel

from .tables import JsonType, UtcDateTime

__all__ = ["ALLOCATION_STATES", "AllocationRow", "ConflictRow", "PushedRow", "upsert_rows"]

ALLOCATION_STATES = ("allocated", "backordered", "preorder", "denied", "allowed")


class PushedRow(SQLModel, table=True):
    """The quantity storesync last set for ``item_id`` at ``location_id`` of connector ``channel``."""

    __tablename__ = "inventory_pushed"
    channel: str = Field(max_length=64, primary_key=True)
    location_id: str = Field(max_length=255, primary_key=True)
    item_id: str = Field(max_length=255, primary_key=True)
    sku: str = Field(max_length=255, index=True)
    quantity: int
    pushed_at: datetime = Field(sa_type=UtcDateTime)


class ConflictRow(SQLModel, table=True):
    """One conflict and what became of it."""

    __tablename__ = "inventory_conflict"
    __table_args__ = (UniqueConstraint("kind", "sku", "location", name="uq_inventory_conflict"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    sku: str = Field(max_length=255, index=True)
    location: str = Field(max_length=255)
    detail: str = Field(sa_type=Text)
    orders: list = Field(default_factory=list, sa_type=JsonType)
    status: str = Field(default="open", max_length=16, index=True)
    resolution: str | None = Field(default=None, sa_type=Text)
    first_seen: datetime = Field(sa_type=UtcDateTime)
    last_seen: datetime = Field(sa_type=UtcDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class AllocationRow(SQLModel, table=True):
    """What reconciliation decided for one open order line."""

    __tablename__ = "inventory_allocation"
    __table_args__ = (UniqueConstraint("connector_id", "order_id", "sku", name="uq_inventory_allocation"),)
    id: int | None = Field(default=None, primary_key=True)
    connector_id: str = Field(max_length=64)
    order_id: str = Field(max_length=255)
    sku: str = Field(max_length=255, index=True)
    quantity: int
    placed_at: datetime = Field(sa_type=UtcDateTime)
    state: str = Field(max_length=16, index=True)
    location: str | None = Field(default=None, max_length=255)  # canonical; set when allocated
    promise_date: date | None = None
    origin: str = Field(default="order", max_length=16)  # order | preorder | backorder: how it was taken
    detail: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime = Field(sa_type=UtcDateTime)


def upsert_rows(conn: Any, table: sa.Table, key: tuple[str, ...],
                rows: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]) -> None:
    """Write ``rows`` of ``table``: each is (its key values, the values to set, the values a new row also gets).
    A row whose key is stored is updated, the others are inserted: one ``INSERT ... ON CONFLICT DO UPDATE``
    executed for all the rows that set the same columns. ``key`` names the table's unique columns; the keys of
    ``rows`` are distinct (PostgreSQL may send several rows in one statement, and one statement may not update a
    row twice)."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
    for keys, values, new in rows:
        groups[(tuple(values), tuple(new))].append({**keys, **new, **values})
    for (columns, _new), batch in groups.items():
        stmt = insert(table)
        conn.execute(stmt.on_conflict_do_update(index_elements=list(key),
                                                set_={c: stmt.excluded[c] for c in columns}), batch)
