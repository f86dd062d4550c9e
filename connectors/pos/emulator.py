"""A local Square Connect v2 API for tests and benchmarks: till locations, catalog, stock, orders, customers.

Run ``python -m storesync.connectors.pos.emulator --orders 10000`` (prints the base URL, the token and a
plugins.toml snippet), or in tests::

    with SquareEmulator(orders=500, seed=1, token="sq_test", rate_limit=None) as pos:
        httpx.get(f"{pos.base_url}/v2/locations", headers={"Authorization": f"Bearer {pos.token}"})

What it reproduces: bearer auth (401 ``UNAUTHORIZED``), error bodies ``{"errors": [{category, code, detail,
field}]}``, 429 ``RATE_LIMITED`` from a token bucket (no ``Retry-After``, as Square), ``GET /v2/locations``,
``GET /v2/catalog/list`` and ``GET /v2/customers`` (``?cursor=``), ``POST /v2/catalog/search``,
``/v2/inventory/counts/batch-retrieve``, ``/v2/orders/search``, ``/v2/orders/batch-retrieve`` and
``/v2/customers/search`` (``"cursor"`` in the body with the original query resent), and
``/v2/inventory/changes/batch-create`` (PHYSICAL_COUNT and ADJUSTMENT into a ledger; counts derived as Square
derives them; idempotency keys honoured; occurred_at may not be in the future or older than 24 hours). Seeded
faults (5xx, truncated bodies, slow replies) and the rate limit are attributes tests may change while it runs; the
Python hooks (``touch``, ``sell``, ``in_stock``, and the scenario hooks ``add_item`` and ``till_sale`` of
``emulator_hooks``) never see faults. Deliberate simplifications are listed in ``DEVIATIONS``.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from ...core.emulation import LoopbackEmulator
from ...core.webhook_sender import WebhookSender, WebhookSending
from ..shopify.emulator import Faults, LeakyBucket, RequestLog, Write, _Handler, _Reply
from . import emulator_hooks
from .emulator_api import Api, ApiError
from .emulator_data import SquareStore, generate, stamp
from .webhooks import SIGNATURE_HEADER, signature_for

__all__ = ["DEVIATIONS", "Faults", "LeakyBucket", "RequestLog", "SquareEmulator", "Write", "main"]

DEVIATIONS = """\
- Customers come back in creation order for the DEFAULT sort (Square's is unspecified).
- SearchOrders understands state_filter and one date_time_filter field; customer_filter and source_filter are
  ignored. SearchCatalogObjects takes object_types, begin_time, include_deleted_objects and a prefix_query on
  name only; objects come in id order. /v2/inventory/changes/batch-retrieve is not served.
- Inventory takes PHYSICAL_COUNT and ADJUSTMENT, not TRANSFER; quantities are whole numbers in the seed data.
- Orders never change stock after seeding unless a test calls `sell` or `till_sale`; a 2xx write is logged in
  `writes`.
- The rate limit is a token bucket of `size` requests refilled at `rate` per second (Square publishes none).
"""

UNAUTHORIZED = {"errors": [{"category": "AUTHENTICATION_ERROR", "code": "UNAUTHORIZED",
                            "detail": "This request could not be authorized."}]}
RATE_LIMITED = {"errors": [{"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED",
                            "detail": "The request was rate limited."}]}
SERVER_ERRORS = {500: "INTERNAL_SERVER_ERROR", 503: "SERVICE_UNAVAILABLE"}
WRITES = frozenset({"/v2/inventory/changes/batch-create"})


def _reply(status: int, payload: Any) -> _Reply:
    return _Reply(status, payload if isinstance(payload, bytes) else orjson.dumps(payload))


class SquareEmulator(WebhookSending, LoopbackEmulator):
    """The store plus an HTTP server on 127.0.0.1; use as a context manager or ``start()``/``stop()``."""

    handler_class = _Handler
    thread_name = "square-emulator"

    def __init__(self, orders: int = 1000, seed: int = 0, token: str = "sq_emulator_token",
                 rate_limit: LeakyBucket | None = None, faults: Faults | None = None, customers: int | None = None,
                 items: int | None = None, locations: int = 4, port: int = 0,
                 store: SquareStore | None = None, webhook_url: str | None = None,
                 signature_key: str = "sq_emulator_signature_key") -> None:
        self.store = store or generate(seed=seed, orders=orders, customers=customers, items=items,
                                       locations=locations)
        self.token = token
        # webhooks: every event is posted to ``webhook_url`` (the subscription's notification URL), signed over
        # that URL plus the body with ``signature_key``, after the change, by a background sender
        self.webhook_url = webhook_url
        self.signature_key = signature_key
        self._webhooks = WebhookSender("square-emulator")
        self.rate_limit = rate_limit
        self.faults = faults or Faults(seed=seed)
        self.writes: list[Write] = []
        self.requests = RequestLog()
        self.api = Api(self.store)
        self._init_server(port)

    def plugins_toml(self, connector_id: str = "tills", token_env: str = "SQUARE_TOKEN") -> str:
        """A ready ``[connectors.<id>]`` table pointing at this emulator."""
        table = (f'[connectors.{connector_id}]\ntype = "square"\nbase_url = "{self.base_url}"\n'
                 f'access_token = "${{{token_env}}}"\n')
        if self.webhook_url:
            table += f'webhook_signature_key = "{self.signature_key}"\nnotification_url = "{self.webhook_url}"\n'
        return table

    # -- test hooks (never faulted, never rate limited, not logged as writes)
    def touch(self, kind: str, key: str, **changes: Any) -> str:
        """Change an order, customer or catalog item now (``kind``: orders, customers, catalog)."""
        return self.store.touch(kind, key, **changes)

    def sell(self, variation: str, location: str, quantity: int = 1) -> None:
        """A till sale now: IN_STOCK -> SOLD in the ledger."""
        self.store.sell(variation, location, quantity)

    # -- scenario hooks (emulator_hooks): one chosen SKU in the catalog, till sales completed now
    def location_id(self, name: str) -> str:
        """The id of the till location called ``name`` (``"Causeway Bay Shop"``, ``"Kwai Chung Warehouse"`` ...)."""
        ids = {loc["name"]: loc["id"] for loc in self.store.locations}
        if name not in ids:
            raise KeyError(f"no Square location {name!r}; there are {sorted(ids)}")
        return ids[name]

    def add_item(self, sku: str, name: str, *, price: int = 8800, counts: dict[str, int] | None = None) -> str:
        """A new item with one variation ``sku`` and opening IN_STOCK counts (location id -> quantity); its id."""
        variation = emulator_hooks.add_item(self.store, sku, name, price=price, counts=counts)
        self.emit("catalog.version.updated", "catalog", "", {"catalog_version": {"updated_at": stamp(
            self.store.clock_ms)}})
        self._emit_counts([(variation, location) for location in counts or {}])
        return variation

    def till_sale(self, variation_id: str, location_id: str, quantity: int = 1, *,
                  customer_id: str | None = None) -> str:
        """A COMPLETED one-line order now, stock IN_STOCK -> SOLD (may go negative); returns the order id."""
        order_id = emulator_hooks.till_sale(self.store, variation_id, location_id, quantity, customer_id=customer_id)
        order = orjson.loads(self.store.orders[order_id])
        self.emit("order.created", "order", order_id, {"order_created": {
            "order_id": order_id, "location_id": location_id, "state": order["state"], "version": order["version"],
            "created_at": order["created_at"]}})
        self._emit_counts([(variation_id, location_id)])
        return order_id

    def in_stock(self, variation: str, location: str) -> int:
        """The derived IN_STOCK count of a (variation, location)."""
        return int(self.store.ledger.current((variation, location, "IN_STOCK")))

    # -- webhooks
    def emit(self, event_type: str, data_type: str, data_id: str, obj: dict) -> bool:
        """Post one event notification to ``webhook_url``, signed as Square signs; False without a URL."""
        if not self.webhook_url:
            return False
        event_id = str(uuid.uuid4())
        now = stamp(int(time.time() * 1000))
        body = orjson.dumps({"merchant_id": self.store.merchant_id, "type": event_type, "event_id": event_id,
                             "created_at": now, "data": {"type": data_type, "id": data_id, "object": obj}})
        self._webhooks.send(event_type, self.webhook_url, event_id, body, {
            "Content-Type": "application/json", SIGNATURE_HEADER: signature_for(self.signature_key,
                                                                                self.webhook_url, body),
            "square-environment": "Sandbox", "square-initial-delivery-timestamp": now, "square-retry-number": "0"})
        return True

    def _emit_counts(self, pairs: list[tuple[str, str]]) -> None:
        """``inventory.count.updated`` with the IN_STOCK count of each (variation, location) now."""
        if not pairs or not self.webhook_url:
            return
        now = stamp(self.store.clock_ms)
        counts = [{"catalog_object_id": v, "catalog_object_type": "ITEM_VARIATION", "state": "IN_STOCK",
                   "location_id": loc, "quantity": str(self.in_stock(v, loc)), "calculated_at": now}
                  for v, loc in dict.fromkeys(pairs)]
        self.emit("inventory.count.updated", "inventory", "", {"inventory_counts": counts})

    # -- request handling
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[_Reply, bool, float]:
        """(reply, truncate, delay) for one request."""
        split = urlsplit(raw_path)
        self.requests.add(split.path)
        if headers.get("Authorization") != f"Bearer {self.token}":
            return _reply(401, UNAUTHORIZED), False, 0.0
        if self.rate_limit is not None and not self.rate_limit.take()[0] or \
                self.faults is not None and self.faults.throttled():
            return _reply(429, RATE_LIMITED), False, 0.0
        faults = self.faults
        error, truncate, slow = faults.draw() if faults is not None else (None, False, False)
        delay = faults.slow_seconds if slow and faults is not None else 0.0
        if error == 502:
            return _Reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                          (("Content-Type", "text/html"),)), False, delay
        if error is not None:
            return _reply(error, {"errors": [{"category": "API_ERROR", "code": SERVER_ERRORS[error],
                                              "detail": "An internal error occurred."}]}), False, delay
        try:
            payload = orjson.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise ApiError(400, "EXPECTED_JSON_BODY", "The request body must be a JSON object.")
            reply = _reply(200, self._route(method, split.path, dict(parse_qsl(split.query)), payload))
            if method == "POST" and split.path in WRITES:
                self.writes.append(Write(method, split.path, payload))
                self._emit_counts(_changed_pairs(payload))
        except orjson.JSONDecodeError:
            reply = _reply(400, ApiError(400, "EXPECTED_JSON_BODY", "The request body is not valid JSON.").payload)
        except ApiError as exc:
            reply = _reply(exc.status, exc.payload)
        except Exception as exc:  # an emulator bug: answer it, so the client sees what broke  # noqa: BLE001
            reply = _reply(500, {"errors": [{"category": "API_ERROR", "code": "INTERNAL_SERVER_ERROR",
                                             "detail": f"emulator bug: {type(exc).__name__}: {exc}"}]})
        return reply, truncate, delay

    def _route(self, method: str, path: str, params: dict, body: dict) -> bytes:
        api = self.api
        routes = {
            ("GET", "/v2/locations"): lambda: api.locations(),
            ("GET", "/v2/catalog/list"): lambda: api.catalog_list(params),
            ("GET", "/v2/customers"): lambda: api.customers_list(params),
            ("POST", "/v2/catalog/search"): lambda: api.catalog_search(body),
            ("POST", "/v2/inventory/counts/batch-retrieve"): lambda: api.counts(body),
            ("POST", "/v2/inventory/changes/batch-create"): lambda: api.change_inventory(body),
            ("POST", "/v2/orders/search"): lambda: api.orders_search(body),
            ("POST", "/v2/orders/batch-retrieve"): lambda: api.orders_batch_retrieve(body),
            ("POST", "/v2/customers/search"): lambda: api.customers_search(body),
        }
        route = routes.get((method, path))
        if route is None:
            raise ApiError(404, "NOT_FOUND", f"{method} {path} is not an endpoint of this emulator.")
        return route()


def _changed_pairs(body: dict) -> list[tuple[str, str]]:
    """The (catalog object, location) pairs a batch-create body changes."""
    pairs = []
    for change in body.get("changes") or ():
        detail = (change or {}).get("physical_count") or (change or {}).get("adjustment") or {}
        if detail.get("catalog_object_id") and detail.get("location_id"):
            pairs.append((str(detail["catalog_object_id"]), str(detail["location_id"])))
    return pairs


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m storesync.connectors.pos.emulator",
                                     description="Serve a fake Square Connect v2 API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--token", default="sq_emulator_token")
    parser.add_argument("--connector-id", default="tills")
    parser.add_argument("--rate-limit", type=float, default=0.0, metavar="PER_SECOND",
                        help="answer 429 RATE_LIMITED beyond this many requests per second (0: no limit)")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--truncate-rate", type=float, default=0.0)
    parser.add_argument("--slow-rate", type=float, default=0.0)
    parser.add_argument("--webhook-url", help="post event notifications there (e.g. storesync serve's "
                                              "http://127.0.0.1:8080/webhooks/tills), signed with --signature-key")
    parser.add_argument("--signature-key", default="sq_emulator_signature_key")
    args = parser.parse_args(list(argv) if argv is not None else None)
    started = time.monotonic()
    bucket = LeakyBucket(max(1, int(args.rate_limit * 2)), args.rate_limit) if args.rate_limit > 0 else None
    pos = SquareEmulator(orders=args.orders, seed=args.seed, token=args.token, port=args.port, rate_limit=bucket,
                         webhook_url=args.webhook_url, signature_key=args.signature_key,
                         faults=Faults(args.fault_rate, args.truncate_rate, args.slow_rate, seed=args.seed))
    pos.serve_until_interrupted(lambda e: (
        f"Square emulator: {e.base_url}  token: {e.token}  ({len(e.store.orders)} orders, "
        f"{len(e.store.locations)} locations, built in {time.monotonic() - started:.1f}s; Ctrl-C to stop)\n"
        f"\nexport SQUARE_TOKEN={e.token}\n\n# plugins.toml\n{e.plugins_toml(args.connector_id)}"))


if __name__ == "__main__":
    main()
