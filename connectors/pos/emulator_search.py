"""Order and customer searches of the Square emulator (``emulator_api.Api`` inherits them).

SearchOrders: ``location_ids`` (1 to 10), ``state_filter``, one ``date_time_filter`` field (created_at, updated_at
or closed_at) whose field the sort must use, ``sort_order``, ``return_entries``. SearchCustomers: the
``created_at``/``updated_at`` ranges, ``email_address``/``phone_number``/``reference_id`` exact or fuzzy,
``creation_source`` and ``group_ids`` filters, ``sort`` DEFAULT (creation order) or CREATED_AT.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import orjson

from .emulator_data import SquareStore
from .emulator_wire import ApiError, decode_cursor, limit_of, page, timestamp

__all__ = ["ORDER_STATES", "Searches"]

ORDER_STATES = frozenset({"OPEN", "COMPLETED", "CANCELED", "DRAFT"})
#: sort field -> where its value sits in ``SquareStore.order_meta``
ORDER_SORT = {"UPDATED_AT": 0, "CREATED_AT": 3, "CLOSED_AT": 4}


def _window(filters: dict, name: str, where: str) -> tuple[str, str | None]:
    window = filters.get(name) or {}
    start = timestamp(window["start_at"], f"{where}.{name}.start_at") if window.get("start_at") else ""
    end = timestamp(window["end_at"], f"{where}.{name}.end_at") if window.get("end_at") else None
    return start, end


class Searches:
    """``POST /v2/orders/search``, ``/v2/orders/batch-retrieve``, ``/v2/customers/search``, ``GET /v2/customers``."""

    def __init__(self, store: SquareStore) -> None:
        self.store = store

    # -- orders
    def orders_search(self, body: dict) -> bytes:
        places = body.get("location_ids")
        if not isinstance(places, list) or not 1 <= len(places) <= 10:
            raise ApiError(400, "INVALID_VALUE", "location_ids must hold 1 to 10 location ids.", field="location_ids")
        limit, after = limit_of(body, 500, 1000), decode_cursor(body)
        flt, sort = (body.get("query") or {}).get("filter") or {}, (body.get("query") or {}).get("sort") or {}
        states, dates = set((flt.get("state_filter") or {}).get("states") or ORDER_STATES), \
            flt.get("date_time_filter") or {}
        sort_field, descending = sort.get("sort_field", "CREATED_AT"), sort.get("sort_order") == "DESC"
        if sort_field not in ORDER_SORT or len(dates) > 1 or (dates and next(iter(dates)).upper() != sort_field):
            raise ApiError(400, "BAD_REQUEST", "Sort by CREATED_AT, UPDATED_AT or CLOSED_AT, and by the same field "
                           "as the one date_time_filter.", field="query.sort.sort_field")
        start, end = _window(dates, sort_field.lower(), "query.filter.date_time_filter")
        meta, wanted = self.store.order_meta, set(places)
        with self.store.lock:
            picked = []
            for value, oid in self._order_keys(sort_field, descending, start, after):
                if len(picked) > limit or (end and not descending and value > end):
                    break
                if (not end or value <= end) and value >= start and meta[oid][1] in wanted and meta[oid][2] in states:
                    picked.append((value, oid))
            found = [self.store.orders[oid] for _v, oid in picked[:limit]]
            if body.get("return_entries"):
                found = [orjson.dumps(_entry(orjson.loads(raw))) for raw in found]
            return page(found, "order_entries" if body.get("return_entries") else "orders", body,
                        list(picked[limit - 1]) if len(picked) > limit else None)

    def _order_keys(self, field: str, descending: bool, start: str, after: list | None) -> Any:
        """(sort value, id) in sort order from the cursor on; UPDATED_AT ascending walks the live index."""
        if field == "UPDATED_AT" and not descending:
            index = self.store.order_index
            i = bisect.bisect_right(index, tuple(after)) if after else bisect.bisect_left(index, (start, ""))
            return (index[j] for j in range(i, len(index)))
        column = ORDER_SORT[field]
        keys = sorted(((m[column], oid) for oid, m in self.store.order_meta.items() if m[column]),
                      reverse=descending)
        if after:
            edge = tuple(after)
            keys = [k for k in keys if (k < edge if descending else k > edge)]
        return iter(keys)

    def orders_batch_retrieve(self, body: dict) -> bytes:
        ids = body.get("order_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise ApiError(400, "INVALID_VALUE", "order_ids must hold 1 to 100 ids.", field="order_ids")
        with self.store.lock:
            found = [self.store.orders[i] for i in ids if i in self.store.orders]
        return b'{"orders":[%s]}' % b",".join(found) if found else b"{}"

    # -- customers
    def customers_search(self, body: dict) -> bytes:
        limit, after = limit_of(body, 100, 100), decode_cursor(body)
        query = body.get("query") or {}
        keep = _customer_filter(query.get("filter") or {}, self.store)
        sort = query.get("sort") or {}
        if sort.get("field", "DEFAULT") not in ("DEFAULT", "CREATED_AT"):
            raise ApiError(400, "INVALID_VALUE", "sort.field must be DEFAULT or CREATED_AT.", field="query.sort.field")
        return self._customers(body, limit, after or 0, keep, sort.get("field") == "CREATED_AT",
                               sort.get("order") == "DESC")

    def customers_list(self, params: dict) -> bytes:
        body = {"limit": params.get("limit", "100")}
        after = decode_cursor({**body, **({"cursor": params["cursor"]} if "cursor" in params else {})})
        limit = int(body["limit"]) if str(body["limit"]).isdigit() else 0
        if not 1 <= limit <= 100:
            raise ApiError(400, "INVALID_VALUE", "limit must be between 1 and 100.", field="limit")
        return self._customers(body, limit, after or 0, lambda cid: True, False, False)

    def _customers(self, body: dict, limit: int, position: int, keep: Callable[[str], bool], by_created: bool,
                   descending: bool) -> bytes:
        """Customers in order from ``position``; the next cursor is the position after the page."""
        with self.store.lock:
            ids = self.store.customer_ids
            if by_created:
                ids = sorted(ids, key=lambda c: (self.store.customer_meta[c][1], c))
            if descending:
                ids = ids[::-1]
            picked, i = [], position
            while i < len(ids) and len(picked) <= limit:
                if keep(ids[i]):
                    picked.append(i)
                i += 1
            found = [self.store.customers[ids[j]] for j in picked[:limit]]
            return page(found, "customers", body, picked[limit - 1] + 1 if len(picked) > limit else None)


def _entry(order: dict) -> dict:
    return {"order_id": order["id"], "location_id": order["location_id"], "version": order.get("version")}


def _customer_filter(flt: dict, store: SquareStore) -> Callable[[str], bool]:
    """A predicate on customer ids; only decodes a record when a filter needs more than its timestamps."""
    where = "query.filter"
    updated, created = _window(flt, "updated_at", where), _window(flt, "created_at", where)
    checks: list[Callable[[dict], bool]] = []
    for name in ("email_address", "phone_number", "reference_id"):
        rule = flt.get(name) or {}
        if rule.get("exact") is not None:
            checks.append(lambda c, n=name, v=str(rule["exact"]).lower(): str(c.get(n) or "").lower() == v)
        elif rule.get("fuzzy") is not None:
            checks.append(lambda c, n=name, v=str(rule["fuzzy"]).lower(): v in str(c.get(n) or "").lower())
    source = flt.get("creation_source") or {}
    if source.get("values"):
        include = source.get("rule", "INCLUDE") == "INCLUDE"
        checks.append(lambda c, vs=set(source["values"]): (c.get("creation_source") in vs) == include)
    groups = flt.get("group_ids") or {}
    for mode, test in (("all", set.issubset), ("any", lambda w, g: bool(w & g)), ("none", lambda w, g: not w & g)):
        if groups.get(mode):
            checks.append(lambda c, w=set(groups[mode]), t=test: t(w, set(c.get("group_ids") or ())))

    def keep(cid: str) -> bool:
        stamp_updated, stamp_created = store.customer_meta[cid]
        if not _inside(stamp_updated, updated) or not _inside(stamp_created, created):
            return False
        if not checks:
            return True
        record = orjson.loads(store.customers[cid])
        return all(check(record) for check in checks)
    return keep


def _inside(value: str, window: tuple[str, str | None]) -> bool:
    start, end = window
    return value >= start and (end is None or value <= end)
