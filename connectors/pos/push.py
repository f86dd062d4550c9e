"""Writing stock back to Square: one ``PHYSICAL_COUNT`` of state ``IN_STOCK`` per :class:`StockUpdate`.

Each update goes in its own ``POST /v2/inventory/changes/batch-create`` carrying the update's idempotency key, so
a retried request (``HttpClient`` retries 429 and 5xx) or a repeated push changes stock once, and one bad update
fails alone. ``occurred_at`` is "now" less a second of clock margin: Square orders the ledger by this client
timestamp and refuses one in the future or older than 24 hours. A physical count never reorders history: sales
recorded after it still apply on top of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from ...core.capabilities import PushOutcome, StockUpdate
from .client import SquareApiError, SquareClient
from .records import rfc3339

__all__ = ["count_change", "occurred_at", "push_inventory", "read_in_stock"]

CHANGES_PATH = "/v2/inventory/changes/batch-create"
COUNTS_PATH = "/v2/inventory/counts/batch-retrieve"
#: occurred_at is set this far behind the local clock, so a server clock slightly behind ours never sees the future
CLOCK_MARGIN = timedelta(seconds=1)
MAX_AGE = timedelta(hours=24)
ID_BATCH = 100


def occurred_at(now: datetime) -> str:
    """The ``occurred_at`` of a count made at ``now`` (timezone-aware): ``now - CLOCK_MARGIN``, in UTC."""
    if now.tzinfo is None:
        raise ValueError("occurred_at needs a timezone-aware datetime")
    return rfc3339(now - CLOCK_MARGIN)


def count_change(update: StockUpdate, when: str) -> dict:
    """The request body setting ``update.quantity`` IN_STOCK at ``when``."""
    return {"idempotency_key": update.idempotency_key, "ignore_unchanged_counts": False, "changes": [{
        "type": "PHYSICAL_COUNT",
        "physical_count": {"catalog_object_id": update.item_id, "location_id": update.location_id,
                           "state": "IN_STOCK", "quantity": str(update.quantity), "occurred_at": when,
                           "reference_id": update.idempotency_key}}]}


def read_in_stock(client: SquareClient, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Current IN_STOCK quantity of each (catalog object id, location id); a pair with no count holds 0."""
    pairs = set(pairs)
    found = dict.fromkeys(pairs, 0)
    ids, locations = sorted({i for i, _ in pairs}), sorted({loc for _, loc in pairs})
    for start in range(0, len(ids), ID_BATCH):
        body = {"catalog_object_ids": ids[start:start + ID_BATCH], "location_ids": locations,
                "states": ["IN_STOCK"], "limit": 1000}
        for page in client.post_pages(COUNTS_PATH, "counts", body):
            for count in page:
                pair = (count.get("catalog_object_id"), count.get("location_id"))
                if pair in found and count.get("state") == "IN_STOCK":
                    found[pair] = _quantity(count.get("quantity"))
    return found


def push_inventory(client: SquareClient, updates: list[StockUpdate], *,
                   now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> list[PushOutcome]:
    """Set each update's IN_STOCK quantity; one :class:`PushOutcome` per update, in order.

    Square has no compare-and-set. When ``update.expected`` is given, the current count is read first (one batch
    read for all such updates): ``applied`` without a write when Square already holds ``quantity``, else
    ``conflict`` with ``actual`` when it differs from ``expected``. This is
    read-then-write, not atomic: a sale recorded between the read and the count is overwritten by the count.
    Errors that affect every update (credentials, retries exhausted) raise ``FatalSyncError``.
    """
    current = read_in_stock(client, {(u.item_id, u.location_id) for u in updates if u.expected is not None})
    outcomes = []
    for update in updates:
        if update.quantity < 0:
            outcomes.append(PushOutcome(update, "failed", detail="Square counts cannot be negative"))
            continue
        if update.expected is not None:
            actual = current[(update.item_id, update.location_id)]
            if actual == update.quantity:  # already there (a repeated push): nothing to write
                outcomes.append(PushOutcome(update, "applied", actual=actual, detail="already at this quantity"))
                continue
            if actual != update.expected:
                outcomes.append(PushOutcome(update, "conflict", actual=actual,
                                            detail=f"expected {update.expected}, Square holds {actual}"))
                continue
        outcomes.append(_apply(client, update, occurred_at(now())))
    return outcomes


def _apply(client: SquareClient, update: StockUpdate, when: str) -> PushOutcome:
    try:
        data = client.post(CHANGES_PATH, count_change(update, when))
    except SquareApiError as exc:
        if "IDEMPOTENCY_KEY_REUSED" in exc.codes:  # sent before, with another occurred_at: did it land?
            actual = read_in_stock(client, [(update.item_id, update.location_id)])[(update.item_id,
                                                                                   update.location_id)]
            if actual == update.quantity:
                return PushOutcome(update, "applied", actual=actual, detail="already applied under this key")
        return PushOutcome(update, "failed", detail=str(exc))
    counts = [c for c in data.get("counts") or () if c.get("state") == "IN_STOCK"
              and (c.get("catalog_object_id"), c.get("location_id")) == (update.item_id, update.location_id)]
    actual = _quantity(counts[0].get("quantity")) if counts else update.quantity
    return PushOutcome(update, "applied", actual=actual)


def _quantity(value: object) -> int:
    """Square's decimal-string quantity as an int (fractions are truncated toward zero)."""
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return 0
