"""Wire helpers of the Square emulator: error replies, opaque cursors, limits, pages and timestamps.

Cursors are opaque: base64 of the position plus a fingerprint of the query they belong to. GET lists take
``?cursor=``; POST searches take ``"cursor"`` in the body and must resend the original query, else
``INVALID_CURSOR``, as on Square.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from typing import Any

import orjson

from .emulator_data import stamp

__all__ = ["ApiError", "decode_cursor", "encode_cursor", "fingerprint", "limit_of", "page", "timestamp"]


class ApiError(Exception):
    """An error reply: ``{"errors": [{category, code, detail, field}]}`` with an HTTP status."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None,
                 category: str = "INVALID_REQUEST_ERROR") -> None:
        super().__init__(detail)
        error = {"category": category, "code": code, "detail": detail, **({"field": field} if field else {})}
        self.status, self.payload = status, {"errors": [error]}


def fingerprint(body: dict) -> str:
    """A short hash of a request body without its cursor."""
    query = {k: v for k, v in body.items() if k != "cursor"}
    return hashlib.sha1(orjson.dumps(query, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def encode_cursor(body: dict, position: Any) -> str:
    raw = orjson.dumps({"q": fingerprint(body), "p": position})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(body: dict) -> Any:
    """The position of ``body["cursor"]`` (None without one); INVALID_CURSOR if it is bad or the query changed."""
    text = body.get("cursor")
    if text is None:
        return None
    try:
        state = orjson.loads(base64.urlsafe_b64decode(str(text) + "=" * (-len(str(text)) % 4)))
        if state["q"] == fingerprint(body):
            return state["p"]
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        pass
    raise ApiError(400, "INVALID_CURSOR", "The cursor is invalid or does not belong to this query.", field="cursor")


def limit_of(body: dict, default: int, maximum: int) -> int:
    value = body.get("limit", default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise ApiError(400, "INVALID_VALUE" if isinstance(value, int) else "INCORRECT_TYPE",
                       f"limit must be an integer between 1 and {maximum}.", field="limit")
    return value


def page(items: list[bytes], key: str, body: dict, next_position: Any) -> bytes:
    out = b'{"%s":[%s]' % (key.encode(), b",".join(items)) if items else b"{"
    if next_position is not None:
        out += (b"," if items else b"") + b'"cursor":' + orjson.dumps(encode_cursor(body, next_position))
    return out + b"}"


def timestamp(value: Any, field: str) -> str:
    """An RFC 3339 filter value in the emulator's stored form (``...T..:..:..mmmZ``), for string comparison."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "INVALID_TIME", f"{value!r} is not an RFC 3339 timestamp.", field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return stamp(round(moment.timestamp() * 1000))
