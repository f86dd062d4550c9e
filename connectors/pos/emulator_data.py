"""Seed data and in-memory store of the Square emulator (see ``emulator``).

Deterministic for a seed: a Hong Kong retailer with three shops and a warehouse, a catalog of items with
variations priced in HKD minor units, customers entered at the tills (some people entered twice, at two shops,
with their name written differently but the same phone or e-mail: "overlapping customers"), orders per shop
(completed, open with a pickup reservation, cancelled), and stock as a ledger: an opening physical count per
(variation, location), then SOLD and RESERVED_FOR_SALE adjustments from the orders and some WASTE. Timestamps are
UTC with milliseconds, anchored at a fixed date; changes made later (``touch``, writes) use the wall clock.
"""

from __future__ import annotations

import bisect
import calendar
import random
import threading
import time
from decimal import Decimal
from typing import Any

import orjson

from ..shopify.emulator_data import CATALOGUE, DISTRICTS, EMAIL_DOMAINS, ENGLISH, GIVEN, LOCATIONS, SERIES, SURNAMES
from .emulator_ledger import Ledger

__all__ = ["ANCHOR_MS", "SquareStore", "generate", "stamp"]

ANCHOR_MS = calendar.timegm((2025, 6, 30, 15, 59, 59)) * 1000  # the seed data's "now"
DAY_MS = 86_400_000
_ID = "ABCDEFGHJKLMNPQRSTVWXYZ0123456789"


def stamp(ms: int) -> str:
    """Square's timestamp form, e.g. ``2025-06-30T15:59:59.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _money(amount: int) -> dict:
    return {"amount": amount, "currency": "HKD"}


class SquareStore:
    """Everything the emulator serves. Records are kept as dicts; orders and customers also as bytes."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.merchant_id = "MLHKRETAIL01"
        self.locations: list[dict] = []
        self.items: dict[str, dict] = {}  # ITEM objects, variations nested
        self.variation_item: dict[str, str] = {}
        self.customers: dict[str, bytes] = {}  # in creation order
        self.customer_meta: dict[str, tuple[str, str]] = {}  # id -> (updated_at, created_at)
        self.customer_ids: list[str] = []
        self.orders: dict[str, bytes] = {}
        #: id -> (updated_at, location_id, state, created_at, closed_at or "")
        self.order_meta: dict[str, tuple[str, str, str, str, str]] = {}
        self.order_index: list[tuple[str, str]] = []  # sorted (updated_at, id)
        self.ledger = Ledger()
        self.clock_ms = ANCHOR_MS

    # -- clock and ids
    def now_ms(self) -> int:
        """A new modification time: the wall clock, but always strictly later than the previous one."""
        with self.lock:
            self.clock_ms = max(int(time.time() * 1000), self.clock_ms + 1)
            return self.clock_ms

    @property
    def location_ids(self) -> list[str]:
        return [loc["id"] for loc in self.locations]

    # -- writes of whole records
    def put_customer(self, record: dict) -> None:
        with self.lock:
            if record["id"] not in self.customers:
                self.customer_ids.append(record["id"])
            self.customers[record["id"]] = orjson.dumps(record)
            self.customer_meta[record["id"]] = (record["updated_at"], record["created_at"])

    def put_order(self, record: dict) -> None:
        with self.lock:
            old = self.order_meta.get(record["id"])
            if old is not None:
                del self.order_index[bisect.bisect_left(self.order_index, (old[0], record["id"]))]
            self.orders[record["id"]] = orjson.dumps(record)
            self.order_meta[record["id"]] = (record["updated_at"], record["location_id"], record["state"],
                                             record["created_at"], record.get("closed_at") or "")
            bisect.insort(self.order_index, (record["updated_at"], record["id"]))

    def touch(self, kind: str, key: str, **changes: Any) -> str:
        """Apply ``changes`` to an order, customer or catalog item, bump its ``updated_at`` and ``version``."""
        with self.lock:
            now = stamp(self.now_ms())
            if kind == "orders":
                record = orjson.loads(self.orders[key])
            elif kind == "customers":
                record = orjson.loads(self.customers[key])
            elif kind == "catalog":
                record = self.items[key]
            else:
                raise KeyError(f"unknown kind {kind!r}; one of orders, customers, catalog")
            record.update(changes)
            record["updated_at"], record["version"] = now, int(record.get("version") or 0) + 1
            if kind == "catalog" and "is_deleted" in changes:  # deleting an item deletes its variations
                for variation in record["item_data"]["variations"]:
                    variation.update(is_deleted=changes["is_deleted"], updated_at=now, version=record["version"])
            if kind == "orders":
                self.put_order(record)
            elif kind == "customers":
                self.put_customer(record)
            return now

    def sell(self, variation: str, location: str, quantity: int) -> None:
        """Record a till sale now: IN_STOCK -> SOLD, as completing an order does."""
        with self.lock:
            now = self.now_ms()
            self.ledger.adjustment(variation, location, "IN_STOCK", "SOLD", Decimal(quantity), stamp(now), now,
                                   f"SALE{now}")


# --------------------------------------------------------------------------------------------------- generation
class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng, self.seen = rng, set()

    def __call__(self, length: int) -> str:
        while True:
            value = "".join(self.rng.choice(_ID) for _ in range(length))
            if value not in self.seen:
                self.seen.add(value)
                return value


def generate(*, seed: int = 0, orders: int = 1000, customers: int | None = None, items: int | None = None,
             locations: int = 4) -> SquareStore:
    """A deterministic store: ``locations`` (at most 5; the third is the warehouse, which sells nothing)."""
    rng, store = random.Random(seed), SquareStore()
    ids = _Ids(rng)
    _locations(store, ids, min(max(locations, 1), len(LOCATIONS)))
    variations = _catalog(store, rng, ids, items if items is not None else max(8, min(60, orders // 25)))
    people = _customers(store, rng, ids, customers if customers is not None else max(10, orders // 3))
    _opening_stock(store, rng, variations, orders)
    _orders(store, rng, ids, orders, variations, people)
    store.ledger.derive_all()
    return store


def _locations(store: SquareStore, ids: _Ids, count: int) -> None:
    for i, (name, line1, line2, district, region, code, phone) in enumerate(LOCATIONS[:count]):
        created = ANCHOR_MS - (900 - i * 30) * DAY_MS
        store.locations.append({
            "id": ids(13), "name": name, "business_name": "Harbour Goods", "type": "PHYSICAL", "status": "ACTIVE",
            "address": {"address_line_1": line1, "address_line_2": line2, "locality": district,
                        "administrative_district_level_1": region, "country": "HK"},
            "timezone": "Asia/Hong_Kong", "capabilities": ["CREDIT_CARD_PROCESSING"], "country": "HK",
            "language_code": "zh-HK", "currency": "HKD", "phone_number": phone, "merchant_id": store.merchant_id,
            "created_at": stamp(created), "mcc": "5999",
            "description": "Warehouse" if "Warehouse" in name else f"{district} shop ({code})"})


def _catalog(store: SquareStore, rng: random.Random, ids: _Ids, count: int) -> list[dict]:
    variations = []
    for i in range(count):
        english, chinese, _type, _vendor, price, _option, values = CATALOGUE[i % len(CATALOGUE)]
        series = SERIES[(i // len(CATALOGUE)) % len(SERIES)] if i >= len(CATALOGUE) else ""
        item_id, updated = ids(24), ANCHOR_MS - rng.randrange(5, 400) * DAY_MS - rng.randrange(DAY_MS)
        name = f"{english} {chinese}" + (f" ({series})" if series else "")
        item = {"type": "ITEM", "id": item_id, "updated_at": stamp(updated), "version": updated,
                "is_deleted": False, "present_at_all_locations": True,
                "item_data": {"name": name, "description": f"{english}, {chinese}", "product_type": "REGULAR",
                              "visibility": "PRIVATE", "variations": []}}
        for ordinal, value in enumerate(values, 1):
            cents = (price + 10 * (ordinal - 1)) * 100 + (i // len(CATALOGUE)) * 1000
            variation = {
                "type": "ITEM_VARIATION", "id": ids(24), "updated_at": stamp(updated), "version": updated,
                "is_deleted": False, "present_at_all_locations": True,
                "item_variation_data": {"item_id": item_id, "name": value, "sku": f"HG-{i:03d}-{ordinal:02d}",
                                        "ordinal": ordinal, "pricing_type": "FIXED_PRICING",
                                        "price_money": _money(cents), "track_inventory": True,
                                        **({"upc": f"489{i:05d}{ordinal:04d}"} if rng.random() < 0.5 else {})}}
            item["item_data"]["variations"].append(variation)
            store.variation_item[variation["id"]] = item_id
            variations.append(variation)
        store.items[item_id] = item
    return variations


def _phone(rng: random.Random, digits: str) -> str:
    style = rng.random()
    if style < 0.4:
        return f"+852{digits}"
    return f"+852 {digits[:4]} {digits[4:]}" if style < 0.8 else f"+852-{digits[:4]}-{digits[4:]}"


def _customers(store: SquareStore, rng: random.Random, ids: _Ids, count: int) -> list[str]:
    people: list[dict] = []
    for i in range(count):
        created = ANCHOR_MS - rng.randrange(30, 800) * DAY_MS - rng.randrange(DAY_MS)
        updated = min(created + rng.randrange(120) * DAY_MS, ANCHOR_MS - DAY_MS) + rng.randrange(DAY_MS)
        if people and rng.random() < 0.12:  # the same person again, entered at another till
            twin = rng.choice(people)
            (sur_en, sur_zh), (giv_en, giv_zh), digits = twin["_names"]
            given, family = (giv_zh, sur_zh) if twin["given_name"] == giv_en else (giv_en, sur_en)
            email = twin.get("email_address", "").upper() if rng.random() < 0.5 else None
        else:
            (sur_en, sur_zh), (giv_en, giv_zh) = rng.choice(SURNAMES), rng.choice(GIVEN)
            digits = f"{rng.choice('569')}{rng.randrange(10_000_000):07d}"
            given, family = (giv_zh, sur_zh) if rng.random() < 0.3 else (giv_en, sur_en)
            if rng.random() < 0.2:
                given = f"{rng.choice(ENGLISH)} {giv_en}"
            email = f"{giv_en.replace(' ', '').lower()}.{sur_en.lower()}{i}@{rng.choice(EMAIL_DOMAINS)}" \
                if rng.random() < 0.8 else None
        record: dict[str, Any] = {
            "id": ids(26), "created_at": stamp(created), "updated_at": stamp(updated), "given_name": given,
            "family_name": family, "phone_number": _phone(rng, digits), "preferences":
            {"email_unsubscribed": rng.random() < 0.2}, "creation_source": "DIRECTORY", "version": 1,
            "segment_ids": [], "group_ids": []}
        if email:
            record["email_address"] = email
        if rng.random() < 0.4:
            record["reference_id"] = f"M-{i:06d}"
        if rng.random() < 0.3:
            record["birthday"] = f"{rng.randrange(1950, 2005)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        if rng.random() < 0.5:
            district = rng.choice(DISTRICTS)
            record["address"] = {"address_line_1": f"{rng.randrange(1, 300)} {rng.choice(district[5])}",
                                 "locality": district[0], "administrative_district_level_1": district[1],
                                 "country": "HK"}
        store.put_customer(record)
        people.append({**record, "_names": ((sur_en, sur_zh), (giv_en, giv_zh), digits)})
    return [p["id"] for p in people]


def _opening_stock(store: SquareStore, rng: random.Random, variations: list[dict], orders: int) -> None:
    opening = ANCHOR_MS - 420 * DAY_MS
    per_pair = 3 * orders // max(1, len(variations) * len(store.locations)) + 20
    for variation in variations:
        for location in store.location_ids:
            quantity = Decimal(rng.randrange(per_pair, per_pair * 2))
            store.ledger.physical_count((variation["id"], location, "IN_STOCK"), quantity, stamp(opening), opening,
                                        f"OPEN{variation['id'][:6]}{location}", derive=False)
            if rng.random() < 0.1:
                when = opening + rng.randrange(300) * DAY_MS
                store.ledger.adjustment(variation["id"], location, "IN_STOCK", "WASTE", Decimal(1), stamp(when),
                                        when, f"WASTE{when}", derive=False)


def _orders(store: SquareStore, rng: random.Random, ids: _Ids, count: int, variations: list[dict],
            people: list[str]) -> None:
    shops = [loc["id"] for loc in store.locations if "Warehouse" not in loc["name"]] or store.location_ids
    span = 360 * DAY_MS
    for n in range(count):
        created = ANCHOR_MS - span + n * span // max(count, 1) + rng.randrange(span // max(count, 1) or 1)
        location, draw = rng.choice(shops), rng.random()
        state = "COMPLETED" if draw < 0.85 else "OPEN" if draw < 0.93 else "CANCELED"
        closed = created + rng.randrange(1000, 600_000) if state != "OPEN" else None
        updated = (closed or created) + rng.randrange(0, 5000)
        lines, total = [], 0
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            variation = rng.choice(variations)
            data, item = variation["item_variation_data"], store.items[store.variation_item[variation["id"]]]
            quantity, price = rng.choice((1, 1, 1, 2, 3)), data["price_money"]["amount"]
            total += quantity * price
            lines.append({"uid": ids(22), "catalog_object_id": variation["id"], "catalog_version":
                          variation["version"], "name": item["item_data"]["name"], "variation_name": data["name"],
                          "quantity": str(quantity), "item_type": "ITEM", "base_price_money": _money(price),
                          "gross_sales_money": _money(quantity * price), "total_tax_money": _money(0),
                          "total_discount_money": _money(0), "total_money": _money(quantity * price)})
            if state == "COMPLETED":
                store.ledger.adjustment(variation["id"], location, "IN_STOCK", "SOLD", Decimal(quantity),
                                        stamp(closed), closed, f"SOLD{n}", derive=False)
            elif state == "OPEN":
                store.ledger.adjustment(variation["id"], location, "IN_STOCK", "RESERVED_FOR_SALE",
                                        Decimal(quantity), stamp(created), created, f"RSV{n}", derive=False)
        order: dict[str, Any] = {
            "id": ids(27), "location_id": location, "reference_id": f"T{n + 1:07d}", "state": state,
            "source": {"name": "Square Point of Sale"}, "line_items": lines, "created_at": stamp(created),
            "updated_at": stamp(updated), "version": 1 if state == "OPEN" else 4,
            "total_money": _money(total), "total_tax_money": _money(0), "total_discount_money": _money(0),
            "total_tip_money": _money(0), "total_service_charge_money": _money(0),
            "net_amounts": {"total_money": _money(total), "tax_money": _money(0), "discount_money": _money(0),
                            "tip_money": _money(0), "service_charge_money": _money(0)}}
        if closed is not None:
            order["closed_at"] = stamp(closed)
        if state == "OPEN":
            order["fulfillments"] = [{"uid": ids(22), "type": "PICKUP", "state": "RESERVED"}]
        if rng.random() < 0.6:
            order["customer_id"] = rng.choice(people)
        store.put_order(order)
