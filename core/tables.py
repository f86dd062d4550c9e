"""Database tables.

Low-volume tables (runs, cursors, quarantine, persons, messages) are SQLModel classes. The per-source
entity tables (customer, product, variant, location, inventory_level, orders, order_line) are generated from
the canonical pydantic models into the same ``SQLModel.metadata``, so a model field and its column can never
drift apart. Each entity row is its own source binding: ``(connector_id, stream, external_id)`` is unique and
the row keeps the raw payload it was mapped from (``raw``) and a hash of raw plus mapped values (``row_hash``).
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from .models import ENTITIES, OrderLine

__all__ = [
    "CHILD_TABLES",
    "ENTITY_TABLES",
    "CursorRow",
    "MessageRow",
    "PersonRow",
    "QuarantineRow",
    "RunRow",
    "metadata",
    "table_columns",
]

metadata = SQLModel.metadata


# -- portable column types ----------------------------------------------------------------------------------

class DecimalType(TypeDecorator):
    """Exact decimals: NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC is a float)."""

    impl = Numeric(24, 8)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(String() if dialect.name == "sqlite" else Numeric(24, 8))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return str(value) if value is not None and dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return Decimal(value) if value is not None else None


class UtcDateTime(TypeDecorator):
    """Timezone-aware datetimes: TIMESTAMPTZ on PostgreSQL, UTC ISO-8601 text on SQLite (sorts correctly)."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        from sqlalchemy import DateTime

        return dialect.type_descriptor(String() if dialect.name == "sqlite" else DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return to_utc_text(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return datetime.fromisoformat(value) if isinstance(value, str) else value


class JsonType(TypeDecorator):
    """JSON documents: JSONB on PostgreSQL, text on SQLite."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())


class RawJsonType(JsonType):
    """Raw source payloads: JSON (validated text, no parse into JSONB) on PostgreSQL; kept, rarely queried."""

    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(JSON())


def to_utc_text(value: datetime | None) -> str | None:
    """Aware datetime -> ``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`` (lexically ordered)."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


# -- generated entity tables --------------------------------------------------------------------------------

_BINDING_COLUMNS = ("connector_id", "stream", "external_id", "row_hash", "raw", "synced_at")


def _sql_type(annotation: Any) -> Any:
    """Column type for a pydantic field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _sql_type(args[0])
    if origin is typing.Annotated:
        return _sql_type(typing.get_args(annotation)[0])
    if origin in (list, dict) or annotation in (list, dict):
        return JsonType()
    if origin is typing.Literal:
        return String(32)
    if annotation is AwareDatetime or annotation is datetime:
        return UtcDateTime()
    return {str: Text(), int: BigInteger(), float: Float(), bool: Boolean(), Decimal: DecimalType(),
            date: String(10)}.get(annotation, JsonType())


def _model_columns(model: type[BaseModel], skip: set[str]) -> list[Column]:
    cols = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        cols.append(Column(name, _sql_type(info.annotation), nullable=True))
    return cols


def _entity_table(target: str, model: type[BaseModel]) -> Table:
    name = "orders" if target == "order" else target
    nested = {n for n, f in model.model_fields.items()
              if typing.get_origin(f.annotation) is list and _is_model_list(f.annotation)}
    return Table(
        name, metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("connector_id", String(64), nullable=False),
        Column("stream", String(64), nullable=False),
        Column("external_id", String(255), nullable=False),
        Column("row_hash", String(32), nullable=False),
        Column("raw", RawJsonType(), nullable=True),
        Column("synced_at", UtcDateTime(), nullable=False),
        *_model_columns(model, skip={"external_id", *nested}),
        UniqueConstraint("connector_id", "stream", "external_id", name=f"uq_{name}_binding"),
    )


def _is_model_list(annotation: Any) -> bool:
    (arg,) = typing.get_args(annotation) or (None,)
    return isinstance(arg, type) and issubclass(arg, BaseModel)


ENTITY_TABLES: dict[str, Table] = {target: _entity_table(target, model) for target, model in ENTITIES.items()}

ORDER_LINE_TABLE = Table(
    "order_line", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    *_model_columns(OrderLine, skip=set()),
    Index("ix_order_line_order_id", "order_id"),
    Index("ix_order_line_sku", "sku"),
)

#: nested lists stored in a child table: parent target -> (model field, child table, parent id column)
CHILD_TABLES: dict[str, tuple[str, Table, str]] = {"order": ("lines", ORDER_LINE_TABLE, "order_id")}

Index("ix_variant_sku", ENTITY_TABLES["variant"].c.sku)
Index("ix_inventory_level_sku", ENTITY_TABLES["inventory_level"].c.sku)


def table_columns(table: Table, *, skip: tuple[str, ...] = ("id",)) -> list[str]:
    return [c.name for c in table.columns if c.name not in skip]


# -- low-volume tables (SQLModel) ---------------------------------------------------------------------------

class RunRow(SQLModel, table=True):
    """One run of one connector instance: when, how it ended, counts per stream."""

    __tablename__ = "run"
    id: int | None = Field(default=None, primary_key=True)
    connector_id: str = Field(max_length=64, index=True)
    started_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    status: str = Field(default="running", max_length=16)
    counts: dict = Field(default_factory=dict, sa_type=JsonType)
    error: str | None = Field(default=None, sa_type=Text)


class CursorRow(SQLModel, table=True):
    """Where each stream of each connector instance stopped."""

    __tablename__ = "cursor"
    connector_id: str = Field(max_length=64, primary_key=True)
    stream: str = Field(max_length=64, primary_key=True)
    state: dict | list | str | int | None = Field(default=None, sa_type=JsonType)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class QuarantineRow(SQLModel, table=True):
    """A record that failed reading, mapping or validation, with its raw payload and the reason."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("connector_id", "stream", "record_key", name="uq_quarantine_record"),)
    id: int | None = Field(default=None, primary_key=True)
    connector_id: str = Field(max_length=64, index=True)
    stream: str = Field(max_length=64)
    record_key: str = Field(max_length=255)
    external_id: str | None = Field(default=None, max_length=255)
    field: str | None = Field(default=None, max_length=255)
    reason: str = Field(sa_type=Text)
    raw: Any = Field(default=None, sa_type=JsonType)
    run_id: int | None = None
    attempts: int = 1
    first_seen: datetime = Field(sa_type=UtcDateTime)
    last_seen: datetime = Field(sa_type=UtcDateTime)


class PersonRow(SQLModel, table=True):
    """A golden customer (filled by identity resolution)."""

    __tablename__ = "person"
    id: int | None = Field(default=None, primary_key=True)
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict = Field(default_factory=dict, sa_type=JsonType)
    updated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # identity resolution (core/identity_store.py): the rest of the golden record and how many records it joins
    member_id: str | None = Field(default=None, sa_type=Text)
    birth_date: str | None = Field(default=None, max_length=10)
    language: str | None = Field(default=None, max_length=32)
    address_line1: str | None = Field(default=None, sa_type=Text)
    city: str | None = Field(default=None, sa_type=Text)
    postal_code: str | None = Field(default=None, max_length=32)
    country_code: str | None = Field(default=None, max_length=8)
    sms_consent: bool | None = None
    email_consent: bool | None = None
    records: int | None = None


class MessageRow(SQLModel, table=True):
    """An outbound message, written before any network call (the outbox)."""

    __tablename__ = "message"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=255, unique=True)
    person_id: int | None = None
    to: str = Field(max_length=32)
    body: str = Field(sa_type=Text)
    purpose: str = Field(default="transactional", max_length=16)
    language: str | None = None
    status: str = Field(default="pending", max_length=24)
    created_at: datetime = Field(sa_type=UtcDateTime)
    # the outbox (core/outbox.py): which rule and event made it, what the gateway said
    rule: str | None = Field(default=None, max_length=64)
    event_id: str | None = Field(default=None, max_length=255, index=True)
    connector_id: str | None = Field(default=None, max_length=64)
    provider_id: str | None = Field(default=None, max_length=64, index=True)
    error_code: int | None = None
    detail: str | None = Field(default=None, sa_type=Text)
    encoding: str | None = Field(default=None, max_length=8)
    segments: int | None = None
    attempts: int = 0
    not_before: datetime | None = Field(default=None, sa_type=UtcDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
