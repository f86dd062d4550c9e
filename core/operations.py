"""What each CLI command does, as plain functions over a loaded configuration (the CLI only renders)."""

from __future__ import annotations

import gc
import itertools
from contextlib import contextmanager
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from .config import Config, load_config
from .connector import Invalid
from .engine import SyncEngine
from .pages import expand_pages
from .errors import ConfigError, ConfigIssue, MappingError, RecordMappingError
from .forwarding import config_issues as forwarding_issues
from .forwarding import forward_after_sync
from .inventory_config import inventory_issues
from .identity_config import identity_issues
from .plugins import PluginHost, build_plugin_host
from .progress import SyncProgress
from .report import RunReport
from .rules import notification_issues
from .store import Store

__all__ = ["Session", "read_records"]


class Session:
    """A loaded plugins.toml with its plugin host; the store opens on first use."""

    def __init__(self, config: Config, host: PluginHost) -> None:
        self.config = config
        self.host = host

    @classmethod
    def open(cls, config_path: str | None = None) -> Session:
        config = load_config(config_path)
        return cls(config, build_plugin_host(config))

    @cached_property
    def store(self) -> Store:
        return Store(self.config.database_url())

    # -- plugins and configuration ----------------------------------------------------------------------

    def plugin_rows(self) -> list[dict[str, Any]]:
        rows = []
        for info in self.host.infos.values():
            for type_name in info.connector_types or [None]:
                cls = self.host.connector_types.get(type_name) if type_name else None
                rows.append({
                    "plugin": info.name, "distribution": info.distribution, "version": info.version,
                    "connector_type": type_name, "capabilities": cls.capabilities() if cls else [],
                    "streams": self._stream_names(type_name) if type_name else [],
                })
        return rows

    def _stream_names(self, type_name: str) -> list[str]:
        names: list[str] = []
        for cid, section in self.config.connectors.items():
            if section.type == type_name:
                try:
                    names += [s.name for s in self.host.connector(cid).streams() if s.name not in names]
                except ConfigError:
                    continue
        return names

    def check_config(self) -> str:
        """Validate settings and mappings of every configured connector; raise one ConfigError with all issues."""
        issues = self.host.validate_connectors()
        if not issues:
            issues = self._mapping_issues(list(self.config.connectors)) + forwarding_issues(self.host)
        issues += inventory_issues(self.config)
        issues += identity_issues(self.config)
        issues += notification_issues(self.config)
        if issues:
            raise ConfigError(issues)
        where = self.config.path or "built-in defaults (no plugins.toml found)"
        return (f"{where}: OK ({len(self.config.connectors)} connectors, "
                f"{len(self.host.connector_types)} connector types loaded)")

    def _mapping_issues(self, connector_ids: list[str]) -> list[ConfigIssue]:
        issues: list[ConfigIssue] = []
        for cid in connector_ids:
            try:
                connector = self.host.connector(cid)
                streams = [s.name for s in connector.streams()]
                if not streams:  # a connector that only sends needs no mapping
                    continue
                mapping = self.host.mapping(cid)
            except ConfigError as exc:
                issues.extend(exc.issues)
                continue
            if not connector.configured_streams:
                issues.extend(mapping.check_streams(streams))
        return issues

    def check_mappings(self, connector_ids: list[str] | None) -> list[str]:
        ids = connector_ids or list(self.config.connectors)
        ids = [cid for cid in ids if self.host.connector(cid).streams()]  # senders (SMS) have no mapping
        issues = self._mapping_issues(ids)
        if issues:
            raise MappingError(issues)
        return [f"{cid}: {self.host.mapping_path(cid)[0]}: OK "
                f"({', '.join(sorted(self.host.mapping(cid).streams))})" for cid in ids]

    # -- mapping without a store ------------------------------------------------------------------------

    def apply_mapping(self, connector_id: str, stream: str, path: Path) -> Iterator[tuple[bool, dict[str, Any]]]:
        smap = self.host.mapping(connector_id).stream(stream)
        return _map_all(smap, read_records(path))

    def preview_mapping(self, connector_id: str, stream: str, limit: int) -> Iterator[tuple[bool, dict[str, Any]]]:
        smap = self.host.mapping(connector_id).stream(stream)
        source = expand_pages(self.host.connector(connector_id).stream(stream).read(None))
        records = (r for r in source if isinstance(r, dict | Invalid))
        return _map_all(smap, itertools.islice(records, limit))

    # -- syncing ----------------------------------------------------------------------------------------

    def sync(self, connector_ids: list[str] | None, *, streams: list[str] | None, full_refresh: bool,
             dry_run: bool, remap: bool, progress: bool) -> list[RunReport]:
        with SyncProgress(enabled=progress) as bar, _bulk_gc():
            engine = SyncEngine(self.host, self.store, progress=bar)
            reports = engine.sync(connector_ids, streams=streams, full_refresh=full_refresh, dry_run=dry_run,
                                  remap=remap)
        if not (streams or dry_run or remap):  # the order-forwarding step (core/forwarding.py)
            forward_after_sync(self.host, self.store, reports)
        return reports

    def retry_quarantine(self, connector_ids: list[str] | None, stream: str | None) -> list[RunReport]:
        engine = SyncEngine(self.host, self.store)
        ids = connector_ids or sorted({q["connector_id"] for q in self.store.quarantined()})
        return [engine.retry_quarantine(cid, stream) for cid in ids]


@contextmanager
def _bulk_gc() -> Iterator[None]:
    """Collect young garbage less often during bulk work (batches allocate many short-lived objects).

    Memory stays bounded: batches are bounded and nothing here creates reference cycles per record.
    """
    thresholds = gc.get_threshold()
    gc.freeze()  # start-up objects (plugins, mappings) never need scanning again
    gc.set_threshold(max(thresholds[0], 50_000), thresholds[1], thresholds[2])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _map_all(smap: Any, records: Any) -> Iterator[tuple[bool, dict[str, Any]]]:
    for index, raw in enumerate(records):
        if isinstance(raw, Invalid):
            yield False, {"index": index, "key": raw.external_id, "field": None, "reason": raw.reason}
            continue
        try:
            yield True, smap.to_model(raw).model_dump(mode="json")
        except RecordMappingError as exc:
            yield False, {"index": index, "key": exc.record_key, "field": exc.field, "reason": exc.message}


def read_records(path: Path) -> Iterator[Any]:
    """Raw records from a JSON array, a JSON object holding one array, or JSON Lines."""
    data = path.read_bytes()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, list):
        yield from doc
        return
    if isinstance(doc, dict):
        arrays = [v for v in doc.values() if isinstance(v, list)]
        if len(arrays) == 1:
            yield from arrays[0]
            return
        if arrays:
            raise ConfigError([ConfigIssue(str(path), "", "the JSON object holds several arrays; "
                                           "pass a file with one array of records")])
        yield doc
        return
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield Invalid(line.decode(errors="replace"), f"{path.name} line {number}: invalid JSON: {exc}")
