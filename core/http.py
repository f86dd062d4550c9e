"""The one HTTP client every connector shares: timeouts, retries with a per-run budget, pacing, redaction.

What is retried, and how::

    connect error, connect/pool timeout      always (the request never reached the server)
    read/write timeout, ReadError,           idempotent requests only (GET, HEAD, OPTIONS, PUT, DELETE,
      RemoteProtocolError (truncated body)     or idempotent=True)
    429                                      always (the server refused before acting)
    500, 502, 503, 504                       idempotent requests only
    invalid or cut-short JSON (2xx)          get_json, and post_json with idempotent=True
    401, 403                                 never: FatalSyncError with a fix-it hint
    other 4xx, 2xx, 3xx                      never: returned to the caller
    other 5xx                                never: FatalSyncError

Waits honour ``Retry-After`` exactly (``0`` means at once); without it, exponential backoff with full jitter.
A transient failure that may not be repeated escapes as :class:`RetriableSyncError`; running out of retries
(per request) or of the retry budget (per client, i.e. per run) raises :class:`FatalSyncError`.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import tenacity
from pydantic import BaseModel, ConfigDict, Field

from .errors import FatalSyncError, RetriableSyncError
from .pacing import LeakyBucketPacer, Pacer, full_jitter, retry_after_seconds

__all__ = ["HttpClient", "HttpSettings", "LeakyBucketPacer", "Pacer", "checked_base_url"]

logger = logging.getLogger("storesync.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-shopify-access-token", "cookie"})
AUTH_HINT = "check the access token in plugins.toml"
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class HttpSettings(BaseModel):
    """``[connectors.<name>.http]``: timeouts, retries and backoff. TLS verification has no setting: it is on."""

    model_config = ConfigDict(extra="forbid")

    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0, description="per request")
    retry_budget: int = Field(200, ge=0, description="per client (= per run): retries across all requests")
    backoff_base: float = Field(0.5, ge=0)
    backoff_max: float = Field(30.0, ge=0)
    max_retry_after: float = Field(120.0, ge=0, description="a longer Retry-After is fatal")


def checked_base_url(value: str) -> str:
    """A connector setting's API URL: https (http for a local emulator), without a trailing slash.

    For a pydantic ``field_validator`` of plugin settings, so every connector words the error the same way.
    """
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"must start with https:// (or http:// for a local emulator), got {value!r}")
    return value.rstrip("/")


class _Again(RetriableSyncError):
    """A transient failure this client will retry; carries the wait the server asked for, if any."""

    def __init__(self, message: str, *, label: str, reason: str, retry_after: float | None) -> None:
        super().__init__(message, request=label, reason=reason, retry_after=retry_after)
        self.label, self.reason, self.retry_after = label, reason, retry_after


@dataclass(frozen=True)
class _Call:
    method: str
    url: str
    label: str  # "GET /admin/api/2024-07/orders.json", redacted
    idempotent: bool
    parse_json: bool


class _Redactor(logging.Filter):
    """Masks secrets and URL userinfo in text; as a logging filter, in every record of the logger it is on."""

    _USERINFO = re.compile(r"(?<=//)[^/@\s]+@")

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self.add(*secrets)

    def add(self, *values: str | None) -> None:
        """Remember more secret values (empty ones are ignored)."""
        merged = set(self._secrets) | {v for v in values if v}
        self._secrets = sorted(merged, key=len, reverse=True)

    def add_headers(self, headers: Mapping[str, str] | httpx.Headers | None) -> None:
        """Remember the values of sensitive headers, and the credential after an auth scheme."""
        for name, value in httpx.Headers(headers).items():
            if name.lower() in SENSITIVE_HEADERS or name.lower().startswith("x-twilio-"):
                self.add(value, value.partition(" ")[2])

    def redact(self, text: str) -> str:
        """Return ``text`` with every secret and URL userinfo replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return self._USERINFO.sub("***@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        return True


class HttpClient:
    """An ``httpx.Client`` with explicit timeouts, keep-alive, HTTP/1.1 and no redirects, plus retries.

    TLS certificates are always verified: there is deliberately no setting to turn verification off. (A
    ``transport`` handed in, such as a test's ``httpx.MockTransport``, is used as given.)

    ``name`` names the connector instance in every message, e.g. ``"shopify 'shop'"``. Header values of
    ``Authorization``, ``X-Shopify-Access-Token`` and ``X-Twilio-*``, the password of ``auth``, URL userinfo and
    every value in ``secrets`` are masked in log records (this client's and httpx's) and in exception messages.
    ``retries_used`` counts retries across all requests against ``settings.retry_budget``; ``requests_made``
    counts every attempt sent.
    """

    def __init__(self, *, name: str, base_url: str, headers: dict[str, str] | None = None,
                 auth: httpx.Auth | tuple[str, str] | None = None, settings: HttpSettings | None = None,
                 pacer: Pacer | None = None, transport: httpx.BaseTransport | None = None,
                 secrets: Iterable[str] = (), sleep: Callable[[float], None] = time.sleep,
                 auth_hint: str = AUTH_HINT) -> None:
        self.name = name
        self.auth_hint = auth_hint  # the fix-it hint of a 401/403
        self.settings = settings or HttpSettings()
        self.retries_used = 0
        self.requests_made = 0
        self._pacer, self._sleep = pacer, sleep
        self._redactor = _Redactor(secrets)
        self._redactor.add_headers(headers)
        self._redactor.add(*_auth_secrets(auth), httpx.URL(base_url).password)
        self._client = httpx.Client(
            base_url=base_url, headers=headers, auth=auth, verify=True, http1=True, http2=False,
            follow_redirects=False, transport=transport or _default_transport(),
            timeout=httpx.Timeout(self.settings.read_timeout, connect=self.settings.connect_timeout))
        for log in (logger, logging.getLogger("httpx")):
            log.addFilter(self._redactor)

    def request(self, method: str, url: str, *, idempotent: bool | None = None, **kwargs: Any) -> httpx.Response:
        """Send a request with retries; return the final 2xx, 3xx or 4xx response (401/403 raise).

        ``idempotent`` defaults to True for GET, HEAD, OPTIONS, PUT and DELETE. Other keyword arguments go to
        ``httpx.Client.build_request`` (``params``, ``json``, ``headers``...), except ``auth``.
        """
        return self._call(method, url, idempotent, kwargs, parse_json=False)[1]

    def get_json(self, url: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        """GET and decode JSON, retrying a truncated or invalid 2xx body too; data is None for empty/non-JSON 4xx."""
        return self._call("GET", url, None, kwargs, parse_json=True)

    def post_json(self, url: str, *, idempotent: bool = False, **kwargs: Any) -> tuple[Any, httpx.Response]:
        """POST and decode JSON. Unless ``idempotent=True``, retried only on connect errors and 429."""
        return self._call("POST", url, idempotent, kwargs, parse_json=True)

    def close(self) -> None:
        """Close the connection pool and stop redacting this client's secrets in log records."""
        self._client.close()
        for log in (logger, logging.getLogger("httpx")):
            log.removeFilter(self._redactor)

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: str, url: str, idempotent: bool | None, kwargs: dict[str, Any], *,
              parse_json: bool) -> tuple[Any, httpx.Response]:
        method = method.upper()
        auth = kwargs.pop("auth", httpx.USE_CLIENT_DEFAULT)
        self._redactor.add_headers(kwargs.get("headers"))
        label = self._redactor.redact(f"{method} {self._client.build_request(method, url).url.path}")
        call = _Call(method, url, label, method in IDEMPOTENT_METHODS if idempotent is None else idempotent,
                     parse_json)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Again), stop=self._should_stop, wait=self._wait,
            sleep=lambda seconds: self._sleep(float(seconds)), before_sleep=self._log_retry,
            retry_error_callback=self._give_up)
        return retrying(self._attempt, call, kwargs, auth)

    def _attempt(self, call: _Call, kwargs: dict[str, Any], auth: Any) -> tuple[Any, httpx.Response]:
        response = self._send(call, kwargs, auth)
        self._check_status(call, response)
        return (self._decode(call, response) if call.parse_json else None), response

    def _send(self, call: _Call, kwargs: dict[str, Any], auth: Any) -> httpx.Response:
        if self._pacer is not None:
            self._pacer.before()
        self.requests_made += 1
        try:
            response = self._client.send(self._client.build_request(call.method, call.url, **kwargs), auth=auth)
        except _NEVER_SENT as exc:
            raise self._transient(call, _describe(exc), always=True) from exc
        except _TRANSIENT as exc:
            raise self._transient(call, _describe(exc)) from exc
        if self._pacer is not None:
            self._pacer.after(response)
        # httpx links a response and its stream both ways, a cycle only the cyclic GC frees: a long sync then
        # holds dozens of multi-MB page bodies until a full collection. The body is read; drop the link.
        response.stream = httpx.ByteStream(b"")
        return response

    def _check_status(self, call: _Call, response: httpx.Response) -> None:
        status = response.status_code
        if status in (401, 403):
            scopes = " and that it grants the scopes this sync needs" if status == 403 else ""
            raise FatalSyncError(self._message(call, f"HTTP {status} {response.reason_phrase}"),
                                 hint=self.auth_hint + scopes, connector=self.name, request=call.label)
        if status not in RETRY_STATUSES:
            if status >= 500:
                raise FatalSyncError(self._message(call, f"HTTP {status} (not a retriable status)"),
                                     connector=self.name, request=call.label)
            return
        wait = retry_after_seconds(response)
        if wait is not None and wait > self.settings.max_retry_after:
            raise FatalSyncError(
                self._message(call, f"HTTP {status} asks to retry after {wait:g}s, longer than max_retry_after "
                                    f"({self.settings.max_retry_after:g}s)"),
                hint="run again later, or raise http.max_retry_after in plugins.toml",
                connector=self.name, request=call.label)
        raise self._transient(call, f"HTTP {status}", retry_after=wait, always=status == 429)

    def _decode(self, call: _Call, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return orjson.loads(response.content)  # several times faster than response.json() on large pages
        except ValueError as exc:  # orjson.JSONDecodeError (a ValueError), invalid UTF-8 included
            if not response.is_success:
                return None
            raise self._transient(call, f"invalid or truncated JSON body ({len(response.content)} bytes)") from exc

    def _transient(self, call: _Call, reason: str, *, retry_after: float | None = None,
                   always: bool = False) -> RetriableSyncError:
        reason = self._redactor.redact(reason)
        if always or call.idempotent:
            return _Again(self._message(call, reason), label=call.label, reason=reason, retry_after=retry_after)
        return RetriableSyncError(
            self._message(call, f"{reason}; not retried: {call.method} is not idempotent and the server may "
                                "have acted on it"),
            hint="pass idempotent=True if repeating this request is safe", connector=self.name,
            request=call.label)

    def _message(self, call: _Call, text: str) -> str:
        return self._redactor.redact(f"{self.name}: {call.label}: {text}")

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = _last_error(state)
        if exc.retry_after is not None:
            return exc.retry_after
        return full_jitter(state.attempt_number, self.settings.backoff_base, self.settings.backoff_max)

    def _should_stop(self, state: tenacity.RetryCallState) -> bool:
        return state.attempt_number > self.settings.max_retries or self.retries_used >= self.settings.retry_budget

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        self.retries_used += 1
        exc, sleep = _last_error(state), state.upcoming_sleep
        method, _, path = exc.label.partition(" ")
        logger.info("%s: retrying %s after %s (retry %d of %d, sleeping %.3fs)", self.name, exc.label,
                    exc.reason, state.attempt_number, self.settings.max_retries, sleep,
                    extra={"http_method": method, "http_path": path, "http_error": exc.reason,
                           "attempt": state.attempt_number, "sleep_seconds": sleep})

    def _give_up(self, state: tenacity.RetryCallState) -> Any:
        exc, retries = _last_error(state), state.attempt_number - 1
        if retries >= self.settings.max_retries:
            message, hint = f"failed after {retries} retries: {exc.reason}", None
        else:
            message = (f"failed: the retry budget of {self.settings.retry_budget} retries for this run is used up "
                       f"(last error: {exc.reason})")
            hint = "run again later, or raise http.retry_budget in plugins.toml"
        raise FatalSyncError(self._redactor.redact(f"{self.name}: {exc.label} {message}"), hint=hint,
                             connector=self.name, request=exc.label) from exc


def _last_error(state: tenacity.RetryCallState) -> _Again:
    assert state.outcome is not None
    exc = state.outcome.exception()
    assert isinstance(exc, _Again)
    return exc


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _auth_secrets(auth: httpx.Auth | tuple[str, str] | None) -> tuple[str, ...]:
    if not isinstance(auth, tuple):
        return ()
    user, password = auth
    return password, base64.b64encode(f"{user}:{password}".encode()).decode()


def _default_transport() -> httpx.HTTPTransport:
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=10, keepalive_expiry=30.0)
    return httpx.HTTPTransport(verify=True, http1=True, http2=False, retries=0, limits=limits)
