"""Incremental reads on a cursor field: ``>=`` plus primary-key de-duplication at the boundary.

A stream with ``cursor_field`` is read from the saved value inclusive, so records sharing a timestamp at a
page edge are never skipped; the primary keys already stored at exactly that value are remembered (a
bounded set) and skipped when they come again.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Boundary", "CursorTracker", "MAX_BOUNDARY_KEYS"]

#: at most this many keys are remembered at the boundary; past it, re-reads are harmless (idempotent upserts)
MAX_BOUNDARY_KEYS = 1000


class Boundary(NamedTuple):
    """The saved cursor's value and the primary keys an earlier run stored exactly at it (picklable, for the page
    workers of ``core/pages.py``)."""

    field: str
    primary_key: str
    value: Any
    keys: frozenset[str]

    def holds(self, record: dict[str, Any]) -> bool:
        """True if ``record`` sits exactly on the boundary and was stored by an earlier run."""
        value = record.get(self.field)
        return value is not None and value == self.value and str(record.get(self.primary_key)) in self.keys


class CursorTracker:
    """Tracks the cursor of one stream during a run."""

    def __init__(self, field: str, primary_key: str, saved: Any) -> None:
        self.field = field
        self.primary_key = primary_key
        saved = saved if isinstance(saved, dict) else {}
        self.start: Any = saved.get("value")
        self.boundary = Boundary(field, primary_key, self.start, frozenset(saved.get("keys") or ()))
        self.value: Any = self.start
        self.keys: set[str] = set(self.boundary.keys)
        self.in_order = True
        self._last: Any = None

    def already_stored(self, record: dict[str, Any]) -> bool:
        """True if ``record`` sits exactly on the saved boundary and was stored by an earlier run."""
        return self.boundary.holds(record)

    def observe(self, record: dict[str, Any]) -> None:
        """Account for a record that will be stored."""
        self.observe_value(record.get(self.field), record.get(self.primary_key))

    def observe_value(self, value: Any, key: Any) -> None:
        """``observe`` for a record whose cursor value and primary key were read elsewhere (a page worker)."""
        if value is None:
            return
        try:
            if self._last is not None and value < self._last:
                self.in_order = False
            self._last = value
            if self.value is None or value > self.value:
                self.value, self.keys = value, set()
        except TypeError:  # mixed types in the cursor field: never advance mid-stream
            self.in_order = False
            return
        if value == self.value and len(self.keys) < MAX_BOUNDARY_KEYS:
            self.keys.add(str(key))

    def state(self, *, final: bool) -> dict[str, Any] | None:
        """The cursor to save now; mid-stream only while the stream has yielded in cursor order."""
        if not final and not self.in_order:
            return {"value": self.start, "keys": sorted(self.boundary.keys)} if self.start is not None else None
        if self.value is None:
            return None
        return {"value": self.value, "keys": sorted(self.keys)}
