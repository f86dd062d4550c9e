"""A local HTTP server on 127.0.0.1 for an emulator: start, stop (ending keep-alive connections), base URL.

An emulator subclasses ``LoopbackServer`` and implements ``handle(method, path, headers, body)``; the request
handler (``connectors.shopify.emulator._Handler``) calls it and tracks open connections in ``_connections``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["LoopbackServer"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (crash tests kill clients on purpose) is not a server error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Serves ``handler_class`` on 127.0.0.1 (port 0: any free port); a context manager."""

    handler_class: type[BaseHTTPRequestHandler]
    thread_name = "emulator"

    def __init__(self, port: int = 0) -> None:
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
            for sock in list(self._connections):  # end keep-alive connections so clients see the server go
                try:
                    sock.shutdown(2)
                except OSError:
                    pass
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_until_interrupted(self, banner: Callable[[], str]) -> None:
        """Start, print ``banner()`` (it may use ``base_url``), serve until Ctrl-C, stop."""
        with self:
            print(banner(), flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"
