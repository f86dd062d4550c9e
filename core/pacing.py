"""How long to wait: client-side pacing for known rate limits, ``Retry-After`` and retry backoff.

``core/http.py`` asks a :class:`Pacer` before every request (including retries) and tells it about every
response. :class:`LeakyBucketPacer` implements Shopify's REST leaky bucket; other connectors pass no pacer and rely
on the server's 429 and ``Retry-After``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Protocol, runtime_checkable

import httpx

__all__ = ["LeakyBucketPacer", "Pacer", "full_jitter", "retry_after_seconds"]

SHOPIFY_CALL_LIMIT = "X-Shopify-Shop-Api-Call-Limit"


@runtime_checkable
class Pacer(Protocol):
    """Client-side rate limiting: ``before()`` may sleep before a request; ``after()`` sees every response."""

    def before(self) -> None: ...

    def after(self, response: httpx.Response) -> None: ...


class LeakyBucketPacer:
    """Shopify REST's leaky bucket, tracked locally and corrected from ``X-Shopify-Shop-Api-Call-Limit``.

    The bucket leaks ``leak_rate`` calls per second; each call adds one. ``before()`` sleeps just long enough
    that, once this call is counted, ``headroom`` calls stay free, so a long sync never trips a 429. ``after()``
    replaces the local estimate with the server's ``used/size`` whenever the header is present (another process
    sharing the app's bucket, or a bucket size other than configured, is picked up from there).
    """

    def __init__(self, size: int = 40, leak_rate: float = 2.0, headroom: int = 4,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if size < 1 or leak_rate <= 0 or not 0 <= headroom < size:
            raise ValueError(f"need size >= 1, leak_rate > 0 and 0 <= headroom < size; "
                             f"got size={size}, leak_rate={leak_rate}, headroom={headroom}")
        self.size, self.leak_rate, self.headroom = size, leak_rate, headroom
        self._clock, self._sleep = clock, sleep
        self._level = 0.0
        self._stamp = clock()

    @property
    def level(self) -> float:
        """The estimated number of calls in the bucket right now."""
        self._leak()
        return self._level

    def before(self) -> None:
        """Sleep until this call fits with ``headroom`` calls to spare, then count it."""
        self._leak()
        limit = self.size - min(self.headroom, self.size - 1)
        wait = (self._level + 1 - limit) / self.leak_rate
        if wait > 0:
            self._sleep(wait)
            self._leak()
        self._level += 1

    def after(self, response: httpx.Response) -> None:
        """Correct the estimate from the response's ``used/size`` header, if it has one."""
        parsed = _parse_call_limit(response.headers.get(SHOPIFY_CALL_LIMIT))
        if parsed is not None:
            used, self.size = parsed
            self._level, self._stamp = float(used), self._clock()

    def _leak(self) -> None:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._stamp) * self.leak_rate)
        self._stamp = now


def _parse_call_limit(value: str | None) -> tuple[int, int] | None:
    used, _, size = (value or "").partition("/")
    try:
        used_n, size_n = int(used), int(size)
    except ValueError:
        return None
    return (used_n, size_n) if 0 <= used_n and size_n > 0 else None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Return the response's ``Retry-After`` in seconds, or None if it has none or it cannot be read.

    Accepts an integer or a float (Shopify sends ``2.0``), ``0`` included, or an HTTP-date. A date is measured
    against the response's own ``Date`` header when present (immune to local clock skew), else the local clock.
    A date in the past means 0.
    """
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return _seconds_until(value, response.headers.get("Date"))
    return None if math.isnan(seconds) else max(0.0, seconds)


def _seconds_until(http_date: str, server_now: str | None) -> float | None:
    when = _parse_http_date(http_date)
    if when is None:
        return None
    now = _parse_http_date(server_now) if server_now else None
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def full_jitter(retry_number: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform in ``[0, min(cap, base * 2 ** (retry_number - 1))]``."""
    return random.uniform(0.0, min(cap, base * 2.0 ** min(max(0, retry_number - 1), 60)))
