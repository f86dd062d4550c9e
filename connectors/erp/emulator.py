"""A local Odoo for tests, benchmarks and demos: JSON-RPC ``/jsonrpc`` and JSON-2 ``/json/2/<model>/<method>``.

Run ``python -m storesync.connectors.erp.emulator`` (prints the URL, the API key and a ready plugins.toml
section), or in tests::

    with OdooEmulator(database="shop", api_key="odoo_test_key") as odoo:
        odoo.url, odoo.db.tables["sale.order"]

Both transports answer from one in-memory database (``emulator_db.OdooDB``) with Odoo's domain operators,
``write_date`` bookkeeping, reservations driven by confirmed sale orders, and stock writes in inventory mode.

- JSON-RPC: ``common.authenticate`` / ``login`` return the uid or ``False``; ``object.execute_kw`` checks the
  database, the uid's session and the key. Errors come back with HTTP 200 as
  ``{"error": {"code": 200, "message": "Odoo Server Error", "data": {"name", "message", "arguments",
  "context", "debug"}}}``; an expired session is code 100 (``odoo.http.SessionExpiredException``).
- JSON-2: ``Authorization: bearer <api key>``, optional ``X-Odoo-Database``; the bare result, or a 4xx/5xx
  with ``{name, message, arguments, context, debug}`` (401 "Invalid apikey").

Fault injection (attributes a test may change while it runs): ``faults`` (seeded 500/502/503, truncated bodies,
slow replies; see the Shopify emulator's ``Faults``), ``lose_write_replies`` (the next N writes are applied, then
answered 502, as when a proxy drops the reply), ``write_delays`` (``{"sale.order.create": 30.0}``: seconds to
wait after applying that write before replying), ``expire_sessions()``, ``denied_models`` (AccessError), ``db.vanished`` (ids that read as deleted).
Every applied write is logged in ``writes``. Test hooks (``sale_orders``, ``odoo_call``, and the scenario hooks
``add_product``, ``receive``, ``set_on_hand`` of ``emulator_hooks``) are never faulted or logged. Deliberate simplifications are listed in ``DEVIATIONS``.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterable
from typing import Any

import orjson

from ...core.emulation import LoopbackEmulator
from ..shopify.emulator import Faults, RequestLog, Write, _Handler, _Reply
from . import emulator_hooks
from .emulator_api import WRITE_METHODS, call, named_params
from .emulator_db import OdooDB, OdooFault
from .emulator_models import seed

__all__ = ["DEVIATIONS", "Faults", "OdooEmulator", "Write", "main"]

DEVIATIONS = """\
- One company, one currency (HKD), no taxes, units of measure, pricelists, lots or packages.
- /jsonrpc has no sessions in Odoo (each execute_kw carries the key); the emulator models a session per uid so
  the client's re-authentication on code 100 can be tested. XML-RPC and /web/session are not served.
- JSON-2 status codes per exception (AccessError 403, MissingError 404, ValidationError/UserError and bad
  arguments 422) are unconfirmed [U]; each call runs alone under one lock, like its own transaction.
- Confirming an order reserves stock on quants directly (no pickings or stock.move); cancelling releases it.
- Sale order lines take only (0, 0, vals) commands.
"""

_STATUS = {"odoo.exceptions.AccessError": 403, "odoo.exceptions.AccessDenied": 401,
           "odoo.exceptions.MissingError": 404, "odoo.exceptions.ValidationError": 422,
           "odoo.exceptions.UserError": 422, "builtins.TypeError": 422, "builtins.ValueError": 422}


def _json(status: int, payload: Any) -> _Reply:
    return _Reply(status, orjson.dumps(payload))


def _error_data(fault: OdooFault) -> dict[str, Any]:
    return {"name": fault.name, "message": fault.message, "arguments": [fault.message], "context": {},
            "debug": f"Traceback (most recent call last):\n  ...\n{fault.name}: {fault.message}\n"}


class OdooEmulator(LoopbackEmulator):
    """The database plus an HTTP server on 127.0.0.1; use as a context manager or ``start()``/``stop()``."""

    handler_class = _Handler
    thread_name = "odoo-emulator"

    def __init__(self, *, database: str = "odoo", login: str = "admin", api_key: str = "odoo_emulator_key",
                 partners: int = 40, products: int = 20, orders: int = 30, seed_value: int = 0,
                 faults: Faults | None = None, port: int = 0, version: str = "18.0") -> None:
        self.database, self.login, self.api_key, self.version = database, login, api_key, version
        self.db = OdooDB(seed(partners, products, orders, seed_value))
        self.faults = faults or Faults(seed=seed_value)
        self.writes: list[Write] = []
        self.requests = RequestLog()
        self.lose_write_replies = 0
        self.write_delays: dict[str, float] = {}
        self.denied_models: set[str] = set()
        self.sessions: set[int] = set()
        self.uid = 2
        self._init_server(port)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.base_url

    def plugins_toml(self, connector_id: str = "erp", key_env: str = "ODOO_API_KEY", transport: str = "jsonrpc") -> str:
        """A ready ``[connectors.<id>]`` table pointing at this emulator."""
        return (f'[connectors.{connector_id}]\ntype = "odoo"\nurl = "{self.url}"\ndatabase = "{self.database}"\n'
                f'login = "{self.login}"\napi_key = "${{{key_env}}}"\ntransport = "{transport}"\n')

    # -- test hooks (never faulted, not logged as writes)
    def expire_sessions(self) -> None:
        """Every JSON-RPC uid must authenticate again (its next execute_kw gets code 100)."""
        self.sessions.clear()

    def sale_orders(self, **match: Any) -> list[dict[str, Any]]:
        """Sale orders whose stored fields equal ``match`` (e.g. ``client_order_ref="shop:1"``)."""
        with self.db.lock:
            return [dict(r) for r in self.db.tables["sale.order"].values()
                    if all(r.get(k) == v for k, v in match.items())]

    def odoo_call(self, model: str, method: str, **params: Any) -> Any:
        """Run an ORM method directly (no HTTP, no faults, not logged)."""
        return call(self.db, model, method, params)

    # -- scenario hooks (emulator_hooks): one chosen SKU in the catalogue, stock arriving or counted now
    def location_id(self, complete_name: str = "WH/Stock") -> int:
        """The id of the internal stock location called ``complete_name``."""
        found = self.db.search("stock.location", [("complete_name", "=", complete_name)])
        if len(found) != 1:
            raise KeyError(f"no single Odoo stock.location {complete_name!r}")
        return found[0]

    def add_product(self, sku: str, name: str, *, price: float = 88.0) -> int:
        """A storable product.product whose ``default_code`` is ``sku``; returns its id."""
        return emulator_hooks.add_product(self.db, sku, name, price=price)

    def receive(self, sku: str, quantity: float, *, location: str = "WH/Stock") -> None:
        """Stock arrives now: the quant of (``sku``, internal ``location``) goes up by ``quantity``."""
        emulator_hooks.receive(self.db, sku, quantity, location=location)

    def set_on_hand(self, sku: str, quantity: float, *, location: str = "WH/Stock") -> None:
        """The on-hand quantity of (``sku``, internal ``location``) becomes ``quantity`` now."""
        emulator_hooks.set_on_hand(self.db, sku, quantity, location=location)

    # -- request handling
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[_Reply, bool, float]:
        """(reply, truncate, delay) for one request."""
        path = raw_path.split("?", 1)[0]
        if self.faults.throttled():  # a proxy in front of Odoo refusing a burst
            return _Reply(429, b"<html><body><h1>429 Too Many Requests</h1></body></html>",
                          (("Content-Type", "text/html"), ("Retry-After", f"{self.faults.burst_retry_after:g}"))), \
                False, 0.0
        error, truncate, slow = self.faults.draw()
        delay = self.faults.slow_seconds if slow else 0.0
        if error is not None:
            return _Reply(error, b"<html><body><h1>%d Server Error</h1></body></html>" % error,
                          (("Content-Type", "text/html"),)), False, delay
        try:
            payload = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            payload = None
        if method == "POST" and path == "/jsonrpc":
            reply, extra = self._jsonrpc(payload)
        elif method == "POST" and path.startswith("/json/2/"):
            reply, extra = self._json2(path, headers, payload)
        else:
            reply, extra = _json(404, {"name": "werkzeug.exceptions.NotFound", "message": f"{method} {path}"}), 0.0
        return reply, truncate, delay + extra

    def _jsonrpc(self, payload: Any) -> tuple[_Reply, float]:
        rpc_id = payload.get("id") if isinstance(payload, dict) else None
        params = payload.get("params") if isinstance(payload, dict) else None
        if not isinstance(params, dict):
            return _json(200, {"jsonrpc": "2.0", "id": rpc_id, "error": {
                "code": 200, "message": "Odoo Server Error",
                "data": _error_data(OdooFault("builtins.ValueError", "expected a JSON-RPC call"))}}), 0.0
        service, method, args = params.get("service"), params.get("method"), params.get("args") or []
        self.requests.add(f"{service}.{method}")
        try:
            result, lost, delay = self._rpc(service, method, args)
        except _SessionExpired:
            return _json(200, {"jsonrpc": "2.0", "id": rpc_id, "error": {
                "code": 100, "message": "Odoo Session Expired",
                "data": _error_data(OdooFault("odoo.http.SessionExpiredException", "Session expired"))}}), 0.0
        except OdooFault as fault:
            return _json(200, {"jsonrpc": "2.0", "id": rpc_id, "error": {
                "code": 200, "message": "Odoo Server Error", "data": _error_data(fault)}}), 0.0
        if lost:
            return _Reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>"), delay
        return _json(200, {"jsonrpc": "2.0", "id": rpc_id, "result": result}), delay

    def _rpc(self, service: Any, method: Any, args: list) -> tuple[Any, bool, float]:
        if service == "common" and method in ("authenticate", "login"):
            db, login, key = (list(args) + [None] * 3)[:3]
            self._check_db(db)
            if login != self.login or key != self.api_key:
                return False, False, 0.0
            self.sessions.add(self.uid)
            return self.uid, False, 0.0
        if service == "common" and method == "version":
            return {"server_version": self.version, "protocol_version": 1}, False, 0.0
        if service != "object" or method != "execute_kw" or len(args) < 5:
            raise OdooFault("builtins.NameError", f"service {service!r} has no method {method!r}")
        db, uid, key, model, orm_method = args[:5]
        self._check_db(db)
        if uid != self.uid or key != self.api_key:
            raise OdooFault("odoo.exceptions.AccessDenied", "Access Denied")
        if uid not in self.sessions:
            raise _SessionExpired()
        params = named_params(orm_method, list(args[5] if len(args) > 5 else []), dict(args[6] if len(args) > 6 else {}))
        return self._orm(model, orm_method, params)

    def _json2(self, path: str, headers: Any, payload: Any) -> tuple[_Reply, float]:
        parts = path[len("/json/2/"):].split("/")
        self.requests.add("/".join(parts))
        scheme, _, key = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or key != self.api_key:
            return _json(401, _error_data(OdooFault("werkzeug.exceptions.Unauthorized", "Invalid apikey"))), 0.0
        database = headers.get("X-Odoo-Database")
        if len(parts) != 2 or (database and database != self.database) or not isinstance(payload, dict):
            why = "unknown database" if database and database != self.database else "expected /json/2/<model>/<method> with a JSON object body"
            return _json(400, _error_data(OdooFault("werkzeug.exceptions.BadRequest", why))), 0.0
        try:
            result, lost, delay = self._orm(parts[0], parts[1], payload)
        except OdooFault as fault:
            return _json(_STATUS.get(fault.name, 500), _error_data(fault)), 0.0
        if lost:
            return _Reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>"), delay
        return _json(200, result), delay

    def _orm(self, model: str, method: str, params: dict) -> tuple[Any, bool, float]:
        """(result, reply lost?, delay) of one ORM call; writes are logged and may be faulted."""
        if model in self.denied_models:
            raise OdooFault("odoo.exceptions.AccessError",
                            f"You are not allowed to access '{model}' records.\n\nThis operation is allowed for "
                            f"the following groups:\n\t- User types/Internal User")
        result = call(self.db, model, method, params)
        if method not in WRITE_METHODS:
            return result, False, 0.0
        with self._lock:
            self.writes.append(Write("POST", f"{model}.{method}", params))
            lost = self.lose_write_replies > 0
            self.lose_write_replies -= 1 if lost else 0
        return result, lost, self.write_delays.get(f"{model}.{method}", 0.0)

    def _check_db(self, db: Any) -> None:
        if db != self.database:
            raise OdooFault("psycopg2.OperationalError", f'connection to server failed: FATAL:  database "{db}" '
                                                         "does not exist")


class _SessionExpired(Exception):
    pass


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m storesync.connectors.erp.emulator",
                                     description="Serve a fake Odoo (JSON-RPC and JSON-2) on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--database", default="odoo")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--api-key", default="odoo_emulator_key")
    parser.add_argument("--partners", type=int, default=40)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--orders", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--connector-id", default="erp")
    parser.add_argument("--transport", choices=("jsonrpc", "json2"), default="jsonrpc")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--truncate-rate", type=float, default=0.0)
    args = parser.parse_args(list(argv) if argv is not None else None)
    odoo = OdooEmulator(database=args.database, login=args.login, api_key=args.api_key, partners=args.partners,
                        products=args.products, orders=args.orders, seed_value=args.seed, port=args.port,
                        faults=Faults(args.fault_rate, args.truncate_rate, seed=args.seed))
    def banner(e: OdooEmulator) -> str:
        tables = e.db.tables
        return (f"Odoo emulator: {e.url}  database: {e.database}  login: {e.login}  api key: {e.api_key}"
                f"  ({len(tables['res.partner'])} partners, {len(tables['product.product'])} products, "
                f"{len(tables['sale.order'])} sale orders; Ctrl-C to stop)\n\nexport ODOO_API_KEY={e.api_key}\n\n"
                f"# plugins.toml\n{e.plugins_toml(args.connector_id, transport=args.transport)}")

    odoo.serve_until_interrupted(banner)


if __name__ == "__main__":
    main()
