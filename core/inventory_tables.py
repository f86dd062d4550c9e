"""Tables of the whole-catalogue reconciliation (``core/inventory_bulk.py``), and the indexes it reads through.

``inventory_position`` holds the reconciled numbers of every (SKU, canonical location), ``inventory_target`` what
each push channel should show at each of its own location ids, ``inventory_exception`` which SKUs have an
oversell, a disagreement or an unmapped report (the reference ``core/inventory.py`` explains those few), and
``inventory_state`` the high-water mark (when the last refresh started) and settings hash that decide whether
the next refresh may be incremental.

The extra indexes on the entity tables serve two things: finding the rows of a few SKUs without a scan (an
incremental refresh resolves SKUs through variants and Shopify's inventory item ids, not only through ``sku``),
and finding what changed since a mark (``synced_at``). ``ensure_indexes`` adds them to a store created before
they existed, since ``create_all`` only creates the indexes of tables it creates.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql.expression import ColumnElement

from .tables import CHILD_TABLES, ENTITY_TABLES, UtcDateTime, metadata

__all__ = ["EXCEPTION", "POSITION", "STATE", "TARGET", "ensure_indexes", "item_id_of_level"]

POSITION = Table(
    "inventory_position", metadata,
    Column("sku", Text(), primary_key=True),
    Column("location", Text(), primary_key=True),  # canonical location
    Column("authority", String(64)),  # connector whose report is the on hand; NULL: none, only demand
    Column("on_hand", BigInteger, nullable=False),
    Column("reported_committed", BigInteger, nullable=False),
    Column("uncounted", BigInteger, nullable=False),  # open demand placed at the location after as_of
    Column("safety_stock", BigInteger, nullable=False),
    Column("available", BigInteger, nullable=False),  # max(0, on hand - committed - safety stock)
    Column("shortfall", BigInteger, nullable=False),  # max(0, committed - on hand)
    Column("as_of", UtcDateTime()),
    Column("computed_at", UtcDateTime(), nullable=False),
    sqlite_with_rowid=False,  # stored in key order: one b-tree, read SKU by SKU without a second look-up
)

TARGET = Table(
    "inventory_target", metadata,
    # the key is (channel, location_id, sku); SKU first: written SKU by SKU, and replaced SKU by SKU
    Column("sku", Text(), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("location_id", Text(), primary_key=True),  # the channel's own location id
    Column("item_id", Text(), nullable=False),  # what the channel's API names the SKU by
    Column("quantity", BigInteger, nullable=False),
    Column("computed_at", UtcDateTime(), nullable=False),
    sqlite_with_rowid=False,
)

EXCEPTION = Table(
    "inventory_exception", metadata,
    Column("kind", String(16), primary_key=True),  # oversell | disagree | unmapped
    Column("sku", Text(), primary_key=True),
    Index("ix_inventory_exception_sku", "sku"),
    sqlite_with_rowid=False,
)

STATE = Table(
    "inventory_state", metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("high_water", UtcDateTime()),  # when the last refresh started reading: later synced_at is news
    Column("settings_hash", String(64), nullable=False),
    Column("full_at", UtcDateTime()),  # when the last full refresh ran
    Column("refreshed_at", UtcDateTime(), nullable=False),
    Column("note", Text),
)

_LEVEL = ENTITY_TABLES["inventory_level"]
_VARIANT = ENTITY_TABLES["variant"]
_ORDER = ENTITY_TABLES["order"]
_PRODUCT = ENTITY_TABLES["product"]
_LINE = CHILD_TABLES["order"][1]


class _ItemId(ColumnElement):
    """``attributes.inventory_item_id`` of a level report as text, with the path a literal (not a bound
    parameter): an expression index is only used by a query whose expression is the same text."""

    inherit_cache = True
    type = Text()

    def __init__(self, column: Any) -> None:
        self.column = column


@compiles(_ItemId)
def _item_id_sqlite(element: _ItemId, compiler: Any, **kw: Any) -> str:
    return f"json_extract({compiler.process(element.column, **kw)}, '$.inventory_item_id')"


@compiles(_ItemId, "postgresql")
def _item_id_postgres(element: _ItemId, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.column, **kw)} ->> 'inventory_item_id')"


def item_id_of_level(level: Table = _LEVEL) -> Any:
    """The inventory item id a level report carries in its attributes (Shopify's levels name no SKU)."""
    return _ItemId(level.c.attributes)


#: the indexes on entity tables the bulk reconciliation reads through (additive: the tables are core's)
ENTITY_INDEXES = [
    Index("ix_inventory_level_variant", _LEVEL.c.connector_id, _LEVEL.c.variant_external_id),
    Index("ix_inventory_level_item", _LEVEL.c.connector_id, item_id_of_level()),
    Index("ix_inventory_level_synced", _LEVEL.c.synced_at),
    Index("ix_variant_key", _VARIANT.c.connector_id, _VARIANT.c.external_id),
    Index("ix_variant_item", _VARIANT.c.connector_id, _VARIANT.c.inventory_item_id),
    Index("ix_variant_synced", _VARIANT.c.synced_at),
    Index("ix_product_synced", _PRODUCT.c.synced_at),
    Index("ix_orders_status", _ORDER.c.status),
    Index("ix_orders_synced", _ORDER.c.synced_at),
    Index("ix_order_line_variant", _LINE.c.variant_external_id),
]


def ensure_indexes(conn: Any) -> None:
    """Create the indexes above where missing (a store made before this module existed)."""
    for table in (POSITION, TARGET, EXCEPTION, STATE):
        table.create(conn, checkfirst=True)
    for index in ENTITY_INDEXES:  # IF NOT EXISTS: reflection cannot see the expression index to check first
        conn.execute(CreateIndex(index, if_not_exists=True))

