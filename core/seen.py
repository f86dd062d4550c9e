"""Webhook deliveries are at least once: remember the ids of recent ones so a repeat is dropped.

Square (``event_id``), Shopify (``X-Shopify-Webhook-Id``) and Twilio (``I-Twilio-Idempotency-Token``) each give
every delivery an id that stays the same when it is delivered again. ``SeenIds`` keeps the most recent ids in
memory, bounded, oldest forgotten first; thread-safe, for a receiver answering several requests at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["SeenIds"]


class SeenIds:
    """The last ``capacity`` ids seen; ``first_time(id)`` is True once per id while it is remembered."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, delivery_id: str) -> bool:
        """True if ``delivery_id`` was not seen among the remembered ones (and remember it now)."""
        with self._lock:
            if delivery_id in self._ids:
                self._ids.move_to_end(delivery_id)
                return False
            self._ids[delivery_id] = None
            if len(self._ids) > self.capacity:
                self._ids.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._ids)
