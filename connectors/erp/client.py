"""Odoo clients for the two transports, on top of :class:`~storesync.core.http.HttpClient`.

Both offer ``call(model, method, ids=None, **params)`` with named parameters (``domain``, ``fields``,
``limit``, ``offset``, ``order``, ``context``, ``vals_list``, ``vals``...):

- :class:`JsonRpcClient` (Odoo up to 18, deprecated in 19): ``common.authenticate`` once for the uid, then
  ``object.execute_kw(db, uid, key, model, method, [ids], params)`` on ``POST /jsonrpc``. An expired session
  (error code 100) re-authenticates once and repeats the call.
- :class:`Json2Client` (Odoo 19+): ``POST /json/2/<model>/<method>`` with ``Authorization: bearer <key>`` and
  ``X-Odoo-Database``; the body holds the named parameters, the answer is the bare result.

Odoo's errors become storesync's (``describe``): ``AccessError``, ``AccessDenied`` and an invalid key are
:class:`OdooError` (fatal, with a fix-it hint); ``MissingError``, ``ValidationError`` and ``UserError`` concern
the records of one call and are :class:`OdooRecordError` (skippable: the caller quarantines that record).
Reads are retried on 5xx and truncated bodies; writes are not (the caller looks up before trying again).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import httpx

from ...core.errors import FatalSyncError, SkippableRecordError, StoresyncError
from ...core.http import HttpClient, HttpSettings

__all__ = ["Json2Client", "JsonRpcClient", "OdooClient", "OdooError", "OdooRecordError", "describe", "odoo_error"]

READ_METHODS = frozenset({"search_read", "search", "search_count", "read", "context_get", "fields_get"})
KEY_HINT = ("check login and api_key in plugins.toml; Odoo API keys last at most 3 months: create a new one "
            "in Odoo under Preferences > Account Security > New API Key and set the environment variable that "
            "api_key names (e.g. ODOO_API_KEY)")
RECORD_ERRORS = frozenset({"MissingError", "ValidationError", "UserError"})


class OdooError(FatalSyncError):
    """Odoo refused a call in a way no retry fixes; ``name`` is Odoo's exception name (``AccessError``...)."""

    def __init__(self, message: str, *, name: str, hint: str | None = None, **context: Any) -> None:
        super().__init__(message, hint=hint, **context)
        self.name = name


class OdooRecordError(SkippableRecordError):
    """Odoo refused the records of one call (``MissingError``, ``ValidationError``, ``UserError``)."""

    def __init__(self, message: str, *, name: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.name = name


def describe(data: Any) -> tuple[str, str]:
    """``(short exception name, message)`` of an Odoo error payload (JSON-RPC ``data`` or a JSON-2 body)."""
    if not isinstance(data, dict):
        return "UnknownError", "no error details in the response"
    name = str(data.get("name") or "UnknownError").rsplit(".", 1)[-1]
    message = str(data.get("message") or "").strip() or "no message"
    return name, message


def odoo_error(client: str, where: str, data: Any, *, login: str) -> StoresyncError:
    """The storesync error for an Odoo error payload met while calling ``where`` (``model.method``)."""
    name, message = describe(data)
    text = f"{client}: {where}: Odoo {name}: {message}"
    if name in RECORD_ERRORS:
        return OdooRecordError(text, name=name, connector=client)
    hints = {"AccessDenied": KEY_HINT, "Unauthorized": KEY_HINT,
             "AccessError": f"give the Odoo user {login!r} access to {where.rsplit('.', 1)[0]!r}, e.g. the Sales "
                            "and Inventory user groups, or sync only the streams it may read",
             "OperationalError": "check `database` in plugins.toml (the name shown on Odoo's database selector)"}
    return OdooError(text, name=name, hint=hints.get(name), connector=client)


class OdooClient:
    """What both transports share: the HTTP client, the names for messages, ``call``."""

    transport_name = "?"

    def __init__(self, *, name: str, url: str, database: str, login: str, api_key: str,
                 settings: HttpSettings | None = None, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] | None = None, headers: dict[str, str] | None = None) -> None:
        self.name, self.database, self.login = name, database, login
        self._key = api_key
        self.http = HttpClient(name=name, base_url=url.rstrip("/"), headers=headers, settings=settings,
                               transport=transport, secrets=[api_key], auth_hint=KEY_HINT,
                               **({"sleep": sleep} if sleep else {}))

    def call(self, model: str, method: str, ids: list[int] | None = None, **params: Any) -> Any:
        """Run ``model.method`` with named parameters; return Odoo's result."""
        raise NotImplementedError

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> OdooClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class JsonRpcClient(OdooClient):
    """``/jsonrpc``: authenticate once, then ``execute_kw``; re-authenticates once when the session expired."""

    transport_name = "JSON-RPC"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.uid: int | None = None
        self.authentications = 0
        self._ids = itertools.count(1)

    def authenticate(self) -> int:
        """``common.authenticate(db, login, key, {})``; an answer of ``False`` means bad credentials."""
        uid = self._rpc("common", "authenticate", [self.database, self.login, self._key, {}], "common.authenticate",
                        idempotent=True)
        self.authentications += 1
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise OdooError(f"{self.name}: Odoo refused login {self.login!r} on database {self.database!r}",
                            name="AccessDenied", hint=KEY_HINT, connector=self.name)
        self.uid = uid
        return uid

    def call(self, model: str, method: str, ids: list[int] | None = None, **params: Any) -> Any:
        if self.uid is None:
            self.authenticate()
        try:
            return self._execute(model, method, ids, params)
        except _SessionExpired:
            self.authenticate()
        try:
            return self._execute(model, method, ids, params)
        except _SessionExpired:
            raise OdooError(f"{self.name}: {model}.{method}: the Odoo session expired again right after logging in",
                            name="SessionExpired", hint="check the Odoo server's session settings",
                            connector=self.name) from None

    def _execute(self, model: str, method: str, ids: list[int] | None, params: dict[str, Any]) -> Any:
        args = [self.database, self.uid, self._key, model, method, [ids] if ids is not None else [], params]
        return self._rpc("object", "execute_kw", args, f"{model}.{method}", idempotent=method in READ_METHODS)

    def _rpc(self, service: str, method: str, args: list, where: str, *, idempotent: bool) -> Any:
        body = {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args},
                "id": next(self._ids)}
        data, response = self.http.post_json("/jsonrpc", json=body, idempotent=idempotent)
        if not isinstance(data, dict):
            raise FatalSyncError(f"{self.name}: {where}: HTTP {response.status_code} without a JSON-RPC answer",
                                 hint="check url in plugins.toml: it must be the Odoo server's address",
                                 connector=self.name)
        error = data.get("error")
        if error is None:
            return data.get("result")
        if isinstance(error, dict) and error.get("code") == 100:
            raise _SessionExpired()
        raise odoo_error(self.name, where, error.get("data") if isinstance(error, dict) else None, login=self.login)


class Json2Client(OdooClient):
    """``/json/2/<model>/<method>`` with a bearer API key (Odoo 19+); every call stands alone."""

    transport_name = "JSON-2"

    def __init__(self, **kwargs: Any) -> None:
        headers = {"Authorization": f"bearer {kwargs['api_key']}", "X-Odoo-Database": kwargs["database"],
                   "Accept": "application/json"}
        super().__init__(headers=headers, **kwargs)

    def call(self, model: str, method: str, ids: list[int] | None = None, **params: Any) -> Any:
        body = {"ids": ids, **params} if ids is not None else params
        path = f"/json/2/{model}/{method}"
        data, response = self.http.post_json(path, json=body, idempotent=method in READ_METHODS)
        if response.status_code >= 400:
            raise odoo_error(self.name, f"{model}.{method}", data, login=self.login)
        return data


class _SessionExpired(Exception):
    """JSON-RPC error code 100."""
