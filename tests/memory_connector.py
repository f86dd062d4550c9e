"""A test connector reading records from a JSON file: ``{"items": [ {...}, ... ]}``.

The ``items`` stream has ``cursor_field = "updated_at"``: it yields records with ``updated_at >= cursor`` in
(updated_at, id) order, like a real API read with ``updated_at_min``. A record with ``"_deleted": true``
becomes a Tombstone. ``fail_after`` raises FatalSyncError after that many records. ``reads`` counts calls.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from storesync import Connector, FatalSyncError, Stream, Tombstone, hookimpl

READS: list[str] = []


class MemorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: str
    fail_after: int | None = None


class MemoryConnector(Connector):
    name = "memory"
    Settings = MemorySettings

    def streams(self):
        return [Stream("items", "customer", cursor_field="updated_at", reader=self._items)]

    def check(self):
        return "memory"

    def _items(self, cursor):
        READS.append("items")
        records = json.loads(Path(self.context.resolve(self.settings.data)).read_text())["items"]
        records = sorted((r for r in records if cursor is None or r["updated_at"] >= cursor),
                         key=lambda r: (r["updated_at"], r["id"]))
        for n, record in enumerate(records):
            if self.settings.fail_after is not None and n >= self.settings.fail_after:
                raise FatalSyncError("memory source went away (HTTP 503 after retries)")
            if record.get("_deleted"):
                yield Tombstone(str(record["id"]))
            else:
                yield record


@hookimpl
def storesync_register_connectors(register):
    register(MemoryConnector)
