"""The Square emulator's endpoints: request bodies in, ``(status, payload)`` out (``emulator`` serves them).

Cursors are opaque: base64 of the position plus a fingerprint of the query they belong to. GET lists take
``?cursor=``; POST searches take ``"cursor"`` in the body and must resend the original query, else
``INVALID_CURSOR``, as on Square.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from .emulator_data import DAY_MS, SquareStore, stamp
from .emulator_ledger import UNTRACKED, format_quantity

__all__ = ["ApiError", "Api"]

#: states a client may write (RESERVED_FOR_SALE and the vendor/online states are Square's own)
WRITABLE = frozenset({"IN_STOCK", "SOLD", "WASTE", "RETURNED_BY_CUSTOMER", "NONE", "UNLINKED_RETURN"})
ORDER_STATES = frozenset({"OPEN", "COMPLETED", "CANCELED", "DRAFT"})


class ApiError(Exception):
    """An error reply: ``{"errors": [{category, code, detail, field}]}`` with an HTTP status."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None,
                 category: str = "INVALID_REQUEST_ERROR") -> None:
        super().__init__(detail)
        error = {"category": category, "code": code, "detail": detail, **({"field": field} if field else {})}
        self.status, self.payload = status, {"errors": [error]}


def _fingerprint(body: dict) -> str:
    query = {k: v for k, v in body.items() if k != "cursor"}
    return hashlib.sha1(orjson.dumps(query, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def encode_cursor(body: dict, position: Any) -> str:
    raw = orjson.dumps({"q": _fingerprint(body), "p": position})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(body: dict) -> Any:
    """The position of ``body["cursor"]`` (None without one); INVALID_CURSOR if it is bad or the query changed."""
    text = body.get("cursor")
    if text is None:
        return None
    try:
        state = orjson.loads(base64.urlsafe_b64decode(str(text) + "=" * (-len(str(text)) % 4)))
        if state["q"] == _fingerprint(body):
            return state["p"]
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        pass
    raise ApiError(400, "INVALID_CURSOR", "The cursor is invalid or does not belong to this query.", field="cursor")


def _limit(body: dict, default: int, maximum: int) -> int:
    value = body.get("limit", default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise ApiError(400, "INVALID_VALUE" if isinstance(value, int) else "INCORRECT_TYPE",
                       f"limit must be an integer between 1 and {maximum}.", field="limit")
    return value


def _page(items: list[bytes], key: str, body: dict, next_position: Any) -> bytes:
    out = b'{"%s":[%s]' % (key.encode(), b",".join(items)) if items else b"{"
    if next_position is not None:
        out += (b"," if items else b"") + b'"cursor":' + orjson.dumps(encode_cursor(body, next_position))
    return out + b"}"


class Api:
    """Endpoint handlers over one :class:`SquareStore`."""

    def __init__(self, store: SquareStore) -> None:
        self.store = store
        self.replays: dict[str, tuple[str, bytes]] = {}

    # -- locations and catalog
    def locations(self) -> bytes:
        return orjson.dumps({"locations": self.store.locations})

    def catalog_search(self, body: dict) -> bytes:
        limit, after = _limit(body, 100, 1000), decode_cursor(body)
        types = set(body.get("object_types") or ("ITEM", "ITEM_VARIATION"))
        begin, deleted = body.get("begin_time"), bool(body.get("include_deleted_objects"))
        with self.store.lock:
            objects = self._catalog_objects(types)
            picked = [o for o in objects if (deleted or not o["is_deleted"]) and (not begin or o["updated_at"] > begin)
                      and (after is None or o["id"] > after)]
            page = picked[:limit]
            latest = max((o["updated_at"] for o in objects), default=None)
            data = _page([orjson.dumps(o) for o in page], "objects", body,
                         page[-1]["id"] if len(picked) > limit else None)
        return data[:-1] + b',"latest_time":' + orjson.dumps(latest) + b"}" if data != b"{}" else data

    def catalog_list(self, params: dict) -> bytes:
        body = {"types": params.get("types", "")}
        after = decode_cursor({**body, **({"cursor": params["cursor"]} if "cursor" in params else {})})
        types = {t.strip() for t in params.get("types", "ITEM,ITEM_VARIATION").split(",") if t.strip()}
        with self.store.lock:
            picked = [o for o in self._catalog_objects(types) if not o["is_deleted"] and (after is None or
                                                                                          o["id"] > after)]
            return _page([orjson.dumps(o) for o in picked[:100]], "objects", body,
                         picked[99]["id"] if len(picked) > 100 else None)

    def _catalog_objects(self, types: set[str]) -> list[dict]:
        out = []
        for item in self.store.items.values():
            if "ITEM" in types:
                out.append(item)
            if "ITEM_VARIATION" in types:
                out.extend(item["item_data"]["variations"])
        return sorted(out, key=lambda o: o["id"])

    # -- inventory
    def counts(self, body: dict) -> bytes:
        limit, after = _limit(body, 1000, 1000), decode_cursor(body)
        objects, places = body.get("catalog_object_ids"), body.get("location_ids")
        states, since = body.get("states"), body.get("updated_after")
        objects, places, states = (set(x) if x else None for x in (objects, places, states))
        with self.store.lock:
            keys = sorted(self.store.ledger.counts)
            start = bisect.bisect_right(keys, tuple(after)) if after else 0
            picked = []
            for key in keys[start:]:
                count = self.store.ledger.counts[key]
                if (objects is None or key[0] in objects) and (places is None or key[1] in places) and \
                        (states is None or key[2] in states) and (not since or stamp(count.calculated_ms) > since):
                    picked.append(key)
                    if len(picked) > limit:
                        break
            page = [orjson.dumps(self._count(key)) for key in picked[:limit]]
            return _page(page, "counts", body, list(picked[limit - 1]) if len(picked) > limit else None)

    def _count(self, key: tuple[str, str, str]) -> dict:
        count = self.store.ledger.counts[key]
        return {"catalog_object_id": key[0], "catalog_object_type": "ITEM_VARIATION", "state": key[2],
                "location_id": key[1], "quantity": format_quantity(count.quantity),
                "calculated_at": stamp(count.calculated_ms)}

    def change_inventory(self, body: dict) -> bytes:
        """batch-create: idempotent by key (same key and body: the first answer again, stock changed once)."""
        key = body.get("idempotency_key")
        if not isinstance(key, str) or not key:
            raise ApiError(400, "MISSING_REQUIRED_PARAMETER", "idempotency_key is required.", field="idempotency_key")
        fingerprint = _fingerprint({k: v for k, v in body.items() if k != "idempotency_key"})
        with self.store.lock:
            if key in self.replays:
                seen, reply = self.replays[key]
                if seen != fingerprint:
                    raise ApiError(400, "IDEMPOTENCY_KEY_REUSED", "The idempotency key was used for another "
                                   "request.", field="idempotency_key")
                return reply
            reply = self._apply_changes(body)
            self.replays[key] = (fingerprint, reply)
            return reply

    def _apply_changes(self, body: dict) -> bytes:
        changes = body.get("changes")
        if not isinstance(changes, list) or not 1 <= len(changes) <= 100:
            raise ApiError(400, "INVALID_VALUE", "changes must hold 1 to 100 changes.", field="changes")
        now_ms = self.store.now_ms()
        plan = [self._check_change(i, change, now_ms) for i, change in enumerate(changes)]
        ignore_unchanged = body.get("ignore_unchanged_counts", True)
        ledger, recorded = self.store.ledger, []
        for i, (kind, obj, location, states, quantity, occurred) in enumerate(plan):
            change_id = f"CHG{now_ms}{i:03d}"
            if kind == "PHYSICAL_COUNT":
                if ignore_unchanged and ledger.current((obj, location, states[0])) == quantity:
                    continue
                ledger.physical_count((obj, location, states[0]), quantity, occurred, now_ms, change_id)
            else:
                ledger.adjustment(obj, location, states[0], states[1], quantity, occurred, now_ms, change_id)
            recorded.append({"type": kind, "id": change_id, "created_at": stamp(now_ms), **changes[i]})
        keys = sorted({(obj, loc, state) for _kind, obj, loc, states, *_ in plan for state in (*states, "IN_STOCK")
                       if (obj, loc, state) in ledger.counts})
        return orjson.dumps({"counts": [self._count(k) for k in keys], "changes": recorded})

    def _check_change(self, i: int, change: Any, now_ms: int) -> tuple:
        where = f"changes[{i}]"
        kind = change.get("type") if isinstance(change, dict) else None
        if kind not in ("PHYSICAL_COUNT", "ADJUSTMENT"):
            raise ApiError(400, "INVALID_ENUM_VALUE", "type must be PHYSICAL_COUNT or ADJUSTMENT (the emulator "
                           "does not take TRANSFER).", field=f"{where}.type")
        part = change.get("physical_count" if kind == "PHYSICAL_COUNT" else "adjustment") or {}
        where += ".physical_count" if kind == "PHYSICAL_COUNT" else ".adjustment"
        obj, location = part.get("catalog_object_id"), part.get("location_id")
        if obj not in self.store.variation_item:
            raise ApiError(400, "NOT_FOUND", f"Catalog object {obj!r} was not found.",
                           field=f"{where}.catalog_object_id")
        if location not in self.store.location_ids:
            raise ApiError(400, "NOT_FOUND", f"Location {location!r} was not found.", field=f"{where}.location_id")
        states = [part.get("state")] if kind == "PHYSICAL_COUNT" else [part.get("from_state"), part.get("to_state")]
        if any(s not in WRITABLE for s in states) or (kind == "PHYSICAL_COUNT" and states[0] in UNTRACKED):
            raise ApiError(400, "INVALID_VALUE", f"State {states} cannot be set through the API.",
                           field=f"{where}.state")
        try:
            quantity = Decimal(str(part.get("quantity")))
        except InvalidOperation:
            quantity = Decimal(-1)
        if not quantity.is_finite() or quantity < 0:
            raise ApiError(400, "INVALID_VALUE", "quantity must be a non-negative decimal string.",
                           field=f"{where}.quantity")
        return kind, obj, location, states, quantity, self._occurred(part.get("occurred_at"), now_ms, where)

    @staticmethod
    def _occurred(value: Any, now_ms: int, where: str) -> str:
        if not isinstance(value, str) or len(value) < 20 or not value.endswith("Z"):
            raise ApiError(400, "INVALID_TIME", "occurred_at must be an RFC 3339 UTC timestamp.",
                           field=f"{where}.occurred_at")
        text = value if "." in value else value[:-1] + ".000Z"
        text = text[:text.index(".") + 4] + "Z"
        if text > stamp(now_ms):
            raise ApiError(400, "INVALID_TIME", "occurred_at cannot be in the future.", field=f"{where}.occurred_at")
        if text < stamp(now_ms - DAY_MS):
            raise ApiError(400, "INVALID_TIME", "occurred_at cannot be more than 24 hours in the past.",
                           field=f"{where}.occurred_at")
        return text

    # -- orders and customers
    def orders_search(self, body: dict) -> bytes:
        places = body.get("location_ids")
        if not isinstance(places, list) or not 1 <= len(places) <= 10:
            raise ApiError(400, "INVALID_VALUE", "location_ids must hold 1 to 10 location ids.", field="location_ids")
        limit, after = _limit(body, 500, 1000), decode_cursor(body)
        query = body.get("query") or {}
        flt, sort = query.get("filter") or {}, query.get("sort") or {}
        states = set((flt.get("state_filter") or {}).get("states") or ORDER_STATES)
        window = (flt.get("date_time_filter") or {}).get("updated_at") or {}
        if (flt.get("date_time_filter") or {}) and sort.get("sort_field") != "UPDATED_AT":
            raise ApiError(400, "BAD_REQUEST", "When filtering on updated_at, sort_field must be UPDATED_AT.",
                           field="query.sort.sort_field")
        start, end, wanted = window.get("start_at") or "", window.get("end_at"), set(places)
        with self.store.lock:
            index, meta = self.store.order_index, self.store.order_meta
            i = bisect.bisect_right(index, tuple(after)) if after else bisect.bisect_left(index, (start, ""))
            picked = []
            while i < len(index) and len(picked) <= limit:
                updated, oid = index[i]
                i += 1
                if end and updated > end:
                    break
                if meta[oid][1] in wanted and meta[oid][2] in states:
                    picked.append((updated, oid))
            return _page([self.store.orders[oid] for _u, oid in picked[:limit]], "orders", body,
                         list(picked[limit - 1]) if len(picked) > limit else None)

    def orders_batch_retrieve(self, body: dict) -> bytes:
        ids = body.get("order_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise ApiError(400, "INVALID_VALUE", "order_ids must hold 1 to 100 ids.", field="order_ids")
        with self.store.lock:
            found = [self.store.orders[i] for i in ids if i in self.store.orders]
        return b'{"orders":[%s]}' % b",".join(found) if found else b"{}"

    def customers_search(self, body: dict) -> bytes:
        limit, after = _limit(body, 100, 100), decode_cursor(body)
        window = (((body.get("query") or {}).get("filter") or {}).get("updated_at")) or {}
        start, end = window.get("start_at") or "", window.get("end_at")
        return self._customers(body, limit, after or 0, lambda u: u >= start and (not end or u <= end))

    def customers_list(self, params: dict) -> bytes:
        body = {"limit": params.get("limit", "100")}
        after = decode_cursor({**body, **({"cursor": params["cursor"]} if "cursor" in params else {})})
        try:
            limit = int(body["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise ApiError(400, "INVALID_VALUE", "limit must be between 1 and 100.", field="limit")
        return self._customers(body, limit, after or 0, lambda u: True)

    def _customers(self, body: dict, limit: int, position: int, keep: Callable[[str], bool]) -> bytes:
        """Customers in creation order from ``position``; the next cursor is the position after the page."""
        with self.store.lock:
            ids, meta, picked, i = self.store.customer_ids, self.store.customer_meta, [], position
            while i < len(ids) and len(picked) <= limit:
                if keep(meta[ids[i]]):
                    picked.append(i)
                i += 1
            page = [self.store.customers[ids[j]] for j in picked[:limit]]
            return _page(page, "customers", body, picked[limit - 1] + 1 if len(picked) > limit else None)
