"""The lifecycle every connector emulator shares: a threaded HTTP server on 127.0.0.1, started and stopped.

An emulator subclasses ``LoopbackEmulator``, sets ``handler_class`` (its request handler, which reaches the
emulator as ``self.server.emulator``; assign it after the class when the handler is defined later in the module)
and ``thread_name``, and calls ``_init_server(port)`` in ``__init__``
(port 0: an ephemeral one). Use it as a context manager or with ``start()``/``stop()``; ``stop()`` also ends
kept-alive connections, so clients see the server go instead of waiting on a socket nobody answers. Handlers
that register their connection in ``emulator._connections`` (on setup, removed on finish) get that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, Self

__all__ = ["LoopbackEmulator"]


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
