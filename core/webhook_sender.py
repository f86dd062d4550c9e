"""The emulators' side of webhooks: signed deliveries POSTed from a background thread, retried like a provider.

A provider delivers after its data changed, never inside the API call that changed it, and retries a delivery
that was not answered 2xx (Shopify 8 times over 4 hours, Square for 72 hours). ``WebhookSender`` does the same
on a loopback scale: one thread posts queued deliveries in order and retries each after ``retry_delays``. Every
attempt's outcome is kept in ``sent`` for tests. The emulators (Shopify, Square) build the signed body and headers;
this module only carries them.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import httpx

__all__ = ["SentDelivery", "WebhookSender", "WebhookSending"]


@dataclass
class SentDelivery:
    """One delivery's fate: the last status (``None`` when the URL never answered) after ``attempts`` tries."""

    topic: str
    url: str
    delivery_id: str
    status: int | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender:
    """Posts ``(url, body, headers)`` deliveries in order from one daemon thread (started on first use)."""

    def __init__(self, name: str, *, retry_delays: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0),
                 timeout: float = 5.0) -> None:
        self.name = name
        self.retry_delays = retry_delays
        self.timeout = timeout
        self.sent: list[SentDelivery] = []
        self._queue: queue.Queue[tuple[SentDelivery, bytes, dict[str, str]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def send(self, topic: str, url: str, delivery_id: str, body: bytes, headers: dict[str, str]) -> None:
        """Queue one delivery; it is posted after the caller's change is done."""
        with self._lock:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"{self.name}-webhooks", daemon=True)
                self._thread.start()
            self._queue.put((SentDelivery(topic, url, delivery_id), body, headers))

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery was posted (or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        """Stop after the delivery in hand; queued ones are dropped (the emulator is going away)."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(self.timeout + 1)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while True:
                item = self._queue.get()
                try:
                    if item is None or self._closed:
                        return
                    self._deliver(client, *item)
                finally:
                    self._queue.task_done()

    def _deliver(self, client: httpx.Client, record: SentDelivery, body: bytes, headers: dict[str, str]) -> None:
        self.sent.append(record)
        for delay in (0.0, *self.retry_delays):
            if delay:
                time.sleep(delay)
            if self._closed:
                return
            record.attempts += 1
            try:
                record.status = client.post(record.url, content=body, headers=headers).status_code
            except httpx.HTTPError:
                record.status = None
            if record.ok:  # like Shopify and Square, anything but a 2xx is tried again
                return


class WebhookSending:
    """For an emulator (before ``LoopbackEmulator`` in its bases): ``deliveries``, ``drain_webhooks`` and a
    ``stop`` that also stops the sender. The emulator sets ``self._webhooks = WebhookSender(...)``."""

    _webhooks: WebhookSender

    @property
    def deliveries(self) -> list[SentDelivery]:
        """Every webhook delivery made so far, with its last status and attempts."""
        return self._webhooks.sent

    def drain_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until every queued webhook delivery was made (or given up)."""
        return self._webhooks.drain(timeout)

    def stop(self) -> None:
        self._webhooks.close()
        super().stop()  # type: ignore[misc]
