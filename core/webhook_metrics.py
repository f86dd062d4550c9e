"""Counters of ``storesync serve`` since it started, for ``GET /metrics`` (Prometheus text, or JSON).

Counted in memory by the request handlers and the worker; the queue depth is read from the store at each scrape,
so it also counts deliveries left by an earlier process.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

__all__ = ["COUNTERS", "Metrics"]

#: name -> help text, in exposition order
COUNTERS = {
    "received": "webhook requests received on /webhooks/<connector>",
    "rejected": "deliveries refused: bad or missing signature (401), unknown connector or too large",
    "duplicates": "deliveries already queued (same delivery id), answered 200 without a second row",
    "queued": "deliveries committed to the queue",
    "applied": "deliveries applied to the store (and their SKUs reconciled)",
    "stale": "deliveries older than the stored record: nothing written",
    "skipped": "deliveries of topics storesync does not use",
    "quarantined": "deliveries whose records did not map (see storesync quarantine list)",
    "failed": "deliveries given up on (see storesync webhooks list --state failed)",
    "retried": "failed attempts that will be retried",
}


class Metrics:
    """Thread-safe counters plus the latest receipt-to-done latencies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.latencies: deque[float] = deque(maxlen=2000)
        self.started = datetime.now(UTC)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def finished(self, state: str, received_at: datetime) -> None:
        """A delivery reached a final state; its latency counts from when it was received."""
        latency = (datetime.now(UTC) - received_at).total_seconds()
        with self._lock:
            self.counts[state] += 1
            self.latencies.append(latency)

    def latency(self) -> dict[str, float | None]:
        """Median, 95th percentile and maximum of the recent receipt-to-done latencies, in seconds."""
        with self._lock:
            values = sorted(self.latencies)
        if not values:
            return {"p50": None, "p95": None, "max": None}
        return {"p50": values[len(values) // 2], "p95": values[min(len(values) - 1, int(len(values) * 0.95))],
                "max": values[-1]}

    def snapshot(self, depth: int) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
        return {**counts, "queue_depth": depth, "latency_seconds": self.latency(),
                "started_at": self.started.isoformat()}

    def prometheus(self, depth: int) -> str:
        """The text exposition format (version 0.0.4)."""
        lines = []
        with self._lock:
            counts = dict(self.counts)
        for name, text in COUNTERS.items():
            metric = f"storesync_webhooks_{name}_total"
            lines += [f"# HELP {metric} {text}", f"# TYPE {metric} counter", f"{metric} {counts[name]}"]
        lines += ["# HELP storesync_webhooks_queue_depth deliveries waiting to be applied",
                  "# TYPE storesync_webhooks_queue_depth gauge", f"storesync_webhooks_queue_depth {depth}"]
        lat = self.latency()
        lines += ["# HELP storesync_webhooks_latency_seconds receipt to applied and pushed, recent deliveries",
                  "# TYPE storesync_webhooks_latency_seconds gauge"]
        for q, key in (("0.5", "p50"), ("0.95", "p95"), ("1", "max")):
            if lat[key] is not None:
                lines.append(f'storesync_webhooks_latency_seconds{{quantile="{q}"}} {lat[key]:.6f}')
        return "\n".join(lines) + "\n"
