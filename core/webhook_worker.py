"""The background worker of ``storesync serve``: applies queued deliveries, then reconciles and pushes their SKUs.

One thread per process. It takes the oldest due deliveries from the queue (``core/webhook_queue.py``), applies
each through its provider (records through the mappings into the store, a status onto a message), and then runs
inventory (``run_inventory(push=True, sku=...)``) once per SKU the batch touched, so a burst of deliveries for one
SKU costs one reconciliation. A row is marked done only after its SKUs were reconciled and pushed: a process
killed in between applies the row again at the next start (the writes are idempotent), so no push is lost.

A failing delivery is retried with a back-off and marked ``failed`` after ``MAX_ATTEMPTS``; one that can never
apply (``PermanentError``) fails at once. Neither stops the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .inventory_config import inventory_settings
from .webhook_metrics import Metrics
from .webhook_providers import PROVIDERS, Outcome, PermanentError
from .webhook_queue import QueuedDelivery, claim, finish, finish_many, retry_later

__all__ = ["DeliveryWorker"]

log = logging.getLogger("storesync.serve")


class DeliveryWorker:
    """Applies queued deliveries of ``session``'s store on a thread of its own (``start``/``stop``), or on the
    caller's thread (``run_once``, for tests and for draining the queue without a server)."""

    def __init__(self, session: Any, metrics: Metrics | None = None, *, batch: int = 50, poll_seconds: float = 1.0,
                 push: bool = True, reconcile: Callable[[str], Any] | None = None,
                 gather_seconds: float = 0.02) -> None:
        self.session = session
        # a resync after a stale push (run_inventory) maps on this process: forking page workers from a process
        # that runs threads (the server's) could leave a child holding a lock forever (see core/pages.py)
        session.config.storesync.workers = 0
        self.metrics = metrics or Metrics()
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.gather_seconds = gather_seconds
        self.push = push
        self._reconcile = reconcile
        #: held around each delivery's store writes, and by the request handlers around each enqueue: in one
        #: process, SQLite writers then wait on this lock (woken at once) instead of in SQLite's busy handler,
        #: which sleeps in growing steps. Never held across a provider call or a push.
        self.write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connectors: dict[str, Any] = {}

    # -- lifecycle
    def start(self) -> DeliveryWorker:
        """Start the thread; it first applies whatever an earlier process left queued."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="storesync-webhook-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the delivery in hand and stop (what is still queued waits for the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """A delivery was queued: look now instead of at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception:  # the store went away for a moment: log, wait, try again
                log.exception("webhook worker: reading the queue failed; retrying")
                done = 0
            if not done:
                if self._wake.wait(self.poll_seconds):
                    self._stop.wait(self.gather_seconds)  # let a burst gather: one batch, fewer commits
                self._wake.clear()

    # -- the work
    def run_once(self) -> int:
        """Apply one batch of due deliveries; how many were taken."""
        rows = claim(self.session.store, self.batch)
        if not rows:
            return 0
        results: list[tuple[QueuedDelivery, Outcome]] = []
        for row in rows:
            if self._stop.is_set():
                break
            outcome = self._apply(row)
            if outcome is not None:
                results.append((row, outcome))
        skus = sorted(set().union(*(o.skus for _r, o in results))) if results else []
        failed_skus = self._inventory(skus)
        done = []
        for row, outcome in results:
            if outcome.skus & failed_skus:
                self._retry(row, f"inventory for {', '.join(sorted(outcome.skus & failed_skus))} failed")
            else:
                done.append((row, outcome))
        with self.write_lock:
            finish_many(self.session.store, [(r.id, o.state, o.detail, o.error) for r, o in done])
        for row, outcome in done:
            self.metrics.finished(outcome.state, row.received_at)
            log.info("#%s %s %s: %s%s", row.id, row.connector_id, row.topic, outcome.state,
                     f" ({', '.join(sorted(outcome.skus))})" if outcome.skus else "")
        return len(rows)

    def _apply(self, row: QueuedDelivery) -> Outcome | None:
        """One delivery through its provider; ``None`` when it failed (recorded for a retry or as failed)."""
        try:
            connector = self._connector(row.connector_id)
            provider = PROVIDERS[self.session.config.connectors[row.connector_id].type]
            return provider.apply(self.session, connector, row, self.write_lock)
        except PermanentError as exc:
            finish(self.session.store, row.id, "failed", error=str(exc))
            self.metrics.finished("failed", row.received_at)
            log.warning("#%s %s %s: failed: %s", row.id, row.connector_id, row.topic, exc)
        except Exception as exc:  # the provider's API or the store failed: try again later
            self._retry(row, f"{type(exc).__name__}: {exc}")
        return None

    def _retry(self, row: QueuedDelivery, error: str) -> None:
        state = retry_later(self.session.store, row, error)
        if state == "failed":
            self.metrics.finished("failed", row.received_at)
        else:
            self.metrics.add("retried")
        log.warning("#%s %s %s: attempt %d failed (%s); %s", row.id, row.connector_id, row.topic,
                    row.attempts + 1, error, "giving up" if state == "failed" else "will retry")

    def _connector(self, connector_id: str) -> Any:
        if connector_id not in self._connectors:
            self._connectors[connector_id] = self.session.host.connector(connector_id)
        return self._connectors[connector_id]

    def _inventory(self, skus: list[str]) -> set[str]:
        """Reconcile (and push) each SKU; the SKUs whose run failed."""
        if not skus:
            return set()
        if self._reconcile is None and not self._inventory_configured():
            return set()
        failed = set()
        for sku in skus:
            try:
                started = time.perf_counter()
                result = self._reconcile(sku) if self._reconcile else self._run_inventory(sku)
                pushed = len(getattr(getattr(result, "push", None), "applied", None) or [])
                log.info("reconciled %s in %.2fs; %d level(s) pushed", sku, time.perf_counter() - started, pushed)
            except Exception as exc:
                failed.add(sku)
                log.warning("reconciling %s failed: %s: %s", sku, type(exc).__name__, exc)
        return failed

    def _run_inventory(self, sku: str) -> Any:
        from .inventory_run import run_inventory

        return run_inventory(self.session, push=self.push, sku=sku)

    def _inventory_configured(self) -> bool:
        if not hasattr(self, "_has_inventory"):
            settings = inventory_settings(self.session.config)
            self._has_inventory = bool(settings.locations and settings.channels)
        return self._has_inventory
