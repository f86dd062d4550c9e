"""One raw record to a prepared row or a quarantine entry: the per-record step of a sync.

Shared by the engine's own loop and the page workers (``core/pages.py``), so a record maps the same way on
either side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from .errors import RecordMappingError
from .mapping import StreamMapping
from .tables import json_text
from .writer import Item, Prepared, QuarantineEntry, RowPreparer

__all__ = ["map_record", "quarantine_entry", "raw_text"]


def raw_text(obj: Any) -> str:
    """A raw payload as JSON text for storage (anything unserialisable is stringified)."""
    if isinstance(obj, bytes):
        obj = obj.decode("utf-8", errors="backslashreplace")
    try:
        return orjson.dumps(obj, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json_text(repr(obj))


def quarantine_entry(raw: Any, reason: str, *, key: str | None = None, field: str | None = None) -> QuarantineEntry:
    text = raw_text(raw)
    record_key = key if key else "sha1:" + hashlib.sha1(text.encode()).hexdigest()
    return QuarantineEntry(record_key=record_key, external_id=key, field=field, reason=reason, raw=text)


def map_record(smap: StreamMapping, prepare: RowPreparer, obj: dict[str, Any],
               vetoed: Callable[[Any], bool] | None = None) -> Prepared | QuarantineEntry | None:
    """Map, validate and prepare ``obj``; a quarantine entry if it does not map; ``None`` if ``vetoed``."""
    try:
        model = smap.to_model(obj)
    except RecordMappingError as exc:
        return quarantine_entry(obj, str(exc), key=exc.record_key, field=exc.field)
    if vetoed is not None and vetoed(model):
        return None
    raw = orjson.dumps(obj, default=str)
    return prepare(Item(model.external_id, model, raw.decode()), raw)
