"""Raw record shapes the ``square`` streams yield that Square itself does not have.

Square reports stock as one count per (catalog object, location, state). storesync's inventory level is per
(variation, location), so :func:`level_records` folds the counts of a pair into one record::

    {"id": "<variation id>@<location id>", "catalog_object_id": ..., "catalog_object_type": "ITEM_VARIATION",
     "location_id": ..., "calculated_at": <latest calculated_at of its states>,
     "states": {"IN_STOCK": "10", "RESERVED_FOR_SALE": "2", ...}}

A state absent from ``states`` has no count (zero). The mapping reads ``states.IN_STOCK`` as on hand and
``states.RESERVED_FOR_SALE`` as committed and keeps the whole ``states`` table in attributes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["level_id", "level_records", "rfc3339", "step_back"]


def level_id(catalog_object_id: str, location_id: str) -> str:
    """The id of a folded level record: ``<variation id>@<location id>``."""
    return f"{catalog_object_id}@{location_id}"


def level_records(counts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold Square ``InventoryCount`` objects into one record per (catalog object, location), in first-seen order."""
    folded: dict[tuple[str, str], dict[str, Any]] = {}
    for count in counts:
        pair = (str(count.get("catalog_object_id")), str(count.get("location_id")))
        record = folded.get(pair)
        if record is None:
            record = folded[pair] = {"id": level_id(*pair), "catalog_object_id": pair[0],
                                     "catalog_object_type": count.get("catalog_object_type", "ITEM_VARIATION"),
                                     "location_id": pair[1], "calculated_at": count.get("calculated_at"),
                                     "states": {}}
        record["states"][str(count.get("state"))] = count.get("quantity")
        stamp = count.get("calculated_at")
        if stamp and (record["calculated_at"] is None or stamp > record["calculated_at"]):
            record["calculated_at"] = stamp
    return list(folded.values())


def rfc3339(moment: datetime) -> str:
    """Square's timestamp form: UTC with milliseconds, e.g. ``2025-06-30T15:59:59.123Z``."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def step_back(stamp: str | None) -> str | None:
    """``stamp`` minus one millisecond, so an exclusive "after" filter still returns the boundary records.

    The engine drops the records it already stored at the boundary (``>=`` plus primary-key de-duplication).
    """
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return rfc3339(moment - timedelta(milliseconds=1))
