"""A local Loyverse API v1.0 for tests: stores, items with variants, inventory levels, receipts, customers.

Run ``python -m storesync_loyverse.emulator`` (prints its URL, token and a plugins.toml table), or in tests::

    with LoyverseEmulator(receipts=40, seed=1, token="tok") as api:
        httpx.get(f"{api.base_url}/v1.0/items", headers={"Authorization": "Bearer tok"})

What it reproduces (facts from storesync's PROTOCOLS.md section 2 and Loyverse's API reference):

- ``/v1.0`` paths, ``Authorization: Bearer <token>`` (401 ``UNAUTHORIZED`` otherwise);
- ``GET /stores`` (all stores, no paging); ``GET /items``, ``/variants``, ``/customers``, ``/receipts`` and
  ``/inventory`` with ``limit`` (1-250, default 50), ``cursor``, ``updated_at_min``; ``show_deleted`` on items,
  variants and customers; ``store_ids``/``variant_ids`` on ``/inventory``, ``store_id`` on ``/receipts``; each
  page as ``{"<resource>": [...], "cursor": "..."}`` with ``cursor`` present while more pages follow;
- ``POST /inventory {"inventory_levels": [{variant_id, store_id, stock_after}]}`` sets ``in_stock``;
- errors as ``{"errors": [{"code", "details"}]}``: ``UNAUTHORIZED``, ``NOT_FOUND``, ``INVALID_CURSOR``,
  ``INVALID_VALUE``, ``RATE_LIMITED`` (429, only when ``rate_limit`` is set: Loyverse publishes no limit; about
  60 requests a minute is reported, so it is a setting here, not a constant).

Deliberate simplifications are listed in ``DEVIATIONS``. Faults (429, 5xx) for the conformance suite are injected in
front of it by ``storesync.core.testing.inject_faults``.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from storesync.core.emulation import JsonRequestHandler, LoopbackEmulator

__all__ = ["DEVIATIONS", "LoyverseEmulator", "main"]

DEVIATIONS = """\
- Lists are ordered by (updated_at, id) ascending; a cursor carries the position, the query's filters are re-read
  from each request (send them again with the cursor).
- Receipts never change stock; only POST /inventory and the `sell` hook do. No taxes, discounts, modifiers,
  payments detail beyond one cash payment, employees, POS devices, categories or suppliers.
- Webhooks (and their X-Loyverse-Signature) are not served.
- Every variant is stocked in every store.
"""

API = "/v1.0"
MAX_LIMIT = 250
STORES = [("Causeway Bay", "Shop 12, 500 Hennessy Road"), ("Mong Kok", "G/F, 88 Sai Yeung Choi Street South"),
          ("Tsim Sha Tsui", "Shop 3, 20 Nathan Road")]
GIVEN = ["Mei Ling", "Ka Wai", "Siu Ming", "Wing Yan", "Chi Keung", "Hoi Yan", "Tsz Ho", "Ying", "Chun Kit"]
FAMILY = ["Chan", "Wong", "Lee", "Cheung", "Lau", "Ho", "Ng", "Leung", "Tam"]
GOODS = [("Jasmine tea 100g", 68), ("Egg roll tin", 128), ("Lotus mooncake", 88), ("Porcelain cup", 45),
         ("Almond biscuits", 58), ("XO sauce", 158), ("Chilli oil", 42), ("Dried mandarin peel", 220)]


class ApiError(Exception):
    """An answer other than 200: the status and Loyverse's error body."""

    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.status, self.body = status, {"errors": [{"code": code, "details": details}]}


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RateLimit:
    """At most ``per_minute`` requests in any 60 seconds; beyond that 429 ``RATE_LIMITED``."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute, self.times, self.refused = per_minute, [], 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.times = [t for t in self.times if now - t < 60.0]
            if len(self.times) >= self.per_minute:
                self.refused += 1
                return False
            self.times.append(now)
            return True


class LoyverseEmulator(LoopbackEmulator):
    """Seeded data plus an HTTP server on 127.0.0.1; use as a context manager or ``start()``/``stop()``."""

    thread_name = "loyverse-emulator"
    handler_class = JsonRequestHandler  # answers each request with handle(method, path, headers, body)

    def __init__(self, *, items: int = 10, customers: int = 20, receipts: int = 30, seed: int = 0,
                 token: str = "loyverse_emulator_token", rate_limit: int | None = None, port: int = 0) -> None:
        self.token = token
        self.rate_limit = RateLimit(rate_limit) if rate_limit else None
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.stock_writes = 0  # levels POST /inventory changed
        self._clock = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
        self._rng = rng = random.Random(seed)
        self.stores: dict[str, dict] = {}
        self.items: dict[str, dict] = {}
        self.customers: dict[str, dict] = {}
        self.receipts: dict[str, dict] = {}
        self.levels: dict[tuple[str, str], dict] = {}  # (variant_id, store_id) -> level
        for n, (name, address) in enumerate(STORES, 1):
            sid = self._uuid()
            self.stores[sid] = self._stamped({"id": sid, "name": f"{name} 店", "address": address, "city": "Hong Kong",
                                              "region": None, "postal_code": None, "country_code": "HK",
                                              "phone_number": f"+852 2{n}00 {n}000", "description": None})
        for n in range(1, items + 1):
            self._seed_item(n)
        for n in range(1, customers + 1):
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            cid = self._uuid()
            self.customers[cid] = self._stamped({
                "id": cid, "name": f"{given} {family}",
                "email": f"{given.split()[0].lower()}.{family.lower()}{n}@example.com.hk" if n % 4 else None,
                "phone_number": f"+852 {rng.choice('5689')}{rng.randrange(10**6, 10**7):07d}",
                "address": None, "city": "Hong Kong", "region": None, "postal_code": None, "country_code": "HK",
                "customer_code": f"M{n:05d}", "note": None, "total_visits": 0, "total_spent": 0.0,
                "total_points": 0.0, "first_visit": None, "last_visit": None})
        for n in range(1, receipts + 1):
            self._seed_receipt(n)
        self._init_server(port)

    # -- seed data
    def _uuid(self) -> str:
        return "%08x-%04x-4%03x-a%03x-%012x" % (self._rng.getrandbits(32), self._rng.getrandbits(16),
                                               self._rng.getrandbits(12), self._rng.getrandbits(12),
                                               self._rng.getrandbits(48))

    def _tick(self) -> str:
        self._clock += timedelta(seconds=self._rng.randint(3, 90))
        return stamp(self._clock)

    def _stamped(self, record: dict, *, new: bool = True) -> dict:
        now = self._tick()
        if new:
            record.setdefault("created_at", now)
            record.setdefault("deleted_at", None)
        record["updated_at"] = now
        return record

    def _seed_item(self, n: int) -> None:
        name, price = GOODS[(n - 1) % len(GOODS)]
        iid = self._uuid()
        sizes = ["Regular", "Large", "Gift box"][: self._rng.randint(1, 3)]
        variants = []
        for k, size in enumerate(sizes, 1):
            vid = self._uuid()
            variants.append(self._stamped({
                "variant_id": vid, "item_id": iid, "sku": f"LV-{n:04d}-{k}", "reference_variant_id": None,
                "option1_value": size, "option2_value": None, "option3_value": None,
                "barcode": f"489{n:05d}{k:04d}", "cost": round(price * 0.4, 2), "purchase_cost": None,
                "default_pricing_type": "FIXED", "default_price": float(price + 20 * (k - 1)),
                "stores": [{"store_id": sid, "pricing_type": "FIXED", "price": float(price + 20 * (k - 1)),
                            "available_for_sale": True, "optional_reference": None} for sid in self.stores]}))
            for sid in self.stores:
                self.levels[(vid, sid)] = self._stamped({"variant_id": vid, "store_id": sid,
                                                         "in_stock": float(self._rng.randint(0, 40))}, new=False)
        self.items[iid] = self._stamped({
            "id": iid, "handle": f"item-{n}", "reference_id": None, "item_name": f"{name} #{n}",
            "description": None, "track_stock": True, "sold_by_weight": False, "is_composite": False,
            "use_production": False, "category_id": None, "primary_supplier_id": None, "tax_ids": [],
            "modifiers_ids": [], "form": "SQUARE", "color": "GREY", "image_url": None,
            "option1_name": "Size" if len(sizes) > 1 else None, "option2_name": None, "option3_name": None,
            "variants": variants})

    def _seed_receipt(self, n: int) -> None:
        rng = self._rng
        store = rng.choice(list(self.stores))
        lines = []
        for k in range(rng.randint(1, 3)):
            item = rng.choice(list(self.items.values()))
            variant = rng.choice(item["variants"])
            qty = float(rng.randint(1, 3))
            lines.append({"id": self._uuid(), "item_id": item["id"], "variant_id": variant["variant_id"],
                          "item_name": item["item_name"], "variant_name": variant["option1_value"],
                          "sku": variant["sku"], "quantity": qty, "price": variant["default_price"],
                          "gross_total_money": variant["default_price"] * qty,
                          "total_money": variant["default_price"] * qty, "cost": variant["cost"],
                          "total_discount": 0.0, "line_note": None})
        total = round(sum(line["total_money"] for line in lines), 2)
        number = f"{list(self.stores).index(store) + 1}-{1000 + n}"
        when = self._tick()
        customer = rng.choice(list(self.customers)) if self.customers and n % 3 else None
        self.receipts[number] = self._stamped({
            "receipt_number": number, "note": None, "receipt_type": "SALE", "refund_for": None, "order": None,
            "source": "point of sale", "receipt_date": when, "cancelled_at": None, "total_money": total,
            "total_tax": 0.0, "points_earned": 0.0, "points_deducted": 0.0, "points_balance": 0.0,
            "customer_id": customer, "total_discount": 0.0, "employee_id": None, "store_id": store,
            "pos_device_id": None, "dining_option": None, "total_discounts": [], "total_taxes": [], "tip": 0.0,
            "surcharge": 0.0, "line_items": lines,
            "payments": [{"payment_type_id": None, "name": "Cash", "type": "CASH", "money_amount": total,
                          "paid_at": when, "payment_details": None}]})

    # -- test hooks: change data as the real system would (a fresh updated_at), never faulted
    def touch(self, kind: str, key: str, **changes: Any) -> dict:
        """Change a customer, item or receipt now (``kind``: customers, items, receipts)."""
        with self.lock:
            record = getattr(self, kind)[key]
            record.update(changes)
            return self._stamped(record, new=False)

    def sell(self, variant_id: str, store_id: str, quantity: int = 1) -> None:
        """A till sale: ``in_stock`` goes down now."""
        with self.lock:
            level = self.levels[(variant_id, store_id)]
            level["in_stock"] -= quantity
            self._stamped(level, new=False)

    def in_stock(self, variant_id: str, store_id: str) -> float:
        return self.levels[(variant_id, store_id)]["in_stock"]

    def variants(self) -> list[dict]:
        return [v for item in self.items.values() for v in item["variants"]]

    # -- the API
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, dict]:
        """(status, body) for one request."""
        split = urlsplit(raw_path)
        path = split.path.removeprefix(API)
        self.requests[f"{method} {path}"] += 1
        try:
            if headers.get("Authorization") != f"Bearer {self.token}":
                raise ApiError(401, "UNAUTHORIZED", "Authorization token is missing or invalid")
            if self.rate_limit is not None and not self.rate_limit.take():
                raise ApiError(429, "RATE_LIMITED", "Too many requests")
            if not split.path.startswith(API + "/"):
                raise ApiError(404, "NOT_FOUND", f"{split.path} not found")
            params = dict(parse_qsl(split.query))
            with self.lock:
                return 200, self._route(method, path, params, body)
        except ApiError as exc:
            return exc.status, exc.body

    def _route(self, method: str, path: str, params: dict[str, str], body: bytes) -> dict:
        deleted = params.get("show_deleted") == "true"
        if method == "POST" and path == "/inventory":
            return self._set_levels(body)
        if method != "GET":
            raise ApiError(404, "NOT_FOUND", f"{method} {path} not found")
        if path == "/stores":
            return {"stores": list(self.stores.values())}
        if path == "/items":
            rows = [i for i in self.items.values() if deleted or not i["deleted_at"]]
            return self._page("items", rows, params, key="id")
        if path == "/variants":
            rows = [v for v in self.variants() if deleted or not v["deleted_at"]]
            return self._page("variants", rows, params, key="variant_id")
        if path == "/customers":
            rows = [c for c in self.customers.values() if deleted or not c["deleted_at"]]
            return self._page("customers", rows, params, key="id")
        if path == "/receipts":
            rows = [r for r in self.receipts.values() if "store_id" not in params or r["store_id"] == params["store_id"]]
            return self._page("receipts", rows, params, key="receipt_number")
        if path == "/inventory":
            stores, variants = _ids(params.get("store_ids")), _ids(params.get("variant_ids"))
            rows = [lv for (v, s), lv in self.levels.items() if (not stores or s in stores)
                    and (not variants or v in variants)]
            return self._page("inventory_levels", rows, params, key=lambda r: f"{r['variant_id']}{r['store_id']}")
        raise ApiError(404, "NOT_FOUND", f"GET {path} not found")

    def _page(self, name: str, rows: list[dict], params: dict[str, str], *, key: Any) -> dict:
        pick = key if callable(key) else (lambda r: r[key])
        try:
            limit = int(params.get("limit", 50))
        except ValueError:
            raise ApiError(400, "INVALID_VALUE", "limit: must be an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, "INVALID_VALUE", f"limit: must be between 1 and {MAX_LIMIT}")
        after = None
        if params.get("cursor"):
            try:
                after = json.loads(base64.urlsafe_b64decode(params["cursor"].encode()))
                assert isinstance(after, list) and len(after) == 2
            except (ValueError, AssertionError):
                raise ApiError(400, "INVALID_CURSOR", "cursor is invalid") from None
        since = params.get("updated_at_min")
        ordered = sorted((((r["updated_at"], pick(r)), r) for r in rows if since is None or r["updated_at"] >= since),
                         key=lambda pair: pair[0])
        if after is not None:
            ordered = [(k, r) for k, r in ordered if list(k) > after]
        page = ordered[:limit]
        out: dict[str, Any] = {name: [r for _k, r in page]}
        if len(ordered) > limit:
            out["cursor"] = base64.urlsafe_b64encode(json.dumps(list(page[-1][0])).encode()).decode()
        return out

    def _set_levels(self, body: bytes) -> dict:
        try:
            wanted = json.loads(body or b"{}")["inventory_levels"]
            assert isinstance(wanted, list) and wanted
        except (ValueError, KeyError, TypeError, AssertionError):
            raise ApiError(400, "INVALID_VALUE", "inventory_levels: must be a non-empty list") from None
        for n, row in enumerate(wanted):
            key = (row.get("variant_id"), row.get("store_id")) if isinstance(row, dict) else (None, None)
            if key not in self.levels:
                raise ApiError(404, "NOT_FOUND", f"inventory_levels[{n}]: no variant {key[0]} in store {key[1]}")
            if not isinstance(row.get("stock_after"), int | float):
                raise ApiError(400, "INVALID_VALUE", f"inventory_levels[{n}].stock_after: must be a number")
        changed = []
        for row in wanted:
            level = self.levels[(row["variant_id"], row["store_id"])]
            if level["in_stock"] != float(row["stock_after"]):
                level["in_stock"] = float(row["stock_after"])
                self._stamped(level, new=False)
                self.stock_writes += 1
            changed.append(level)
        return {"inventory_levels": changed}


def _ids(value: str | None) -> set[str]:
    return {v for v in (value or "").split(",") if v}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m storesync_loyverse.emulator",
                                     description="Serve a fake Loyverse API v1.0 on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--receipts", type=int, default=30)
    parser.add_argument("--token", default="loyverse_emulator_token")
    parser.add_argument("--rate-limit", type=int, default=0, metavar="PER_MINUTE",
                        help="answer 429 RATE_LIMITED beyond this many requests a minute (0: no limit)")
    args = parser.parse_args(argv)
    api = LoyverseEmulator(items=args.items, customers=args.customers, receipts=args.receipts, token=args.token,
                           rate_limit=args.rate_limit or None, port=args.port)
    api.serve_until_interrupted(lambda e: (
        f"Loyverse emulator: {e.base_url}{API}  token: {e.token}  (Ctrl-C to stop)\n\n"
        f"export LOYVERSE_TOKEN={e.token}\n\n# plugins.toml\n[connectors.loyverse]\ntype = \"loyverse\"\n"
        f"base_url = \"{e.base_url}{API}\"\naccess_token = \"${{LOYVERSE_TOKEN}}\"\n"))


if __name__ == "__main__":
    main()
