"""Reading Odoo records incrementally: seek paging on ``write_date``, quants folded per product and location.

Odoo stores ``write_date`` with microseconds but reads it back to the second (``"YYYY-MM-DD HH:MM:SS"``,
UTC). So the cursor is a whole second and the boundary second is read again in full on the next run (never
skipped, never de-duplicated by id: a record changed twice within one second still arrives). Pages are asked
for with ``write_date >= <second of the last record>`` ordered by ``write_date asc, id asc``: a new page restarts
at the last second seen (records of that second already yielded are dropped), and a single second holding more
than a page is walked by id. A record that changes while the read runs moves to a later second and is met again
further on, so no record is skipped at a page edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from .client import OdooClient

__all__ = ["ORDER", "clean", "fold_quants", "seek_pages", "step_back"]

ORDER = "write_date asc, id asc"
ODOO_FORMAT = "%Y-%m-%d %H:%M:%S"


def seek_pages(client: OdooClient, model: str, domain: list, fields: list[str], *, since: str | None,
               page_size: int, context: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Pages of ``search_read`` records with ``write_date >= since``, oldest change first, none twice.

    A second holding more than a page is walked by id (``id > last id`` within ``[second, second + 1 s)``),
    never by offset: a record rewritten during the read leaves that second, and an offset would then step over
    the record that took its place.
    """
    lower, after_id, seen = since, None, set()
    fields = sorted({*fields, "write_date"})
    while True:
        if after_id is None:
            bound, order = ([("write_date", ">=", lower)] if lower else []), ORDER
        else:
            bound = [("write_date", ">=", lower), ("write_date", "<", _next_second(lower)), ("id", ">", after_id)]
            order = "id asc"
        page = client.call(model, "search_read", domain=[*domain, *bound], fields=fields, offset=0,
                           limit=page_size, order=order, context=dict(context or {}))
        fresh = [r for r in page if r["id"] not in seen]
        if fresh:
            yield fresh
        seen.update(r["id"] for r in page)
        if after_id is not None:  # walking one crowded second
            if len(page) < page_size:  # done with it: go on after it
                lower, after_id, seen = _next_second(lower), None, set()
            else:
                after_id = page[-1]["id"]
            continue
        if len(page) < page_size:
            return
        last = page[-1]["write_date"]
        if last == lower:  # one second holds more than a page: walk it by id
            after_id = 0
        else:
            lower = last
            seen = {r["id"] for r in page if r["write_date"] == last}


def _shift(second: str, seconds: int) -> str:
    """An Odoo ``write_date`` second moved by ``seconds``."""
    return (datetime.strptime(second, ODOO_FORMAT) + timedelta(seconds=seconds)).strftime(ODOO_FORMAT)


def _next_second(second: str) -> str:
    return _shift(second, 1)


def step_back(second: str | None, seconds: int) -> str | None:
    """``second`` minus ``seconds`` (the cursor's look-back for transactions that commit late)."""
    if not second or not seconds:
        return second
    return _shift(second, -seconds)


def clean(record: dict[str, Any], booleans: Iterable[str] = ()) -> dict[str, Any]:
    """Odoo's ``False`` for "not set" becomes ``None``, except in real boolean fields."""
    keep = set(booleans)
    return {k: (None if v is False and k not in keep else v) for k, v in record.items()}


def fold_quants(quants: Iterable[dict[str, Any]], skus: dict[int, str | None]) -> list[dict[str, Any]]:
    """One record per (product, location): quantities summed over lots and packages, newest write_date.

    ``{"id": "<product id>@<location id>", "product_id", "location_id", "location_name", "sku", "quantity",
    "reserved_quantity", "available_quantity", "write_date", "quant_ids"}``, sorted by write_date.
    """
    folded: dict[tuple[int, int], dict[str, Any]] = {}
    for quant in quants:
        product, location = quant["product_id"], quant["location_id"]
        pair = (product[0], location[0])
        record = folded.get(pair)
        if record is None:
            record = folded[pair] = {"id": f"{pair[0]}@{pair[1]}", "product_id": pair[0], "location_id": pair[1],
                                     "location_name": location[1], "sku": skus.get(pair[0]), "quantity": 0.0,
                                     "reserved_quantity": 0.0, "available_quantity": 0.0,
                                     "write_date": quant["write_date"], "quant_ids": []}
        for name in ("quantity", "reserved_quantity", "available_quantity"):
            record[name] += float(quant.get(name) or 0.0)
        record["write_date"] = max(record["write_date"], quant["write_date"])
        record["quant_ids"].append(quant["id"])
    return sorted(folded.values(), key=lambda r: (r["write_date"], r["id"]))
