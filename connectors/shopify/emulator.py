"""A local Shopify Admin API for tests and benchmarks: REST 2024-07 reads, inventory writes, GraphQL inventory CAS.

Run ``python -m storesync.connectors.shopify.emulator --orders 10000`` (prints the base URL and token), or in tests::

    with ShopifyEmulator(orders=500, seed=1, token="shpat_test", rate_limit=None) as shop:
        httpx.get(f"{shop.base_url}/admin/api/2024-07/orders.json", headers={"X-Shopify-Access-Token": shop.token})

What it reproduces: token auth (401), the REST leaky bucket (call-limit header, 429 + ``Retry-After: 2.0``), cursor
paging through an opaque ``page_info`` in ``Link`` headers (filters only on the first request, 400 otherwise), the list
filters ``ids, since_id, created_at_min/max, updated_at_min/max, limit, fields`` (orders also ``status``,
``financial_status``, ``fulfillment_status``), counts, single reads, ``inventory_levels/{set,adjust,connect}.json``,
and GraphQL ``inventorySetQuantities``/``inventoryAdjustQuantities`` with compare-and-set, 2026-04
``changeFromQuantity`` and ``@idempotent`` replay. Seeded faults (5xx, truncated bodies, slow replies) and the rate
limit are attributes that tests may change while the server runs; the Python hooks (``touch``, ``set_inventory``,
and the scenario hooks ``add_product``, ``place_order``, ``available`` of ``emulator_hooks``) never see faults.
Deliberate simplifications are listed in ``DEVIATIONS``.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import hashlib
import hmac
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import orjson

from ...core.emulation import Faults, LoopbackEmulator, LoopbackRequestHandler
from ...core.webhook_sender import WebhookSender, WebhookSending
from . import emulator_hooks
from .emulator_data import Store, generate, parse_ts, ts

__all__ = ["DEVIATIONS", "Faults", "GraphQLCost", "LeakyBucket", "RequestLog", "ShopifyEmulator", "Write", "main"]

DEVIATIONS = """\
- Lists are ordered by id ascending (Shopify's REST default order varies by resource).
- No 60-day window on orders (read_all_orders assumed) and no 25,000-object cap on counts/paging.
- Locations are never paged; customers/search.json understands only field:value terms (email, phone, first_name,
  last_name, tag) and is not paged.
- An order embeds its customer as generated; later customer changes do not rewrite stored orders.
- Only `available` is tracked: GraphQL name "on_hand" sets the same number, changes report available and on_hand.
- GraphQL is matched by mutation name, not parsed; the full payload comes back whatever the selection set.
- Every POST/PUT/DELETE that passes auth and the rate limit is logged in `writes`, even when a fault follows.
"""

API_PATH = re.compile(r"^/admin/api/(\d{4}-\d{2}|unstable)/(.+)\.json$")
INVALID_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
THROTTLED = {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}
NOT_FOUND = {"errors": "Not Found"}
LIST_PARAMS = {"ids", "since_id", "created_at_min", "created_at_max", "updated_at_min", "updated_at_max"}
ORDER_PARAMS = LIST_PARAMS | {"status", "financial_status", "fulfillment_status"}
LEVEL_PARAMS = {"inventory_item_ids", "location_ids", "updated_at_min"}
#: topics the emulator delivers (the scenario hooks, stock writes through REST and GraphQL)
WEBHOOK_TOPICS = ("orders/create", "orders/updated", "inventory_levels/update", "customers/create",
                  "customers/update", "products/create", "products/update")
SINGULAR = {"customers": "customer", "products": "product", "orders": "order", "locations": "location",
            "variants": "variant"}


class Write(NamedTuple):
    method: str
    path: str
    body: Any


class LeakyBucket:
    """Shopify's REST limit: each call adds one; the bucket drains ``leak_rate`` calls per second."""

    def __init__(self, size: int = 40, leak_rate: float = 2.0) -> None:
        self.size, self.leak_rate = size, leak_rate
        self.level, self._at, self._lock = 0.0, time.monotonic(), threading.Lock()
        self.refused = 0  # calls answered 429

    def _drain(self) -> None:
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self._at) * self.leak_rate)
        self._at = now

    def take(self) -> tuple[bool, int]:
        """Try to add one call: (allowed, calls in the bucket afterwards)."""
        with self._lock:
            self._drain()
            if self.level + 1 > self.size:
                self.refused += 1
                return False, self.size
            self.level += 1
            return True, max(1, int(self.level + 0.999))

    @property
    def used(self) -> int:
        with self._lock:
            self._drain()
            return int(self.level + 0.999)


class RequestLog:
    """Requests served: ``total`` and ``by_path`` (the path after ``/admin/api/{version}/``, e.g. ``orders.json``)."""

    def __init__(self) -> None:
        self.total, self.by_path, self._lock = 0, Counter(), threading.Lock()

    def add(self, path: str) -> None:
        with self._lock:
            self.total += 1
            self.by_path[path] += 1

    def __getitem__(self, path: str) -> int:
        return self.by_path[path]

    def __int__(self) -> int:
        return self.total

    def __repr__(self) -> str:
        return f"RequestLog(total={self.total}, by_path={dict(self.by_path)})"


class _Reply(NamedTuple):
    status: int
    body: bytes
    headers: tuple = ()


def _json(status: int, payload: Any, headers: tuple = ()) -> _Reply:
    return _Reply(status, orjson.dumps(payload), headers)


class _BadRequest(Exception):
    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(payload)
        self.reply = _json(status, payload)


def _encode_cursor(state: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(state)).rstrip(b"=").decode()


def _decode_cursor(text: str) -> dict:
    try:
        state = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        assert isinstance(state, dict) and "r" in state and "f" in state
        return state
    except Exception:
        raise _BadRequest(400, {"errors": "page_info - Invalid value."}) from None


def _int_list(value: str, name: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise _BadRequest(400, {"errors": f"{name} - Invalid value."}) from None


# ------------------------------------------------------------------------------------------------- REST lists
def _filters(name: str, params: dict[str, str]) -> dict:
    """The first request's filters as a JSON-able dict; they ride inside page_info for the following pages."""
    allowed = ORDER_PARAMS if name == "orders" else LEVEL_PARAMS if name == "inventory_levels" else LIST_PARAMS
    out: dict[str, Any] = {}
    for key in sorted(allowed & params.keys()):
        value = params[key]
        try:
            if key in ("ids", "inventory_item_ids", "location_ids"):
                out[key] = sorted(set(_int_list(value, key)))
            elif key == "since_id":
                out[key] = int(value)
            elif key.endswith(("_min", "_max")):
                out[key] = parse_ts(value)
            else:
                out[key] = value
        except ValueError:
            raise _BadRequest(400, {"errors": f"{key} - Invalid value."}) from None
    if name == "orders":
        out.setdefault("status", "open")
        if out["status"] not in ("open", "closed", "cancelled", "any"):
            raise _BadRequest(400, {"errors": "status - Invalid value."})
    if name == "inventory_levels" and not ({"inventory_item_ids", "location_ids"} & out.keys()):
        raise _BadRequest(422, {"errors": "inventory_item_ids or location_ids must be present"})
    return out


def _predicate(f: dict, meta: dict) -> Callable[[Any], bool] | None:
    checks: list[Callable[[Any, tuple], bool]] = []
    for key, index, op in (("created_at_min", 0, "ge"), ("created_at_max", 0, "le"),
                           ("updated_at_min", 1, "ge"), ("updated_at_max", 1, "le")):
        if key in f:
            bound = f[key]
            checks.append((lambda k, m, i=index, b=bound: m[i] >= b) if op == "ge" else
                          (lambda k, m, i=index, b=bound: m[i] <= b))
    status = f.get("status", "any")
    if status != "any":
        checks.append({"open": lambda k, m: not m[2], "closed": lambda k, m: m[2],
                       "cancelled": lambda k, m: m[3]}[status])
    if f.get("financial_status", "any") != "any":
        wanted = set(f["financial_status"].split(","))
        checks.append(lambda k, m: m[4] in wanted)
    fulfilment = f.get("fulfillment_status", "any")
    if fulfilment != "any":
        allowed = {"shipped": {"fulfilled"}, "partial": {"partial"}, "unshipped": {None},
                   "unfulfilled": {None, "partial"}}.get(fulfilment, {fulfilment})
        checks.append(lambda k, m: m[5] in allowed)
    if "inventory_item_ids" in f:
        items = set(f["inventory_item_ids"])
        checks.append(lambda k, m: k[0] in items)
    if "location_ids" in f:
        places = set(f["location_ids"])
        checks.append(lambda k, m: k[1] in places)
    if not checks:
        return None
    return lambda k: all(check(k, meta[k]) for check in checks)


def _collect(table: Any, pred: Callable | None, f: dict, after: Any, before: Any,
             limit: int) -> tuple[list, bool, bool]:
    """One page of keys in key order, plus (has_next, has_previous)."""
    keys = [k for k in f["ids"] if k in table.raw] if "ids" in f else table.keys
    floor = f.get("since_id")
    out: list = []
    if before is None:
        i = bisect.bisect_right(keys, after) if after is not None else 0
        if floor is not None:
            i = max(i, bisect.bisect_right(keys, floor))
        n = len(keys)
        while i < n and len(out) <= limit:
            k = keys[i]
            i += 1
            if pred is None or pred(k):
                out.append(k)
        return out[:limit], len(out) > limit, after is not None
    i = bisect.bisect_left(keys, before) - 1
    while i >= 0 and len(out) <= limit and (floor is None or keys[i] > floor):
        k = keys[i]
        i -= 1
        if pred is None or pred(k):
            out.append(k)
    return out[:limit][::-1], True, len(out) > limit


def _project(raw: bytes, fields: list[str] | None) -> bytes:
    if not fields:
        return raw
    record = orjson.loads(raw)
    return orjson.dumps({k: record[k] for k in fields if k in record})


# ------------------------------------------------------------------------------------------------------ GraphQL
REASONS = {"correction", "cycle_count_available", "damaged", "movement_canceled", "movement_created",
           "movement_received", "movement_updated", "other", "promotion", "quality_control", "received",
           "reservation_created", "reservation_deleted", "reservation_updated", "restock", "safety_stock",
           "shrinkage"}
IDEMPOTENT = re.compile(r'@idempotent\s*\(\s*key\s*:\s*(?:"((?:[^"\\]|\\.)*)"|\$(\w+))\s*\)')
GID = re.compile(r"^gid://shopify/(\w+)/(\d+)$")


class GraphQLCost:
    """The GraphQL cost bucket reported in ``extensions.cost`` (and enforced: THROTTLED when empty)."""

    def __init__(self, maximum: float = 2000.0, restore_rate: float = 100.0) -> None:
        self.maximum, self.restore_rate = maximum, restore_rate
        self.available, self._at, self._lock = maximum, time.monotonic(), threading.Lock()

    def spend(self, cost: int) -> tuple[bool, dict]:
        with self._lock:
            now = time.monotonic()
            self.available = min(self.maximum, self.available + (now - self._at) * self.restore_rate)
            self._at = now
            ok = self.available >= cost
            if ok:
                self.available -= cost
            return ok, {"requestedQueryCost": cost, "actualQueryCost": cost if ok else None,
                        "throttleStatus": {"maximumAvailable": self.maximum,
                                           "currentlyAvailable": int(self.available),
                                           "restoreRate": self.restore_rate}}


def _gql_error(message: str, code: str, cost: dict | None = None) -> dict:
    out: dict[str, Any] = {"errors": [{"message": message, "extensions": {"code": code}}]}
    if cost:
        out["extensions"] = {"cost": cost}
    return out


def _gid_id(value: Any, kind: str) -> int | None:
    match = GID.match(value) if isinstance(value, str) else None
    return int(match.group(2)) if match and match.group(1) == kind else None


class _GraphQL:
    """inventorySetQuantities / inventoryAdjustQuantities against the shared store."""

    def __init__(self, emulator: ShopifyEmulator) -> None:
        self.emulator = emulator
        self.replays: dict[str, tuple[bytes, dict]] = {}
        self.groups = 0

    def run(self, version: str, body: Any) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _gql_error("Parameter 'query' is required.", "BAD_REQUEST")
        query, variables = body["query"], body.get("variables") or {}
        if "inventorySetQuantities" in query:
            mutation, listed = "inventorySetQuantities", "quantities"
        elif "inventoryAdjustQuantities" in query:
            mutation, listed = "inventoryAdjustQuantities", "changes"
        else:
            return _gql_error("The emulator answers only inventorySetQuantities and inventoryAdjustQuantities.",
                              "UNSUPPORTED_BY_EMULATOR")
        ok, cost = self.emulator.graphql_cost.spend(10)
        if not ok:
            return _gql_error("Throttled", "THROTTLED", cost)
        data = variables.get("input")
        if not isinstance(data, dict):
            data = next((v for v in variables.values() if isinstance(v, dict) and listed in v), None)
        if not isinstance(data, dict) or not isinstance(data.get(listed), list):
            return _gql_error(f"Variable $input of type {mutation[0].upper()}{mutation[1:]}Input! was provided "
                              f"invalid value for {listed} (Expected value to not be null)", "INVALID_VARIABLE", cost)
        new_api = version >= "2026-04"
        match = IDEMPOTENT.search(query)
        key = (match.group(1) if match.group(1) is not None else variables.get(match.group(2))) if match else None
        if new_api and not key:
            return _gql_error(f"The @idempotent directive is required for {mutation} from API version 2026-04.",
                              "BAD_REQUEST", cost)
        fingerprint = orjson.dumps([mutation, data], option=orjson.OPT_SORT_KEYS)
        with self.emulator.store.lock:
            if key is not None and key in self.replays:
                seen, result = self.replays[key]
                if seen != fingerprint:
                    return _gql_error("The same idempotency key was used with different parameters.",
                                      "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", cost)
                return {"data": {mutation: result}, "extensions": {"cost": cost}}
            result = self._apply(mutation, listed, data, new_api)
            if key is not None:
                self.replays[key] = (fingerprint, result)
        return {"data": {mutation: result}, "extensions": {"cost": cost}}

    def _apply(self, mutation: str, listed: str, data: dict, new_api: bool) -> dict:
        store, setting = self.emulator.store, mutation == "inventorySetQuantities"
        name, reason = data.get("name"), data.get("reason")
        errors: list[dict] = []
        if name not in ("available", "on_hand"):
            errors.append({"field": ["input", "name"], "message": "The quantity name must be available or on_hand.",
                           "code": "INVALID_QUANTITY_NAME"})
        if reason not in REASONS:
            errors.append({"field": ["input", "reason"], "message": "The specified reason is invalid.",
                           "code": "INVALID_REASON"})
        plan = []
        for i, row in enumerate(data[listed]):
            where = ["input", listed, str(i)]
            item, location = _gid_id(row.get("inventoryItemId"), "InventoryItem"), _gid_id(row.get("locationId"),
                                                                                           "Location")
            if item is None or item not in store.item_variant:
                errors.append({"field": [*where, "inventoryItemId"], "message": "The specified inventory item could "
                               "not be found.", "code": "INVALID_INVENTORY_ITEM"})
                continue
            if location is None or location not in store.locations:
                errors.append({"field": [*where, "locationId"], "message": "The specified location could not be "
                               "found.", "code": "INVALID_LOCATION"})
                continue
            if (item, location) not in store.inventory_levels:
                errors.append({"field": [*where, "locationId"], "message": "The specified inventory item is not "
                               "stocked at the location.", "code": "ITEM_NOT_STOCKED_AT_LOCATION"})
                continue
            current = orjson.loads(store.inventory_levels.raw[(item, location)])["available"]
            target = row.get("quantity") if setting else current + int(row.get("delta") or 0)
            if not isinstance(target, int) or abs(target) > 1_000_000_000:
                errors.append({"field": [*where, "quantity" if setting else "delta"], "message": "The quantity must "
                               "be between -1,000,000,000 and 1,000,000,000.", "code": "INVALID_QUANTITY"})
                continue
            if new_api:
                if "changeFromQuantity" not in row:
                    errors.append({"field": [*where, "changeFromQuantity"], "message": "changeFromQuantity is "
                                   "required (pass null to opt out).", "code": "CHANGE_FROM_QUANTITY_REQUIRED"})
                elif row["changeFromQuantity"] is not None and row["changeFromQuantity"] != current:
                    errors.append({"field": [*where, "changeFromQuantity"], "message": "The specified "
                                   "changeFromQuantity does not match the current quantity.",
                                   "code": "CHANGE_FROM_QUANTITY_STALE"})
            elif setting and not data.get("ignoreCompareQuantity"):
                if row.get("compareQuantity") is None:
                    errors.append({"field": [*where, "compareQuantity"], "message": "The compareQuantity argument "
                                   "must be given to each quantity or ignored using ignoreCompareQuantity.",
                                   "code": "COMPARE_QUANTITY_REQUIRED"})
                elif row["compareQuantity"] != current:
                    errors.append({"field": [*where, "compareQuantity"], "message": "The specified compare quantity "
                                   "does not match the current quantity.", "code": "COMPARE_QUANTITY_STALE"})
            plan.append((item, location, current, target))
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        changes = []
        for item, location, current, target in plan:
            self.emulator.emit("inventory_levels/update", self.emulator.store.set_available(item, location, target))
            ids = {"item": {"id": f"gid://shopify/InventoryItem/{item}"},
                   "location": {"id": f"gid://shopify/Location/{location}"}}
            for quantity_name in ("available", "on_hand"):
                changes.append({"name": quantity_name, "delta": target - current, "quantityAfterChange": target,
                                **ids})
        self.groups += 1
        return {"inventoryAdjustmentGroup": {
            "id": f"gid://shopify/InventoryAdjustmentGroup/{90_000_000_000 + self.groups}",
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "reason": reason,
            "referenceDocumentUri": data.get("referenceDocumentUri"), "changes": changes}, "userErrors": []}


# ------------------------------------------------------------------------------------------------------- server
_DEFAULT = object()


class ShopifyEmulator(WebhookSending, LoopbackEmulator):
    """The store plus an HTTP server on 127.0.0.1; use as a context manager or ``start()``/``stop()``."""

    thread_name = "shopify-emulator"

    def __init__(self, orders: int = 1000, seed: int = 0, token: str = "shpat_emulator",
                 rate_limit: LeakyBucket | None | object = _DEFAULT, faults: Faults | None = None,
                 customers: int | None = None, products: int | None = None, locations: int = 4,
                 port: int = 0, store: Store | None = None, webhook_secret: str = "shpss_emulator_webhook_secret",
                 webhook_url: str | None = None) -> None:
        self.store = store or generate(seed=seed, orders=orders, customers=customers, products=products,
                                       locations=locations)
        self.token = token
        # webhooks: subscriptions (webhooks.json, or every emitted topic at ``webhook_url``), signed with the
        # app's client secret, delivered after each change by a background sender
        self.webhook_secret = webhook_secret
        self.subscriptions: dict[int, dict] = {}
        self._webhooks = WebhookSender("shopify-emulator")
        if webhook_url:
            for topic in WEBHOOK_TOPICS:
                self._subscribe(topic, webhook_url)
        self.rate_limit: LeakyBucket | None = LeakyBucket() if rate_limit is _DEFAULT else rate_limit  # type: ignore
        self.faults = faults or Faults(seed=seed)
        self.graphql_cost = GraphQLCost()
        self.writes: list[Write] = []
        self.requests = RequestLog()
        self._graphql = _GraphQL(self)
        self._init_server(port)

    def url(self, path: str, version: str = "2024-07") -> str:
        return f"{self.base_url}/admin/api/{version}/{path.lstrip('/')}"

    def plugins_toml(self, connector_id: str = "shop", token_env: str = "SHOPIFY_TOKEN",
                     secret_env: str | None = None) -> str:
        """A ready ``[connectors.<id>]`` table pointing at this emulator (``secret_env``: the environment variable
        holding the webhook secret, for a project that receives webhooks)."""
        table = (f'[connectors.{connector_id}]\ntype = "shopify"\nshop = "harbour-goods-hk.myshopify.com"\n'
                 f'access_token = "${{{token_env}}}"\nbase_url = "{self.base_url}"\n')
        return table + (f'webhook_secret = "${{{secret_env}}}"\n' if secret_env else "")

    # -- test hooks (never faulted, never rate limited, not logged as writes)
    def touch(self, resource: str, key: Any, **changes: Any) -> str:
        """Bump a record's ``updated_at`` past every earlier stamp (and apply ``changes``); returns the stamp."""
        return self.store.touch(resource, key, **changes)

    @property
    def adjustment_groups(self) -> int:
        """How many GraphQL inventory mutations changed stock (an idempotent replay adds none)."""
        return self._graphql.groups

    def set_inventory(self, inventory_item_id: int, location_id: int, available: int) -> dict:
        level = self.store.set_available(inventory_item_id, location_id, available)
        self.emit("inventory_levels/update", level)
        return level

    # -- scenario hooks (emulator_hooks): one chosen SKU in the shop, web orders placed now
    def add_product(self, sku: str, title: str, *, price: str = "88.00",
                    stock: dict[int, int] | None = None) -> dict[str, int]:
        """A new product with one variant ``sku``; ``stock`` is location id -> available. Returns the ids."""
        ids = emulator_hooks.add_product(self.store, sku, title, price=price, stock=stock)
        self.emit("products/create", self.store.products[ids["product_id"]])
        self._emit_levels([ids["inventory_item_id"]])
        return ids

    def place_order(self, lines: list[tuple[str, int]], *, customer: dict | None = None,
                    location_id: int | None = None) -> int:
        """An open, paid, unfulfilled web order now for (sku, quantity) lines; stock leaves available."""
        oid = emulator_hooks.place_order(self.store, lines, customer=customer, location_id=location_id)
        order = self.store.orders[oid]
        self.emit("orders/create", order)
        items = [self.store.variants[line["variant_id"]]["inventory_item_id"] for line in order["line_items"]]
        self._emit_levels(items)
        return oid

    def available(self, inventory_item_id: int, location_id: int) -> int:
        """The level's ``available`` now."""
        return emulator_hooks.available(self.store, inventory_item_id, location_id)

    def location_id(self, name: str) -> int:
        """The id of the location called ``name`` (``"Causeway Bay Shop"``, ``"Kwai Chung Warehouse"`` ...)."""
        ids = {self.store.locations[k]["name"]: k for k in self.store.locations.keys}
        if name not in ids:
            raise KeyError(f"no Shopify location {name!r}; there are {sorted(ids)}")
        return ids[name]

    # -- webhooks
    def emit(self, topic: str, payload: dict) -> int:
        """Deliver ``payload`` to every subscription of ``topic``, signed as Shopify signs; how many were queued."""
        body = orjson.dumps(payload)
        signature = base64.b64encode(hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).digest()).decode()
        targets = [sub["address"] for sub in list(self.subscriptions.values()) if sub["topic"] == topic]
        for address in targets:
            delivery_id = str(uuid.uuid4())
            self._webhooks.send(topic, address, delivery_id, body, {
                "Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": signature,
                "X-Shopify-Shop-Domain": self.store.shop.get("myshopify_domain") or "emulator.myshopify.com",
                "X-Shopify-API-Version": "2024-07", "X-Shopify-Webhook-Id": delivery_id,
                "X-Shopify-Event-Id": str(uuid.uuid4()),
                "X-Shopify-Triggered-At": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())})
        return len(targets)

    def _emit_levels(self, items: Iterable[int]) -> None:
        for item in dict.fromkeys(items):
            for location in self.store.locations.keys:
                if (item, location) in self.store.inventory_levels:
                    self.emit("inventory_levels/update", self.store.inventory_levels[(item, location)])

    def _subscribe(self, topic: str, address: str) -> tuple[int, dict]:
        if topic not in WEBHOOK_TOPICS:
            return 422, {"errors": {"topic": ["Invalid topic specified."]}}
        if not isinstance(address, str) or not address.startswith(("http://", "https://")):
            return 422, {"errors": {"address": ["is invalid"]}}
        if any(s["topic"] == topic and s["address"] == address for s in self.subscriptions.values()):
            return 422, {"errors": {"address": ["for this topic has already been taken"]}}
        wid = 1_047_000_000 + len(self.subscriptions) + 1
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600))
        self.subscriptions[wid] = {"id": wid, "address": address, "topic": topic, "created_at": stamp,
                                   "updated_at": stamp, "format": "json", "fields": [], "metafield_namespaces": [],
                                   "api_version": "2024-07", "private_metafield_namespaces": [],
                                   "admin_graphql_api_id": f"gid://shopify/WebhookSubscription/{wid}"}
        return 201, {"webhook": self.subscriptions[wid]}

    def _webhooks_route(self, method: str, parts: list[str], payload: Any) -> _Reply | None:
        """``webhooks.json`` (GET list, POST create) and ``webhooks/{id}.json`` (GET, DELETE)."""
        if parts == ["webhooks"] and method == "GET":
            return _json(200, {"webhooks": list(self.subscriptions.values())})
        if parts == ["webhooks"] and method == "POST":
            hook = payload.get("webhook") if isinstance(payload, dict) else None
            if not isinstance(hook, dict):
                return _json(400, {"errors": {"webhook": "Required parameter missing or invalid"}})
            return _json(*self._subscribe(hook.get("topic"), hook.get("address")))
        if len(parts) == 2 and parts[0] == "webhooks" and parts[1].isdigit():
            found = self.subscriptions.get(int(parts[1]))
            if found is None:
                return _json(404, NOT_FOUND)
            if method == "DELETE":
                del self.subscriptions[int(parts[1])]
                return _json(200, {})
            return _json(200, {"webhook": found})
        return None

    # -- request handling
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[_Reply, bool, float]:
        """(reply, truncate, delay) for one request."""
        split = urlsplit(raw_path)
        match = API_PATH.match(split.path)
        self.requests.add(f"{match.group(2)}.json" if match else split.path)
        if not match:
            return _json(404, NOT_FOUND), False, 0.0
        if headers.get("X-Shopify-Access-Token") != self.token:
            return _json(401, INVALID_TOKEN), False, 0.0
        version, route = match.groups()
        if self.faults is not None and self.faults.throttled():
            return _json(429, THROTTLED, (("Retry-After", f"{self.faults.burst_retry_after:g}"),)), False, 0.0
        extra: tuple = ()
        bucket = self.rate_limit
        if bucket is not None:
            if route != "graphql":
                allowed, used = bucket.take()
                if not allowed:
                    return _json(429, THROTTLED, (("Retry-After", "2.0"),
                                                  ("X-Shopify-Shop-Api-Call-Limit", f"{used}/{bucket.size}"))), \
                        False, 0.0
            else:
                used = bucket.used
            extra = (("X-Shopify-Shop-Api-Call-Limit", f"{used}/{bucket.size}"),)
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return _json(400, {"errors": "Invalid JSON in request body."}, extra), False, 0.0
        if method != "GET":
            self.writes.append(Write(method, split.path, payload))
        faults = self.faults
        error, truncate, slow = faults.draw() if faults is not None else (None, False, False)
        delay = faults.slow_seconds if slow and faults is not None else 0.0
        if error is not None:
            if error == 502:
                page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
                return _Reply(502, page, (*extra, ("Content-Type", "text/html"))), False, delay
            message = "Internal Server Error" if error == 500 else "Service Unavailable"
            return _json(error, {"errors": message}, extra), False, delay
        try:
            reply = self._route(method, version, route, dict(parse_qsl(split.query, keep_blank_values=True)),
                                payload)
        except _BadRequest as bad:
            reply = bad.reply
        return reply._replace(headers=(*extra, ("X-Shopify-API-Version", version), *reply.headers)), truncate, delay

    def _route(self, method: str, version: str, route: str, params: dict, payload: Any) -> _Reply:
        parts = route.split("/")
        if method == "POST" and route == "graphql":
            return _json(200, self._graphql.run(version, payload))
        if method == "POST" and parts[0] == "inventory_levels" and len(parts) == 2:
            return self._level_write(parts[1], payload or {})
        if parts[0] == "webhooks":
            hooked = self._webhooks_route(method, parts, payload)
            if hooked is not None:
                return hooked
        if method != "GET":
            return _json(404, NOT_FOUND)
        if route == "shop":
            return _json(200, {"shop": self.store.shop})
        if len(parts) == 1 and parts[0] in ("customers", "products", "orders", "locations", "inventory_levels"):
            return self._list(version, parts[0], params)
        if len(parts) == 2 and parts[1] == "count" and parts[0] in SINGULAR:
            table = self.store.table(parts[0])
            pred = _predicate(_filters(parts[0], params), table.meta)
            with self.store.lock:
                return _json(200, {"count": sum(1 for k in table.keys if pred is None or pred(k))})
        if route == "customers/search":
            return self._search(params)
        if len(parts) == 2 and parts[0] in SINGULAR and parts[1].isdigit():
            table = self.store.table(parts[0])
            raw = table.raw.get(int(parts[1]))
            if raw is None:
                return _json(404, NOT_FOUND)
            fields = [f.strip() for f in params["fields"].split(",")] if params.get("fields") else None
            return _Reply(200, b'{"%s":%s}' % (SINGULAR[parts[0]].encode(), _project(raw, fields)))
        if len(parts) == 3 and parts[0] == "locations" and parts[2] == "inventory_levels" and parts[1].isdigit():
            if int(parts[1]) not in self.store.locations:
                return _json(404, NOT_FOUND)
            return self._list(version, "inventory_levels", params, forced={"location_ids": parts[1]},
                              link_path=route)
        return _json(404, NOT_FOUND)

    def _list(self, version: str, name: str, params: dict, forced: dict | None = None,
              link_path: str | None = None) -> _Reply:
        try:
            limit = int(params.get("limit", 50))
        except ValueError:
            raise _BadRequest(400, {"errors": "limit - Invalid value."}) from None
        if not 1 <= limit <= 250:
            raise _BadRequest(400, {"errors": "limit must be between 1 and 250"})
        fields_param = params.get("fields") or None
        fields = [f.strip() for f in fields_param.split(",") if f.strip()] if fields_param else None
        table = self.store.table(name)
        after = before = None
        if "page_info" in params:
            for key in params:
                if key not in ("page_info", "limit", "fields"):
                    raise _BadRequest(400, {"errors": f"{key} cannot be passed when page_info is present"})
            state = _decode_cursor(params["page_info"])
            if state["r"] != (link_path or name):
                raise _BadRequest(400, {"errors": "page_info - Invalid value."})
            f = state["f"]
            after, before = state.get("a"), state.get("b")
            if name == "inventory_levels":
                after, before = (tuple(after) if after else None), (tuple(before) if before else None)
        else:
            f = _filters(name, {**params, **(forced or {})})
        if name == "locations":
            f, limit = {k: v for k, v in f.items() if k == "ids"}, 250
        with self.store.lock:
            keys, has_next, has_prev = _collect(table, _predicate(f, table.meta), f, after, before, limit)
            body = b'{"%s":[%s]}' % (name.encode(), b",".join(_project(table.raw[k], fields) for k in keys))
        links = []
        link_base = f"{self.base_url}/admin/api/{version}/{link_path or name}.json?limit={limit}"
        if fields_param:
            link_base += "&fields=" + ",".join(fields or [])
        for rel, cursor_key, present in (("previous", "b", has_prev), ("next", "a", has_next)):
            if present and keys:
                edge = keys[0] if cursor_key == "b" else keys[-1]
                cursor = _encode_cursor({"r": link_path or name, "f": f, cursor_key: edge})
                links.append(f'<{link_base}&page_info={cursor}>; rel="{rel}"')
        return _Reply(200, body, (("Link", ", ".join(links)),) if links else ())

    def _search(self, params: dict) -> _Reply:
        terms = [t.split(":", 1) for t in params.get("query", "").split() if ":" in t]
        limit = min(int(params.get("limit", 50)), 250)
        found = []
        with self.store.lock:
            for key in self.store.customers.keys:
                record = self.store.customers[key]
                if all(str(record.get("tags" if field == "tag" else field) or "").lower().find(value.lower()) >= 0
                       for field, value in terms):
                    found.append(self.store.customers.raw[key])
                    if len(found) == limit:
                        break
        return _Reply(200, b'{"customers":[%s]}' % b",".join(found))

    def _level_write(self, action: str, body: dict) -> _Reply:
        store = self.store
        try:
            key = (int(body["inventory_item_id"]), int(body["location_id"]))
        except (KeyError, TypeError, ValueError):
            return _json(422, {"errors": {"inventory_item_id": ["can't be blank"], "location_id": ["can't be blank"]}})
        if key[0] not in store.item_variant or key[1] not in store.locations:
            return _json(404, NOT_FOUND)
        with store.lock:
            exists = key in store.inventory_levels
            if action == "connect" or (action == "set" and not exists):
                if not exists:
                    store.inventory_levels[key] = {"inventory_item_id": key[0], "location_id": key[1], "available": 0,
                                                   "updated_at": ts(store.tick()), "admin_graphql_api_id":
                                                   f"gid://shopify/InventoryLevel/{key[1]}?inventory_item_id={key[0]}"}
                if action == "connect":
                    return _json(201, {"inventory_level": store.inventory_levels[key]})
            if not exists and action == "adjust":
                return _json(422, {"errors": ["Inventory item is not stocked at the location."]})
            if action == "set" and isinstance(body.get("available"), int):
                level = store.set_available(*key, body["available"])
            elif action == "adjust" and isinstance(body.get("available_adjustment"), int):
                current = store.inventory_levels[key]["available"]
                level = store.set_available(*key, current + body["available_adjustment"])
            else:
                return _json(422, {"errors": {"available": ["is not a number"]}} if action == "set" else NOT_FOUND)
        self.emit("inventory_levels/update", level)
        return _json(200, {"inventory_level": level})


class _Handler(LoopbackRequestHandler):
    server_version = "ShopifyEmulator/1.0"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body go out separately

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply, truncate, delay = self.server.emulator.handle(self.command, self.path, self.headers, body)  # type: ignore
        if delay:
            time.sleep(delay)
        data = reply.body
        short = truncate and self.server.emulator.faults.truncate_mode == "short"  # type: ignore[attr-defined]
        sent = data[: len(data) // 2] if truncate else data
        self.send_response(reply.status)
        if not any(name == "Content-Type" for name, _ in reply.headers):
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(sent) if short else len(data)))
        self.end_headers()
        self.wfile.write(sent)
        if truncate:
            self.close_connection = True  # hang up mid-body: the client sees a short read

    do_GET = do_POST = do_PUT = do_DELETE = _serve


ShopifyEmulator.handler_class = _Handler  # defined after the emulator it serves


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m storesync.connectors.shopify.emulator",
                                     description="Serve a fake Shopify Admin API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--token", default="shpat_emulator")
    parser.add_argument("--bucket-size", type=int, default=40)
    parser.add_argument("--leak-rate", type=float, default=2.0)
    parser.add_argument("--no-rate-limit", action="store_true")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--truncate-rate", type=float, default=0.0)
    parser.add_argument("--slow-rate", type=float, default=0.0)
    parser.add_argument("--webhook-url", help="deliver every emitted topic there (e.g. storesync serve's "
                                              "http://127.0.0.1:8080/webhooks/shop), signed with --webhook-secret")
    parser.add_argument("--webhook-secret", default="shpss_emulator_webhook_secret")
    args = parser.parse_args(list(argv) if argv is not None else None)
    started = time.monotonic()
    shop = ShopifyEmulator(orders=args.orders, seed=args.seed, token=args.token, port=args.port,
                           webhook_url=args.webhook_url, webhook_secret=args.webhook_secret,
                           rate_limit=None if args.no_rate_limit else LeakyBucket(args.bucket_size, args.leak_rate),
                           faults=Faults(args.fault_rate, args.truncate_rate, args.slow_rate, seed=args.seed))
    shop.serve_until_interrupted(lambda e: (
        f"Shopify emulator: {e.base_url}  token: {e.token}  "
        f"({len(e.store.orders)} orders, built in {time.monotonic() - started:.1f}s; Ctrl-C to stop)\n"
        f"\n# plugins.toml (then: export SHOPIFY_TOKEN={e.token}; storesync sync shop)\n"
        f'{e.plugins_toml()}webhook_secret = "{e.webhook_secret}"\n'
        + ("pacing = false\n" if e.rate_limit is None else
           f"bucket_size = {e.rate_limit.size}\nleak_rate = {e.rate_limit.leak_rate:g}\n")))


if __name__ == "__main__":
    main()
