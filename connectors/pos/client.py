"""A small Square Connect v2 client on top of :class:`~storesync.core.http.HttpClient`.

``HttpClient`` does timeouts, retries (429 ``RATE_LIMITED`` and 5xx with exponential backoff and full jitter,
truncated bodies), the retry budget and redaction. This module adds what is Square's own: the bearer token and
``Square-Version`` headers, the two cursor styles (``?cursor=`` on GET lists, ``"cursor"`` in the body of POST
searches, which must resend the original query) and error bodies ``{"errors": [{category, code, detail, field}]}``
turned into messages that carry Square's category and code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from ...core.errors import FatalSyncError
from ...core.http import HttpClient, HttpSettings

__all__ = ["SquareApiError", "SquareClient", "describe_errors"]


class SquareApiError(FatalSyncError):
    """Square answered 4xx with an error body; ``codes`` lists its error codes (``INVALID_CURSOR``, ...)."""

    def __init__(self, message: str, *, codes: list[str], status: int, hint: str | None = None,
                 **context: Any) -> None:
        super().__init__(message, hint=hint, **context)
        self.codes, self.status = codes, status


def describe_errors(data: Any) -> tuple[str, list[str]]:
    """``("INVALID_REQUEST_ERROR/INVALID_CURSOR: detail (field: cursor); ...", codes)`` of a Square error body."""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list) or not errors:
        return "no error details in the response body", []
    parts, codes = [], []
    for err in errors:
        if not isinstance(err, dict):
            continue
        code = str(err.get("code") or "?")
        codes.append(code)
        text = f"{err.get('category') or '?'}/{code}"
        if err.get("detail"):
            text += f": {err['detail']}"
        if err.get("field"):
            text += f" (field: {err['field']})"
        parts.append(text)
    return "; ".join(parts), codes


_HINTS = {"INVALID_CURSOR": "the cursor expired or the query changed; run again with --full-refresh",
          "NOT_FOUND": "check base_url and the location ids in plugins.toml",
          "INSUFFICIENT_SCOPES": "grant the access token the scopes this sync needs"}


class SquareClient:
    """Calls one Square account: ``get``, ``post``, ``get_pages`` and ``post_pages``."""

    def __init__(self, *, name: str, base_url: str, token: str, square_version: str,
                 settings: HttpSettings | None = None, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}", "Square-Version": square_version,
                   "Accept": "application/json"}
        self.http = HttpClient(name=name, base_url=base_url.rstrip("/"), headers=headers, settings=settings,
                               transport=transport, secrets=[token], **({"sleep": sleep} if sleep else {}))

    @property
    def requests_made(self) -> int:
        """Every HTTP attempt sent by this client, retries included."""
        return self.http.requests_made

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict:
        """GET ``path``; a 4xx becomes :class:`SquareApiError` (401/403 raise in ``HttpClient``)."""
        data, response = self.http.get_json(path, **({"params": dict(params)} if params else {}))
        return self._checked("GET", path, data, response)

    def post(self, path: str, body: Mapping[str, Any]) -> dict:
        """POST a JSON body. Searches and idempotency-keyed writes are safe to repeat, so 5xx are retried."""
        data, response = self.http.post_json(path, json=dict(body), idempotent=True)
        return self._checked("POST", path, data, response)

    def get_pages(self, path: str, key: str, params: Mapping[str, Any] | None = None) -> Iterator[list[dict]]:
        """Each page of a GET list: the cursor goes back as ``?cursor=`` beside the original parameters."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        while True:
            data = self.get(path, query)
            yield self._items(data, key, "GET", path)
            cursor = data.get("cursor")
            if not cursor:
                return
            query = {**query, "cursor": cursor}

    def post_pages(self, path: str, key: str, body: Mapping[str, Any]) -> Iterator[list[dict]]:
        """Each page of a POST search: the cursor goes in the body together with the original query."""
        request = dict(body)
        while True:
            data = self.post(path, request)
            yield self._items(data, key, "POST", path)
            cursor = data.get("cursor")
            if not cursor:
                return
            request = {**body, "cursor": cursor}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SquareClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals
    def _checked(self, method: str, path: str, data: Any, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            detail, codes = describe_errors(data)
            hint = next((_HINTS[c] for c in codes if c in _HINTS), None)
            raise SquareApiError(f"{self.http.name}: {method} {path}: HTTP {response.status_code} {detail}",
                                 codes=codes, status=response.status_code, hint=hint, connector=self.http.name)
        if not isinstance(data, dict):
            raise FatalSyncError(f"{self.http.name}: {method} {path}: expected a JSON object, got "
                                 f"{type(data).__name__}", connector=self.http.name)
        return data

    def _items(self, data: dict, key: str, method: str, path: str) -> list[dict]:
        items = data.get(key, [])  # Square omits an empty list altogether
        if not isinstance(items, list):
            raise FatalSyncError(f"{self.http.name}: {method} {path}: expected {key!r} to be a list, got "
                                 f"{type(items).__name__}", connector=self.http.name)
        return items
