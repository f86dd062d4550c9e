"""A small Shopify Admin REST client on top of :class:`~storesync.core.http.HttpClient`.

``HttpClient`` does timeouts, retries (429 with ``Retry-After``, 5xx, truncated bodies), the retry budget and
redaction; this module adds what is Shopify's own: the ``X-Shopify-Access-Token`` header, the leaky-bucket pacer
and cursor paging through ``Link`` headers. Filters go on the first request only; every following page is
fetched from the ``rel="next"`` URL exactly as Shopify sent it (it carries only ``page_info`` and ``limit``; adding
a filter there is a 400).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import orjson

from ...core.connector import RawPage
from ...core.errors import FatalSyncError
from ...core.http import HttpClient, HttpSettings, LeakyBucketPacer

__all__ = ["ShopifyClient", "decode_page", "next_link", "parse_link_header"]

# one link-value: <uri> followed by any number of ;-separated parameters (quoted values may hold , and ;)
_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[^;,="]+(?:\s*=\s*(?:"[^"]*"|[^;,"]*))?)*)')
_PARAM = re.compile(r';\s*([^;,="\s]+)\s*(?:=\s*(?:"([^"]*)"|([^;,"]*)))?')


def parse_link_header(value: str | None) -> dict[str, str]:
    """``{rel: url}`` of an RFC 8288 ``Link`` header; a rel listing several relation types maps each of them.

    Tolerates extra whitespace, unquoted or upper-case ``rel`` values, other parameters and commas inside URLs.
    """
    links: dict[str, str] = {}
    for match in _LINK.finditer(value or ""):
        url, params = match.group(1).strip(), match.group(2)
        for name, quoted, bare in _PARAM.findall(params):
            if name.lower() == "rel":
                for rel in (quoted if quoted else bare).split():
                    links.setdefault(rel.lower(), url)
    return links


def decode_page(body: bytes, key: str) -> list[Any]:
    """The ``key`` list of a list response's body; ``ValueError`` if the body is not such an object."""
    data = orjson.loads(body)  # orjson.JSONDecodeError is a ValueError
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"expected a JSON object with a {key!r} list, got {type(data).__name__}")
    return items


def next_link(response: httpx.Response) -> str | None:
    """The ``rel="next"`` URL of a list response, or None on the last page."""
    return parse_link_header(response.headers.get("Link")).get("next") or None


class ShopifyClient:
    """Reads one shop's Admin REST API: ``get(path)`` and ``pages(resource, params)``."""

    def __init__(self, *, name: str, base_url: str, token: str, api_version: str,
                 settings: HttpSettings | None = None, pacing: bool = True, bucket_size: int = 40,
                 leak_rate: float = 2.0, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.api_version = api_version
        self.base_url = base_url.rstrip("/")
        pacer = None
        if pacing:
            pacer = LeakyBucketPacer(bucket_size, leak_rate, headroom=min(4, bucket_size - 1),
                                     **({"sleep": sleep} if sleep else {}))
        self.http = HttpClient(name=name, base_url=self.base_url, headers={"X-Shopify-Access-Token": token},
                               settings=settings, pacer=pacer, transport=transport, secrets=[token],
                               **({"sleep": sleep} if sleep else {}))

    @property
    def requests_made(self) -> int:
        """Every HTTP attempt sent by this client, retries included."""
        return self.http.requests_made

    def path(self, resource: str) -> str:
        """``/admin/api/{version}/{resource}.json``."""
        return f"/admin/api/{self.api_version}/{resource}.json"

    def get(self, resource: str, params: Mapping[str, Any] | None = None) -> tuple[Any, httpx.Response]:
        """GET one resource; a 4xx other than 401/403 (those raise in ``HttpClient``) becomes FatalSyncError."""
        return self._get(self.path(resource), params)

    def pages(self, resource: str, params: Mapping[str, Any] | None = None) -> Iterator[list[dict]]:
        """Yield each page of a list endpoint (``customers``, ``locations/1/inventory_levels``...).

        ``params`` (filters and ``limit``) are sent with the first request only; the following pages come from
        the ``Link`` header's ``rel="next"`` URL, unchanged.
        """
        key = resource.rsplit("/", 1)[-1]
        for data, url, _query in self._walk(resource, params, self._get):
            items = data.get(key) if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise FatalSyncError(f"{self.http.name}: GET {httpx.URL(url).path}: expected a JSON object with a "
                                     f"{key!r} list, got {type(data).__name__}", connector=self.http.name)
            yield items

    def raw_pages(self, resource: str, params: Mapping[str, Any] | None = None, *,
                  refetch: Callable[[str, Mapping[str, Any] | None], bytes] | None = None) -> Iterator[RawPage]:
        """``pages``, each page undecoded: the engine decodes and maps big pages in worker processes.

        ``refetch(url, params)`` downloads a page again when its body does not decode; the engine may call it
        after this generator (and this client) have finished, so a connector passes one that opens a client.
        """
        refetch = refetch or self.refetch
        decode = functools.partial(decode_page, key=resource.rsplit("/", 1)[-1])
        for body, url, query in self._walk(resource, params, self._get_raw):
            yield RawPage(body, decode, functools.partial(refetch, url, query))

    def _walk(self, resource: str, params: Mapping[str, Any] | None,
              get: Callable[[str, Mapping[str, Any] | None], tuple[Any, httpx.Response]]) -> Iterator[tuple]:
        """``(get's result, url, query)`` of each page, following the ``Link`` headers (filters first only)."""
        url: str | None = self.path(resource)
        query: Mapping[str, Any] | None = {k: v for k, v in (params or {}).items() if v is not None}
        while url is not None:
            result, response = get(url, query)
            yield result, url, query
            url, query = next_link(response), None
            if url is not None:
                self._check_same_origin(url)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ShopifyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals
    def _get(self, url: str, params: Mapping[str, Any] | None) -> tuple[Any, httpx.Response]:
        data, response = self.http.get_json(url, **({"params": dict(params)} if params else {}))
        if response.status_code >= 400:
            self._fail(response, data)
        return data, response

    def _get_raw(self, url: str, params: Mapping[str, Any] | None) -> tuple[bytes, httpx.Response]:
        response = self.http.request("GET", url, **({"params": dict(params)} if params else {}))
        if response.status_code >= 400:
            try:
                data = orjson.loads(response.content) if response.content else None
            except ValueError:
                data = None
            self._fail(response, data)
        return response.content, response

    def refetch(self, url: str, params: Mapping[str, Any] | None) -> bytes:
        """The body of one page, downloaded again."""
        return self._get_raw(url, params)[0]

    def _fail(self, response: httpx.Response, data: Any) -> None:
        """Raise the FatalSyncError of a 4xx answer (``data``: its decoded body, if any)."""
        errors = data.get("errors") if isinstance(data, dict) else None
        detail = f": {errors}" if errors else ""
        raise FatalSyncError(f"{self.http.name}: GET {response.request.url.path}: HTTP {response.status_code}"
                             f"{detail}", connector=self.http.name,
                             hint="check shop, base_url and api_version in plugins.toml"
                             if response.status_code == 404 else None)

    def _check_same_origin(self, url: str) -> None:
        """Never send the token to another host than the shop's (a Link header pointing elsewhere)."""
        target, base = httpx.URL(url), httpx.URL(self.base_url)
        if target.is_absolute_url and (target.scheme, target.host, target.port) != (base.scheme, base.host,
                                                                                   base.port):
            raise FatalSyncError(f"{self.http.name}: the next-page link points to {target.host}, not the shop "
                                 f"({base.host}); refusing to follow it", connector=self.http.name)
