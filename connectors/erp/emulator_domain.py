"""Odoo search domains evaluated in memory, for the emulator.

A domain is a list of leaves ``[field, operator, value]`` and the prefix operators ``"&"`` and ``"|"`` (two
operands) and ``"!"`` (one operand); what is left on the stack is ANDed, as in Odoo. ``(1, "=", 1)`` and
``(0, "=", 1)`` are the constant true and false leaves. Fields may be dotted (``partner_id.email``) through
many2one fields.

Operators: ``= != > >= < <= in "not in" like "not like" ilike "not ilike" =like =ilike child_of parent_of``.
As in Odoo, ``False`` compared with ``=``/``!=`` means "not set", ``like``/``ilike`` match a substring, and
``=like``/``=ilike`` take SQL patterns (``%`` any run, ``_`` one character).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

__all__ = ["DomainError", "OPERATORS", "Resolver", "compile_domain"]

Predicate = Callable[[dict[str, Any]], bool]

OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "in", "not in", "like", "not like", "ilike", "not ilike",
             "=like", "=ilike", "child_of", "parent_of")


class DomainError(ValueError):
    """A malformed domain: Odoo answers these with a ``ValueError``."""


class Resolver(Protocol):
    """What the evaluator needs from the database: field values along dotted paths and hierarchy."""

    def value(self, model: str, record: dict[str, Any], path: str) -> Any:
        """The value at ``path`` (raising ``DomainError`` for an unknown field)."""

    def ancestors(self, model: str, record_id: int) -> list[int]:
        """``record_id`` and the ids of its parents, nearest first (for child_of / parent_of)."""

    def field_model(self, model: str, path: str) -> str | None:
        """The comodel a (many2one) field points at, or the model itself for ``id``."""


def compile_domain(domain: Any, model: str, db: Resolver) -> Predicate:
    """Compile ``domain`` into a predicate over the records of ``model``."""
    if not isinstance(domain, list | tuple):
        raise DomainError(f"Invalid domain: expected a list, got {type(domain).__name__}")
    stack: list[Predicate] = []
    for token in reversed(domain):
        if token in ("&", "|"):
            if len(stack) < 2:
                raise DomainError(f"Invalid domain: {token!r} needs two operands")
            left, right = stack.pop(), stack.pop()
            stack.append(_and(left, right) if token == "&" else _or(left, right))
        elif token == "!":
            if not stack:
                raise DomainError("Invalid domain: '!' needs an operand")
            inner = stack.pop()
            stack.append(lambda rec, inner=inner: not inner(rec))
        else:
            stack.append(_leaf(token, model, db))
    return _all(stack[::-1])


def _and(a: Predicate, b: Predicate) -> Predicate:
    return lambda rec: a(rec) and b(rec)


def _or(a: Predicate, b: Predicate) -> Predicate:
    return lambda rec: a(rec) or b(rec)


def _all(predicates: list[Predicate]) -> Predicate:
    return lambda rec: all(p(rec) for p in predicates)


def _leaf(token: Any, model: str, db: Resolver) -> Predicate:
    if not isinstance(token, list | tuple) or len(token) != 3:
        raise DomainError(f"Invalid leaf {token!r}: expected [field, operator, value]")
    path, op, value = token
    if path in (0, 1) and op == "=" and value == 1:
        return lambda rec, truth=bool(path): truth
    if not isinstance(path, str):
        raise DomainError(f"Invalid leaf {token!r}: the field must be a string")
    if op not in OPERATORS:
        raise DomainError(f"Invalid leaf {token!r}: unknown operator {op!r}")
    if op in ("child_of", "parent_of"):
        return _hierarchy(path, op, value, model, db)
    test = _comparison(op, value)
    db.value(model, {}, path)  # an unknown field fails now, not per record
    return lambda rec: test(db.value(model, rec, path))


def _comparison(op: str, value: Any) -> Callable[[Any], bool]:
    if op in ("=", "!="):
        want = _unset if value is False or value is None else lambda v: _eq(v, value)
        return want if op == "=" else (lambda v: not want(v))
    if op in (">", ">=", "<", "<="):
        return _ordering(op, value)
    if op in ("in", "not in"):
        if not isinstance(value, list | tuple):
            raise DomainError(f"Invalid leaf: {op!r} takes a list, got {value!r}")
        inside = lambda v: any((_unset(v) if x is False else _eq(v, x)) for x in value)  # noqa: E731
        return inside if op == "in" else (lambda v: not inside(v))
    return _pattern(op, value)


def _unset(v: Any) -> bool:
    return v is None or v is False


def _eq(v: Any, want: Any) -> bool:
    if isinstance(v, datetime) and isinstance(want, str):
        return v == _moment(want)
    if isinstance(v, list):  # a x2many field holds the value when one of its ids does
        return want in v
    return v == want


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise DomainError(f"Invalid datetime {text!r}: expected 'YYYY-MM-DD HH:MM:SS'") from None


def _ordering(op: str, value: Any) -> Callable[[Any], bool]:
    compare = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
               "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}[op]

    def test(v: Any) -> bool:
        if _unset(v) or value is False or value is None:
            return False
        want = _moment(value) if isinstance(v, datetime) and isinstance(value, str) else value
        try:
            return compare(v, want)
        except TypeError:
            raise DomainError(f"Invalid leaf: cannot compare {v!r} {op} {value!r}") from None
    return test


def _pattern(op: str, value: Any) -> Callable[[Any], bool]:
    negate = op.startswith("not ")
    base = op.removeprefix("not ")
    text = "" if value is None or value is False else str(value)
    flags = re.IGNORECASE if base in ("ilike", "=ilike") else 0
    if base.startswith("="):
        regex = re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in text) + r"\Z",
                           flags | re.DOTALL)
        match = lambda v: not _unset(v) and regex.match(str(v)) is not None  # noqa: E731
    else:
        needle = text.lower() if flags else text
        match = lambda v: not _unset(v) and needle in (str(v).lower() if flags else str(v))  # noqa: E731
    return (lambda v: not match(v)) if negate else match


def _hierarchy(path: str, op: str, value: Any, model: str, db: Resolver) -> Predicate:
    wanted = set(value if isinstance(value, list | tuple) else [value])
    comodel = db.field_model(model, path)
    if comodel is None:
        raise DomainError(f"Invalid leaf: {op!r} needs a many2one field or 'id', got {path!r}")

    def test(rec: dict[str, Any]) -> bool:
        own = db.value(model, rec, path)
        if _unset(own):
            return False
        if op == "child_of":
            return bool(wanted.intersection(db.ancestors(comodel, own)))
        return any(own in db.ancestors(comodel, w) for w in wanted)
    return test
