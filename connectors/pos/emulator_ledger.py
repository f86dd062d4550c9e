"""The Square emulator's inventory: a ledger of physical counts and adjustments, with counts derived from it.

As Square derives them: the count of (catalog object, location, state) is the quantity of its latest physical
count by ``occurred_at`` plus every adjustment into that state after it, minus every adjustment out of it.
Changes may arrive out of ``occurred_at`` order (a count dated before a sale already recorded leaves the sale
applied on top). A count's ``calculated_at`` is when its last change was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

__all__ = ["UNTRACKED", "Entry", "Ledger", "format_quantity"]

#: states Square does not report counts for
UNTRACKED = frozenset({"NONE", "SOLD", "UNLINKED_RETURN"})

Key = tuple[str, str, str]  # (catalog object id, location id, state)


class Entry(NamedTuple):
    """One ledger line affecting one (object, location, state): a count sets, an adjustment adds ``delta``."""

    occurred_at: str
    seq: int
    is_count: bool
    quantity: Decimal
    created_ms: int
    change_id: str


@dataclass
class Count:
    quantity: Decimal
    calculated_ms: int


def format_quantity(value: Decimal) -> str:
    """Square's decimal string: ``"10"``, ``"2.5"``."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


class Ledger:
    """Entries per (object, location, state) and the counts derived from them."""

    def __init__(self) -> None:
        self.entries: dict[Key, list[Entry]] = {}
        self.counts: dict[Key, Count] = {}
        self._seq = 0

    def physical_count(self, key: Key, quantity: Decimal, occurred_at: str, created_ms: int, change_id: str,
                       *, derive: bool = True) -> None:
        self._add(key, Entry(occurred_at, self._next(), True, quantity, created_ms, change_id), derive)

    def adjustment(self, obj: str, location: str, from_state: str, to_state: str, quantity: Decimal,
                   occurred_at: str, created_ms: int, change_id: str, *, derive: bool = True) -> None:
        seq = self._next()
        self._add((obj, location, from_state), Entry(occurred_at, seq, False, -quantity, created_ms, change_id),
                  derive)
        self._add((obj, location, to_state), Entry(occurred_at, seq, False, quantity, created_ms, change_id), derive)

    def derive_all(self) -> None:
        """Compute every count (after a bulk load with ``derive=False``)."""
        for key in self.entries:
            self._derive(key)

    def current(self, key: Key) -> Decimal:
        found = self.counts.get(key)
        return found.quantity if found is not None else Decimal(0)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _add(self, key: Key, entry: Entry, derive: bool) -> None:
        self.entries.setdefault(key, []).append(entry)
        if derive:
            self._derive(key)

    def _derive(self, key: Key) -> None:
        if key[2] in UNTRACKED:
            return
        ordered = sorted(self.entries[key], key=lambda e: (e.occurred_at, e.seq))
        quantity = Decimal(0)
        for entry in ordered:
            quantity = entry.quantity if entry.is_count else quantity + entry.quantity
        self.counts[key] = Count(quantity, max(e.created_ms for e in ordered))
