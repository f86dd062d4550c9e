"""Writing stock back to Shopify: GraphQL ``inventorySetQuantities`` with compare-and-set.

Shopify applies a mutation's quantities all or nothing: one stale row rejects the whole call. ``push_inventory``
therefore sends up to 250 quantities per call, turns each ``userErrors`` entry into the outcome of the row its
``field`` path names (``*_STALE``: a conflict, never forced; anything else: failed), and resends the rows that
were only rejected alongside them, in a new call, until every row has an outcome.

Compare values: ``compareQuantity`` before API 2026-04, ``changeFromQuantity`` from 2026-04 (mandatory there;
``null`` opts out). A ``StockUpdate`` without ``expected`` is sent as an explicit opt-out (``ignoreCompareQuantity``
before 2026-04), so updates with and without a compare value (or with different reasons) go in separate calls. Every call carries
``@idempotent(key:)`` from 2026-01 (mandatory from 2026-04); the key is derived from the updates' own idempotency
keys, so the same push retried replays Shopify's first answer instead of applying twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...core.capabilities import PushOutcome, StockUpdate
from ...core.errors import FatalSyncError
from ...core.http import HttpClient

__all__ = ["MAX_QUANTITIES", "SET_QUANTITIES", "InventoryPusher"]

#: Shopify caps every GraphQL input array at 250 items
MAX_QUANTITIES = 250
#: how many times a THROTTLED answer is waited out before giving up
MAX_THROTTLED = 20

SET_QUANTITIES = """\
mutation storesyncSetQuantities($input: InventorySetQuantitiesInput!%(key_var)s) {
  inventorySetQuantities(input: $input)%(directive)s {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange item { id } location { id } } }
    userErrors { field message code }
  }
}"""


def _gid(kind: str, value: str) -> str:
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"


class InventoryPusher:
    """Pushes ``StockUpdate`` batches through one ``HttpClient`` for one shop and API version."""

    def __init__(self, http: HttpClient, *, api_version: str, quantity_name: str = "available",
                 reason: str | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.http = http
        self.api_version = api_version
        self.quantity_name = quantity_name
        self.reason = reason
        self.sleep = sleep
        # "unstable" sorts after every dated version, so it takes the newest rules
        self.change_from = api_version >= "2026-04"
        self.idempotent = api_version >= "2026-01"
        self.calls = 0

    def push(self, updates: Sequence[StockUpdate]) -> list[PushOutcome]:
        """One outcome per update, in the order given."""
        outcomes: dict[int, PushOutcome] = {}
        # one call carries one reason and either compare values or the opt-out, so group on both
        groups: dict[tuple[bool, str], list[int]] = {}
        for i, u in enumerate(updates):
            groups.setdefault((u.expected is None, self.reason or u.reason), []).append(i)
        for group in groups.values():
            for start in range(0, len(group), MAX_QUANTITIES):
                self._settle(updates, group[start:start + MAX_QUANTITIES], outcomes)
        return [outcomes[i] for i in range(len(updates))]

    # -- one batch until every row has an outcome
    def _settle(self, updates: Sequence[StockUpdate], batch: list[int], outcomes: dict[int, PushOutcome]) -> None:
        pending = list(batch)
        while pending:
            result = self._call([updates[i] for i in pending])
            errors = result.get("userErrors") or []
            if not errors:
                for i in pending:
                    outcomes[i] = PushOutcome(updates[i], "applied")
                return
            by_row: dict[int, list[dict]] = {}
            general: list[dict] = []
            for error in errors:
                row = _row_of(error)
                (by_row.setdefault(row, []) if row is not None and row < len(pending) else general).append(error)
            if general:  # an error about the whole input (reason, name): nothing can succeed as sent
                detail = "; ".join(_describe(e) for e in general)
                for i in pending:
                    outcomes[i] = PushOutcome(updates[i], "failed", detail=detail)
                return
            retry: list[int] = []
            for position, i in enumerate(pending):
                row_errors = by_row.get(position)
                if not row_errors:
                    retry.append(i)  # rejected only because another row failed
                elif any(str(e.get("code", "")).endswith("_STALE") for e in row_errors):
                    outcomes[i] = PushOutcome(updates[i], "conflict",
                                              detail="; ".join(_describe(e) for e in row_errors))
                else:
                    outcomes[i] = PushOutcome(updates[i], "failed", detail="; ".join(_describe(e) for e in row_errors))
            pending = retry

    def _call(self, rows: list[StockUpdate]) -> dict[str, Any]:
        quantities = []
        for u in rows:
            q: dict[str, Any] = {"inventoryItemId": _gid("InventoryItem", u.item_id),
                                 "locationId": _gid("Location", u.location_id), "quantity": u.quantity}
            if self.change_from:
                q["changeFromQuantity"] = u.expected
            elif u.expected is not None:
                q["compareQuantity"] = u.expected
            quantities.append(q)
        data: dict[str, Any] = {"name": self.quantity_name, "reason": self.reason or rows[0].reason,
                                "referenceDocumentUri": "storesync://inventory/push", "quantities": quantities}
        if not self.change_from and rows[0].expected is None:
            data["ignoreCompareQuantity"] = True
        variables: dict[str, Any] = {"input": data}
        query = SET_QUANTITIES % {"key_var": "", "directive": ""}
        if self.idempotent:
            variables["key"] = _batch_key(rows)
            query = SET_QUANTITIES % {"key_var": ", $key: String!", "directive": " @idempotent(key: $key)"}
        for _ in range(MAX_THROTTLED):
            self.calls += 1
            body, response = self.http.post_json(f"/admin/api/{self.api_version}/graphql.json",
                                                 json={"query": query, "variables": variables}, idempotent=True)
            if response.status_code >= 400:
                raise FatalSyncError(f"{self.http.name}: inventorySetQuantities: HTTP {response.status_code}",
                                     connector=self.http.name)
            wait = _throttled_wait(body)
            if wait is None:
                break
            self.sleep(wait)
        else:
            raise FatalSyncError(f"{self.http.name}: inventorySetQuantities stayed THROTTLED after "
                                 f"{MAX_THROTTLED} waits", connector=self.http.name)
        if not isinstance(body, dict):
            raise FatalSyncError(f"{self.http.name}: inventorySetQuantities: expected a JSON object, got "
                                 f"{type(body).__name__}", connector=self.http.name)
        if body.get("errors"):
            raise FatalSyncError(f"{self.http.name}: inventorySetQuantities: "
                                 + "; ".join(_describe(e) for e in body["errors"]), connector=self.http.name)
        result = (body.get("data") or {}).get("inventorySetQuantities")
        if not isinstance(result, dict):
            raise FatalSyncError(f"{self.http.name}: inventorySetQuantities: the answer has no "
                                 "data.inventorySetQuantities", connector=self.http.name)
        return result


def _batch_key(rows: list[StockUpdate]) -> str:
    """A key stable for the same rows (so a retried push replays), different for any other set of rows."""
    digest = hashlib.blake2b(digest_size=16)
    for u in rows:
        digest.update(u.idempotency_key.encode())
        digest.update(b"\0")
    return f"storesync-{digest.hexdigest()}"


def _row_of(error: dict) -> int | None:
    """The row index in ``field`` = ["input", "quantities", "3", ...]."""
    field = error.get("field") or []
    if len(field) >= 3 and field[1] == "quantities":
        try:
            return int(field[2])
        except (TypeError, ValueError):
            return None
    return None


def _describe(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    code = error.get("code") or (error.get("extensions") or {}).get("code")
    return f"{code}: {error.get('message')}" if code else str(error.get("message"))


def _throttled_wait(body: Any) -> float | None:
    """Seconds to wait when a GraphQL answer says THROTTLED (cost bucket empty), else None."""
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if not isinstance(errors, list) or not any((e.get("extensions") or {}).get("code") == "THROTTLED"
                                               for e in errors if isinstance(e, dict)):
        return None
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        missing = float(cost.get("requestedQueryCost") or 10) - float(status.get("currentlyAvailable") or 0)
        return max(0.05, missing / float(status.get("restoreRate") or 50))
    except (TypeError, ValueError, ZeroDivisionError):
        return 1.0
