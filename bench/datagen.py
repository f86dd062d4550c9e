"""Deterministic Shopify REST 2024-07 order payloads for benchmarks and tests.

``python bench/datagen.py OUT.jsonl N`` writes N orders, one JSON object per line.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

__all__ = ["shopify_order", "write_jsonl"]

_HKT = timezone(timedelta(hours=8))
_EPOCH = datetime(2024, 1, 1, 9, 0, tzinfo=_HKT)
_FIRST = ["Ka Yan", "Wing", "Chi Ming", "Mei Ling", "Siu Fung", "Hoi Lam", "Tsz Ho", "Wai Man"]
_LAST = ["Chan", "Wong", "Lee", "Cheung", "Lau", "Ng", "Ho", "Leung"]
_PRODUCTS = [("Jasmine Tea 100g", "TEA-JAS-100", "88.00"), ("Oolong Tea 150g", "TEA-OOL-150", "128.50"),
             ("Egg Roll Tin", "SNK-EGG-TIN", "168.00"), ("Almond Cookies", "SNK-ALM-200", "59.90"),
             ("Porcelain Cup", "HOM-CUP-WHT", "45.00"), ("Bamboo Steamer", "HOM-STM-08", "219.00")]
_FINANCIAL = ["paid", "paid", "paid", "pending", "refunded", "partially_refunded", "authorized"]
_FULFILLMENT = [None, "fulfilled", "fulfilled", "partial"]
_SOURCES = ["web", "web", "pos", "shopify_draft_order", "iphone"]


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _line(i: int, n: int) -> dict[str, Any]:
    title, sku, price = _PRODUCTS[(i * 7 + n * 3) % len(_PRODUCTS)]
    product = 7_001_000_000 + (i + n) % len(_PRODUCTS)
    return {"id": 13_000_000_000 + i * 10 + n, "variant_id": 42_000_000_000 + (i + n) % 97,
            "product_id": product, "sku": sku, "title": title, "quantity": 1 + (i + n) % 4,
            "price": price, "vendor": "Lam Kee", "requires_shipping": True, "taxable": False,
            "fulfillment_status": None, "grams": 250, "name": title}


def _total(lines: list[dict[str, Any]]) -> str:
    cents = sum(round(float(x["price"]) * 100) * x["quantity"] for x in lines)
    return f"{cents // 100}.{cents % 100:02d}"


def shopify_order(i: int, *, lines: int = 3) -> dict[str, Any]:
    """Order number ``i`` (1001 + i), the same every time for the same arguments."""
    first, last = _FIRST[i % len(_FIRST)], _LAST[(i // 3) % len(_LAST)]
    created = _EPOCH + timedelta(minutes=17 * i)
    items = [_line(i, n) for n in range(lines)]
    email = f"{first.replace(' ', '.').lower()}.{last.lower()}{i}@example.com.hk"
    phone = f"+852{90000000 + (i * 7919) % 9999999:08d}"
    cancelled = i % 23 == 0
    return {
        "id": 5_500_000_000_000 + i, "name": f"#{1001 + i}", "order_number": 1001 + i,
        "email": email if i % 11 else "", "phone": phone if i % 2 else None, "currency": "HKD",
        "total_price": _total(items), "subtotal_price": _total(items), "total_tax": "0.00",
        "financial_status": _FINANCIAL[i % len(_FINANCIAL)], "fulfillment_status": _FULFILLMENT[i % 4],
        "cancelled_at": _stamp(created + timedelta(hours=2)) if cancelled else None,
        "cancel_reason": "customer" if cancelled else None,
        "created_at": _stamp(created), "updated_at": _stamp(created + timedelta(minutes=5 + i % 50)),
        "customer": {"id": 6_100_000_000 + i % 5000, "email": email, "first_name": first, "last_name": last,
                     "phone": phone, "tags": "vip" if i % 9 == 0 else ""},
        "line_items": items, "location_id": 61_000_000 + i % 4 if i % 3 == 0 else None,
        "source_name": _SOURCES[i % len(_SOURCES)], "note": f"gift wrap please #{i}" if i % 5 == 0 else None,
        "tags": "wholesale, repeat" if i % 4 == 0 else "", "test": False, "taxes_included": True,
    }


def write_jsonl(path: str | Path, n: int, start: int = 0) -> None:
    """Write orders ``start`` .. ``start + n - 1`` to ``path``, one per line."""
    with open(path, "wb") as out:
        for i in range(start, start + n):
            out.write(orjson.dumps(shopify_order(i)) + b"\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python bench/datagen.py OUT.jsonl N")
    write_jsonl(sys.argv[1], int(sys.argv[2]))
