"""The lifecycle every connector emulator shares: a threaded HTTP server on 127.0.0.1, started and stopped.

An emulator subclasses ``LoopbackEmulator``, sets ``handler_class`` (its request handler, which reaches the
emulator as ``self.server.emulator``; assign it after the class when the handler is defined later in the module)
and ``thread_name``, and calls ``_init_server(port)`` in ``__init__``
(port 0: an ephemeral one). Use it as a context manager or with ``start()``/``stop()``; ``stop()`` also ends
kept-alive connections, so clients see the server go instead of waiting on a socket nobody answers. Handlers
that register their connection in ``emulator._connections`` (on setup, removed on finish) get that.

:class:`Faults` is the fault layer every emulator shares: seeded 5xx answers, truncated bodies, slow replies and
bursts of 429, each at its own rate, counted in ``injected`` so a campaign can report what it survived.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

__all__ = ["Faults", "JsonRequestHandler", "LoopbackEmulator", "LoopbackRequestHandler"]


class Faults:
    """Seeded faults an emulator injects into its API answers (never into its Python test hooks).

    ``draw()`` decides one request's 5xx (500/502/503 at ``error_rate``), truncated body (``truncate_rate``;
    ``truncate_mode`` "close": full Content-Length then hang up, "short": a short but valid-HTTP body) and slow
    reply (``slow_seconds`` at ``slow_rate``). Four draws per request keep the sequence deterministic whatever the
    rates. ``throttled()`` decides a 429: at ``burst_rate`` a request starts a burst in which it and the next
    ``burst_length - 1`` requests are refused, answered with ``Retry-After: burst_retry_after`` where the real API
    sends one. Bursts draw from their own generator, so adding them leaves the 5xx/truncation sequence of a seed
    unchanged. ``injected`` counts what was injected: ``5xx``, ``truncated``, ``slow`` and ``429``.
    """

    def __init__(self, error_rate: float = 0.0, truncate_rate: float = 0.0, slow_rate: float = 0.0,
                 slow_seconds: float = 1.0, seed: int = 0, truncate_mode: str = "close", *,
                 burst_rate: float = 0.0, burst_length: int = 3, burst_retry_after: float = 0.05) -> None:
        if truncate_mode not in ("close", "short"):
            raise ValueError("truncate_mode is 'close' (full Content-Length, then hang up) or 'short'")
        self.error_rate, self.truncate_rate, self.slow_rate = error_rate, truncate_rate, slow_rate
        self.slow_seconds, self.truncate_mode = slow_seconds, truncate_mode
        self.burst_rate, self.burst_length, self.burst_retry_after = burst_rate, burst_length, burst_retry_after
        self.injected: Counter[str] = Counter()
        self._rng, self._burst_rng, self._lock = random.Random(seed), random.Random(f"burst-{seed}"), threading.Lock()
        self._burst_left = 0

    def draw(self) -> tuple[int | None, bool, bool]:
        """(5xx status or None, truncate the body?, reply slowly?) for one request."""
        with self._lock:
            error, truncate, slow, pick = (self._rng.random() for _ in range(4))
            status = (500, 502, 503)[int(pick * 3)] if error < self.error_rate else None
            cut, late = status is None and truncate < self.truncate_rate, slow < self.slow_rate
            self.injected.update(name for name, hit in (("5xx", status), ("truncated", cut), ("slow", late)) if hit)
        return status, truncate < self.truncate_rate, late

    def throttled(self) -> bool:
        """Whether this request is refused with 429 (inside a burst, or the first of a new one)."""
        if not self.burst_rate:
            return False
        with self._lock:
            if not self._burst_left and self._burst_rng.random() < self.burst_rate:
                self._burst_left = self.burst_length
            if not self._burst_left:
                return False
            self._burst_left -= 1
            self.injected["429"] += 1
            return True

    def off(self) -> None:
        """Stop injecting (rates to zero, any burst ended); counts are kept."""
        with self._lock:
            self.error_rate = self.truncate_rate = self.slow_rate = self.burst_rate = 0.0
            self._burst_left = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (killed, timed out) is normal for an emulator; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackEmulator:
    handler_class: ClassVar[type[BaseHTTPRequestHandler]]
    thread_name: ClassVar[str] = "emulator"

    def _init_server(self, port: int = 0) -> None:
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._connections: set = set()

    def start(self) -> Self:
        server = _Server(("127.0.0.1", self._port), self.handler_class)
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name,
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            for sock in list(self._connections):
                try:
                    sock.shutdown(2)
                except OSError:
                    pass
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve_until_interrupted(self, banner: Callable[[Self], str]) -> None:
        """Start, print ``banner(self)`` (the URL, credentials, a plugins.toml table) and serve until Ctrl-C."""
        with self:
            print(banner(self), flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass


class LoopbackRequestHandler(BaseHTTPRequestHandler):
    """The base of emulators' request handlers: keeps connections alive (HTTP/1.1), registers them in
    ``emulator._connections`` so ``stop()`` ends them, and logs nothing."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.emulator._connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.emulator._connections.discard(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


class JsonRequestHandler(LoopbackRequestHandler):
    """The request handler of a JSON API emulator: ``emulator.handle(method, path, headers, body)`` answers.

    ``handle`` returns ``(status, payload)``; the payload is sent as JSON (UTF-8, not ASCII-escaped). Emulators
    that shape their bytes themselves (truncated bodies, slow replies) subclass ``LoopbackRequestHandler``.
    """

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.server.emulator.handle(self.command, self.path, self.headers, body)  # type: ignore
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
