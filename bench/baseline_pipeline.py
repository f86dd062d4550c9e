"""The hand-written minimal pipeline bench_sync.py compares storesync against.

orjson per line, a hand-written function for the same fields as ``mappings/files.toml`` [orders], the same
pydantic ``Order`` validation, then upserts of orders and their lines: ``sqlite3.executemany`` with
``ON CONFLICT DO UPDATE`` on SQLite; COPY into temporary staging tables plus ``INSERT ... ON CONFLICT`` on
PostgreSQL. No raw payload kept, no quarantine, no cursor, no run log: the floor storesync is measured against.

Two flavours of the hand-written mapping function (``BASELINE_TRANSFORMS``):

* ``same`` (default): it calls the very transform functions the TOML mapping names (email syntax check,
  E.164 phone with a possible-number check, finite decimals, datetimes read in the configured zone), so the
  ratio measures storesync's machinery, not a difference in what the data goes through;
* ``minimal``: stdlib one-liners (lower-case email with an '@', phonenumbers parse, ``Decimal(str(v))``,
  ``datetime.fromisoformat``): weaker checks, reported as a second ratio for transparency.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import phonenumbers

from storesync.core.models import Order

ORDER_COLS = ["external_id", "number", "email", "phone", "customer_external_id", "currency", "subtotal", "total",
              "status", "financial_status", "fulfillment_status", "cancelled_at", "created_at", "updated_at",
              "location_external_id", "source_name", "attributes"]
LINE_COLS = ["order_external_id", "line_id", "sku", "variant_external_id", "title", "quantity", "unit_price"]


def _email(value: Any) -> str | None:
    if not value:
        return None
    text = str(value).strip().lower()
    if "@" not in text:
        raise ValueError(f"not an email: {value!r}")
    return text


def _phone(value: Any) -> str | None:
    if not value:
        return None
    number = phonenumbers.parse(str(value), "HK")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _dec(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value not in (None, "") else None


def _same_transforms() -> None:
    """Swap the stdlib one-liners for storesync's own transform callables (same params as files.toml)."""
    from storesync.core.transforms import TransformContext, builtin_transforms

    global _email, _phone, _dt, _dec
    registry, ctx = builtin_transforms(), TransformContext(timezone="UTC", default_region="HK")

    def built(name: str) -> Any:
        fn = registry.build(name, ctx, {}, file="baseline", key=name)
        return lambda v: fn(v) if v not in (None, "") else None

    _email, _phone, _dt, _dec = built("email"), built("phone_e164"), built("datetime"), built("decimal")


def map_order(r: dict[str, Any]) -> dict[str, Any]:
    customer = r.get("customer") or {}
    return {
        "external_id": str(r["id"]), "number": r.get("name"),
        "email": _email(r.get("email") or customer.get("email")),
        "phone": _phone(r.get("phone") or customer.get("phone")),
        "customer_external_id": str(customer["id"]) if customer.get("id") is not None else None,
        "currency": (r.get("currency") or "HKD").upper(), "subtotal": _dec(r.get("subtotal_price")),
        "total": _dec(r["total_price"]), "status": "cancelled" if r.get("cancelled_at") else "open",
        "financial_status": r.get("financial_status"), "fulfillment_status": r.get("fulfillment_status"),
        "cancelled_at": _dt(r.get("cancelled_at")), "created_at": _dt(r["created_at"]),
        "updated_at": _dt(r.get("updated_at")),
        "location_external_id": str(r["location_id"]) if r.get("location_id") is not None else None,
        "source_name": r.get("source_name"), "attributes": {"note": r["note"]} if r.get("note") else {},
        "lines": [{"external_id": str(li["id"]), "sku": li.get("sku"), "title": li.get("title"),
                   "variant_external_id": str(li["variant_id"]) if li.get("variant_id") is not None else None,
                   "quantity": int(li["quantity"]), "unit_price": _dec(li.get("price"))}
                  for li in r.get("line_items") or []],
    }


def rows_of(order: Order, sqlite: bool) -> tuple[list[Any], list[list[Any]]]:
    def ts(v: datetime | None) -> Any:
        return (v.astimezone(UTC).isoformat() if v else None) if sqlite else v

    def num(v: Decimal | None) -> Any:
        return (str(v) if v is not None else None) if sqlite else v

    row = [order.external_id, order.number, order.email, order.phone, order.customer_external_id, order.currency,
           num(order.subtotal), num(order.total), order.status, order.financial_status, order.fulfillment_status,
           ts(order.cancelled_at), ts(order.created_at), ts(order.updated_at), order.location_external_id,
           order.source_name, orjson.dumps(order.attributes).decode()]
    lines = [[order.external_id, li.external_id, li.sku, li.variant_external_id, li.title, li.quantity,
              num(li.unit_price)] for li in order.lines]
    return row, lines


def batches(path: Path, size: int, sqlite: bool):
    orders, lines = [], []
    with open(path, "rb") as f:
        for line in f:
            order = Order.model_validate(map_order(orjson.loads(line)))
            row, line_rows = rows_of(order, sqlite)
            orders.append(row)
            lines.extend(line_rows)
            if len(orders) >= size:
                yield orders, lines
                orders, lines = [], []
    if orders:
        yield orders, lines


def _upsert_sql(table: str, cols: list[str], key: list[str], marks: str) -> str:
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
    return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}")


def run_sqlite(path: Path, db: str, size: int) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"CREATE TABLE IF NOT EXISTS orders ({', '.join(ORDER_COLS)}, UNIQUE (external_id))")
    conn.execute(f"CREATE TABLE IF NOT EXISTS order_line ({', '.join(LINE_COLS)}, "
                 "UNIQUE (order_external_id, line_id))")
    order_sql = _upsert_sql("orders", ORDER_COLS, ["external_id"], ", ".join("?" * len(ORDER_COLS)))
    line_sql = _upsert_sql("order_line", LINE_COLS, ["order_external_id", "line_id"], ", ".join("?" * len(LINE_COLS)))
    for orders, lines in batches(path, size, sqlite=True):
        conn.execute("BEGIN")
        conn.executemany(order_sql, orders)
        conn.executemany(line_sql, lines)
        conn.execute("COMMIT")
    conn.close()


def run_postgres(path: Path, url: str, size: int) -> None:
    import psycopg

    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (external_id text UNIQUE, number text, email text, phone text, "
                     "customer_external_id text, currency text, subtotal numeric, total numeric, status text, "
                     "financial_status text, fulfillment_status text, cancelled_at timestamptz, "
                     "created_at timestamptz, updated_at timestamptz, location_external_id text, source_name text, "
                     "attributes jsonb)")
        conn.execute("CREATE TABLE IF NOT EXISTS order_line (order_external_id text, line_id text, sku text, "
                     "variant_external_id text, title text, quantity bigint, unit_price numeric, "
                     "UNIQUE (order_external_id, line_id))")
        conn.commit()
        for orders, lines in batches(path, size, sqlite=False):
            with conn.cursor() as cur:
                for table, cols, key, rows in (("orders", ORDER_COLS, ["external_id"], orders),
                                               ("order_line", LINE_COLS, ["order_external_id", "line_id"], lines)):
                    cur.execute(f"CREATE TEMP TABLE stage_{table} (LIKE {table}) ON COMMIT DROP")
                    with cur.copy(f"COPY stage_{table} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
                    cur.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM stage_{table} "
                                f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}")
            conn.commit()


def run(path: Path, url: str, size: int, transforms: str = "same") -> None:
    if transforms == "same":
        _same_transforms()
    if url.startswith("sqlite:///"):
        run_sqlite(path, url[len("sqlite:///"):], size)
    else:
        run_postgres(path, url, size)
