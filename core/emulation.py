"""The lifecycle every connector emulator shares: a threaded HTTP server on 127.0.0.1, started and stopped.

An emulator subclasses ``LoopbackEmulator``, sets ``handler_class`` (its request handler, which reaches the
emulator as ``self.server.emulator``; assign it after the class when the handler is defined later in the module)
and ``thread_name``, and calls ``_init_server(port)`` in ``__init__``
(port 0: an ephemeral one). Use it as a context manager or with ``start()``/``stop()``; ``stop()`` also ends
kept-alive connections, so clients see the server go instead of waiting on a socket nobody answers. Handlers
that register their connection in ``emulator._connections`` (on setup, removed on finish) get that.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

__all__ = ["JsonRequestHandler", "LoopbackEmulator", "LoopbackRequestHandler"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True


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
