"""ORM method calls of the Odoo emulator, shared by both transports.

JSON-RPC ``execute_kw`` passes positional ``args`` plus ``kwargs``; JSON-2 passes named parameters only. Both
become one dict of named parameters (``METHOD_PARAMS`` gives the positional order), checked as Odoo's method
signatures would check them: an unknown parameter is a ``TypeError``.
"""

from __future__ import annotations

from typing import Any

from .emulator_db import OdooDB, OdooFault
from .emulator_domain import DomainError
from .emulator_models import MODELS

__all__ = ["METHOD_PARAMS", "WRITE_METHODS", "call", "named_params"]

METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "search_read": ("domain", "fields", "offset", "limit", "order"),
    "search": ("domain", "offset", "limit", "order"),
    "search_count": ("domain", "limit"),
    "read": ("ids", "fields"),
    "create": ("vals_list",),
    "write": ("ids", "vals"),
    "action_confirm": ("ids",),
    "action_cancel": ("ids",),
    "action_apply_inventory": ("ids",),
    "context_get": (),
}
WRITE_METHODS = frozenset({"create", "write", "action_confirm", "action_cancel", "action_apply_inventory"})


def named_params(method: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``execute_kw``'s positional ``args`` and ``kwargs`` as named parameters."""
    names = METHOD_PARAMS.get(method)
    if names is None:
        raise OdooFault("builtins.AttributeError", f"The method '{method}' does not exist")
    if len(args) > len(names):
        raise OdooFault("builtins.TypeError", f"{method}() takes {len(names)} positional arguments but "
                                              f"{len(args)} were given")
    params = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key in params:
            raise OdooFault("builtins.TypeError", f"{method}() got multiple values for argument '{key}'")
        params[key] = value
    return params


def call(db: OdooDB, model: str, method: str, params: dict[str, Any]) -> Any:
    """Run one ORM method with named parameters (``context`` included) under the database lock."""
    if model not in MODELS:
        raise OdooFault("builtins.KeyError", f"'{model}'")
    names = METHOD_PARAMS.get(method)
    if names is None:
        raise OdooFault("builtins.AttributeError", f"The method '{method}' does not exist on the model '{model}'")
    params = dict(params)
    context = params.pop("context", None) or {}
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise OdooFault("builtins.TypeError", f"{model}.{method}() got an unexpected keyword argument '{unknown[0]}'")
    try:
        with db.lock:
            return _dispatch(db, model, method, params, context)
    except DomainError as exc:
        raise OdooFault("builtins.ValueError", str(exc)) from None


def _dispatch(db: OdooDB, model: str, method: str, p: dict[str, Any], context: dict) -> Any:
    if method == "search_read":
        ids = db.search(model, p.get("domain") or [], p.get("offset") or 0, p.get("limit"), p.get("order"), context)
        return db.read(model, ids, p.get("fields"))
    if method == "search":
        return db.search(model, p.get("domain") or [], p.get("offset") or 0, p.get("limit"), p.get("order"), context)
    if method == "search_count":
        return len(db.search(model, p.get("domain") or [], 0, p.get("limit"), None, context))
    if method == "read":
        return db.read(model, _ids(p), p.get("fields"))
    if method == "create":
        return db.create(model, p.get("vals_list") or {}, context)
    if method == "write":
        return db.write(model, _ids(p), p.get("vals") or {})
    if method == "context_get":
        return {"lang": "en_US", "tz": "Asia/Hong_Kong", "uid": 2}
    return db.action(model, method, _ids(p))


def _ids(params: dict[str, Any]) -> list[int]:
    ids = params.get("ids")
    if isinstance(ids, int):
        return [ids]
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise OdooFault("builtins.TypeError", f"ids must be a list of integers, got {ids!r}")
    return ids
