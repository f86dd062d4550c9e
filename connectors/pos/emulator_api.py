"""The Square emulator's endpoints: request bodies in, JSON bytes out (``emulator`` serves them).

Locations, catalog and inventory live here; order and customer searches in ``emulator_search``.
"""

from __future__ import annotations

import bisect
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from .emulator_data import DAY_MS, SquareStore, stamp
from .emulator_ledger import UNTRACKED, format_quantity
from .emulator_search import Searches
from .emulator_wire import ApiError, decode_cursor, fingerprint, limit_of, page, timestamp

__all__ = ["Api", "ApiError"]

#: states a client may write (RESERVED_FOR_SALE and the vendor/online states are Square's own)
WRITABLE = frozenset({"IN_STOCK", "SOLD", "WASTE", "RETURNED_BY_CUSTOMER", "NONE", "UNLINKED_RETURN"})


class Api(Searches):
    """Endpoint handlers over one :class:`SquareStore`."""

    def __init__(self, store: SquareStore) -> None:
        super().__init__(store)
        self.replays: dict[str, tuple[str, bytes]] = {}

    # -- locations and catalog
    def locations(self) -> bytes:
        return orjson.dumps({"locations": self.store.locations})

    def catalog_search(self, body: dict) -> bytes:
        limit, after = limit_of(body, 100, 1000), decode_cursor(body)
        types = set(body.get("object_types") or ("ITEM", "ITEM_VARIATION"))
        begin = timestamp(body["begin_time"], "begin_time") if body.get("begin_time") else None
        deleted, prefix = bool(body.get("include_deleted_objects")), _name_prefix(body)
        with self.store.lock:
            objects = self._catalog_objects(types)
            picked = [o for o in objects if (deleted or not o["is_deleted"]) and (not begin or o["updated_at"] > begin)
                      and (after is None or o["id"] > after) and (not prefix or _name(o).startswith(prefix))]
            shown = picked[:limit]
            latest = max((o["updated_at"] for o in objects), default=None)
            data = page([orjson.dumps(o) for o in shown], "objects", body,
                        shown[-1]["id"] if len(picked) > limit else None)
        return data[:-1] + b',"latest_time":' + orjson.dumps(latest) + b"}" if data != b"{}" else data

    def catalog_list(self, params: dict) -> bytes:
        body = {"types": params.get("types", "")}
        after = decode_cursor({**body, **({"cursor": params["cursor"]} if "cursor" in params else {})})
        types = {t.strip() for t in params.get("types", "ITEM,ITEM_VARIATION").split(",") if t.strip()}
        with self.store.lock:
            picked = [o for o in self._catalog_objects(types) if not o["is_deleted"] and (after is None or
                                                                                          o["id"] > after)]
            return page([orjson.dumps(o) for o in picked[:100]], "objects", body,
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
        limit, after = limit_of(body, 1000, 1000), decode_cursor(body)
        objects, places = body.get("catalog_object_ids"), body.get("location_ids")
        states = body.get("states")
        since = timestamp(body["updated_after"], "updated_after") if body.get("updated_after") else None
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
            shown = [orjson.dumps(self._count(key)) for key in picked[:limit]]
            return page(shown, "counts", body, list(picked[limit - 1]) if len(picked) > limit else None)

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
        request = fingerprint({k: v for k, v in body.items() if k != "idempotency_key"})
        with self.store.lock:
            if key in self.replays:
                seen, reply = self.replays[key]
                if seen != request:
                    raise ApiError(400, "IDEMPOTENCY_KEY_REUSED", "The idempotency key was used for another "
                                   "request.", field="idempotency_key")
                return reply
            reply = self._apply_changes(body)
            self.replays[key] = (request, reply)
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
        if not isinstance(value, str):
            raise ApiError(400, "INVALID_TIME", "occurred_at is required.", field=f"{where}.occurred_at")
        text = timestamp(value, f"{where}.occurred_at")
        if text > stamp(now_ms):
            raise ApiError(400, "INVALID_TIME", "occurred_at cannot be in the future.", field=f"{where}.occurred_at")
        if text < stamp(now_ms - DAY_MS):
            raise ApiError(400, "INVALID_TIME", "occurred_at cannot be more than 24 hours in the past.",
                           field=f"{where}.occurred_at")
        return text


def _name_prefix(body: dict) -> str | None:
    """The lower-cased ``query.prefix_query`` on ``name``, the one catalog query the emulator understands."""
    prefix = ((body.get("query") or {}).get("prefix_query")) or {}
    if prefix and prefix.get("attribute_name") != "name":
        raise ApiError(400, "INVALID_VALUE", "The emulator's prefix_query takes attribute_name 'name' only.",
                       field="query.prefix_query.attribute_name")
    return str(prefix["attribute_prefix"]).lower() if prefix.get("attribute_prefix") else None


def _name(obj: dict) -> str:
    data = obj.get("item_data") or obj.get("item_variation_data") or {}
    return str(data.get("name") or "").lower()
