"""The sync loop: read -> map -> validate -> upsert, with the cursor committed in the batch's transaction.

At-least-once reads, exactly-once effect in the store: a crash (even kill -9) resumes from the last
committed batch, and re-reading is harmless because upserts are idempotent. A record that fails mapping or
validation is quarantined with its raw payload and the reason; the run goes on.
"""

from __future__ import annotations

import copy
import functools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .connector import Checkpoint, Connector, Invalid, Stream, Tombstone
from .cursor import CursorTracker
from .errors import LockedError, RecordMappingError, StoresyncError
from .lock import connector_lock
from .logjson import current_run
from .mapping import StreamMapping
from .pages import ON_BOUNDARY, Mapped, PageJob, PagePool, worker_count
from .plugins import PluginHost
from .recordmap import map_record, quarantine_entry, raw_text
from .report import RunReport, StreamReport
from .runstats import HTTP as HTTP_TALLY
from .runstats import HttpSnapshot, save_run_report
from .store import Store
from .writer import Item, Prepared, QuarantineEntry, RowPreparer

__all__ = ["ProgressFn", "SyncEngine"]

#: called after every batch with (connector_id, stream, records read so far)
ProgressFn = Callable[[str, str, int], None]


@dataclass
class _Batch:
    items: list[Prepared] = field(default_factory=list)
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    tombstones: list[str] = field(default_factory=list)
    state: Any = None
    has_state: bool = False

    def __len__(self) -> int:
        return len(self.items) + len(self.quarantine) + len(self.tombstones)


class SyncEngine:
    """Runs syncs of configured connector instances against one store."""

    def __init__(self, host: PluginHost, store: Store, *, progress: ProgressFn | None = None) -> None:
        self.host = host
        self.store = store
        self.progress = progress
        self.batch_size = host.config.storesync.batch_size
        self._veto_hook = bool(host.pm.hook.storesync_record_mapped.get_hookimpls())
        # a veto hook runs on this process, so with one every record is mapped here
        workers = 0 if self._veto_hook else worker_count(host.config.storesync.workers)
        self.pages = PagePool(workers)

    # -- public entry points ----------------------------------------------------------------------------

    def sync(self, connector_ids: Iterable[str] | None = None, *, streams: list[str] | None = None,
             full_refresh: bool = False, dry_run: bool = False, remap: bool = False) -> list[RunReport]:
        """Sync each connector instance (default: every enabled one); one report per instance."""
        ids = list(connector_ids or self.host.enabled_connectors())
        connectors = [self.host.connector(cid) for cid in ids]  # config errors surface before any work
        if not connector_ids:  # connectors that only send (an SMS gateway) have nothing to sync
            connectors = [c for c in connectors if c.streams()]
        plans = [(c, self._select(c, streams)) for c in connectors]
        reports = []
        if not remap and any(c.raw_pages for c in connectors):
            self.pages.start(self.host)  # forks: before any stream starts a thread
        try:
            for connector, selected in plans:
                report = self._run(connector, selected, full_refresh=full_refresh, dry_run=dry_run, remap=remap)
                self.host.hook.storesync_sync_finished(run=report)
                reports.append(report)
        finally:
            self.pages.close()
        return reports

    def retry_quarantine(self, connector_id: str, stream: str | None = None) -> RunReport:
        """Replay quarantined records of ``connector_id`` through the current mapping."""
        mapping = self.host.mapping(connector_id)
        report = RunReport(connector_id=connector_id)
        with connector_lock(self.store, connector_id):
            entries = self.store.quarantined(connector_id, stream)
            for name in sorted({e["stream"] for e in entries}):
                smap = mapping.stream(name)
                rep = StreamReport(stream=name, target=smap.target)
                report.streams.append(rep)
                named = [e for e in entries if e["stream"] == name]
                for start in range(0, len(named), self.batch_size):
                    self._retry_chunk(connector_id, name, smap, named[start:start + self.batch_size], rep)
        report.finish()
        return report

    def _retry_chunk(self, connector_id: str, name: str, smap: StreamMapping, entries: list[dict[str, Any]],
                     rep: StreamReport) -> None:
        items, fixed, still = [], [], []
        for entry in entries:
            rep.read += 1
            if not isinstance(entry["raw"], dict):  # unreadable at the source: no mapping can fix it
                still.append(quarantine_entry(entry["raw"], entry["reason"], key=entry["record_key"]))
                continue
            try:
                model = smap.to_model(entry["raw"])
            except RecordMappingError as exc:
                still.append(quarantine_entry(entry["raw"], str(exc), key=entry["record_key"], field=exc.field))
                continue
            items.append(Item(model.external_id, model, raw_text(entry["raw"])))
            fixed.append(entry["record_key"])
        rep.quarantined += len(still)
        with self.store.write() as w:
            counts = w.upsert(connector_id, name, smap.target, items)
            rep.inserted, rep.updated = rep.inserted + counts.inserted, rep.updated + counts.updated
            rep.unchanged += counts.unchanged
            w.clear_quarantine(connector_id, name, fixed)
            w.quarantine(connector_id, name, still, None)

    # -- one connector ----------------------------------------------------------------------------------

    def _select(self, connector: Connector, only: list[str] | None) -> list[tuple[Stream, StreamMapping]]:
        """The streams to sync with their mappings; unknown names raise ConfigError with a suggestion."""
        if not only and not connector.streams():  # a connector that only sends (an SMS gateway): nothing to read
            return []
        mapping = self.host.mapping(connector.id)
        section = self.host.config.connectors[connector.id]
        names = only or section.streams or [s.name for s in connector.streams() if s.name in mapping.streams]
        return [(connector.stream(n), mapping.stream(n)) for n in names]

    def _run(self, connector: Connector, selected: list[tuple[Stream, StreamMapping]], *, full_refresh: bool,
             dry_run: bool, remap: bool) -> RunReport:
        report = RunReport(connector_id=connector.id)
        started, http_before = time.perf_counter(), HTTP_TALLY.snapshot()
        HTTP_TALLY.open_run()  # one retry budget for all of this run's HTTP clients
        try:
            with connector_lock(self.store, connector.id):
                report.run_id = None if dry_run else self.store.start_run(connector.id)
                try:
                    with current_run(connector.id, report.run_id):  # tags log records (--log-format json)
                        self._run_streams(connector, selected, report, full_refresh, dry_run, remap)
                except StoresyncError as exc:
                    report.error, report.exception = str(exc), exc
                except Exception as exc:  # a connector bug must still end the run cleanly and be logged
                    report.error, report.exception = f"{type(exc).__name__}: {exc}", exc
                report.status = "dry-run" if dry_run else report.status
                report.finish()
                _account(report, started, HTTP_TALLY.since(http_before))
                if report.run_id is not None:
                    self.store.finish_run(report.run_id, report.status, report.counts(), report.error)
                    save_run_report(self.store.engine, report.run_id, connector.id, report.totals())
        except LockedError as exc:
            report.status, report.error, report.exception = "locked", str(exc), exc
        finally:
            HTTP_TALLY.close_run()
        return report

    def _run_streams(self, connector: Connector, selected: list[tuple[Stream, StreamMapping]],
                     report: RunReport, full_refresh: bool, dry_run: bool, remap: bool) -> None:
        if full_refresh and not dry_run:
            self.store.reset_cursors(connector.id, [s.name for s, _m in selected])
        for stream, smap in selected:
            rep = StreamReport(stream=stream.name, target=smap.target)
            report.streams.append(rep)
            start = time.perf_counter()
            try:
                if remap:
                    self._remap(connector, stream.name, smap, rep, report.run_id, dry_run)
                else:
                    self._sync_stream(connector, stream, smap, rep, report.run_id, dry_run)
            except StoresyncError as exc:
                rep.error, report.exception = str(exc), exc
            except Exception as exc:
                rep.error, report.exception = f"{type(exc).__name__}: {exc}", exc
            rep.seconds = round(time.perf_counter() - start, 3)

    def _sync_stream(self, connector: Connector, stream: Stream, smap: StreamMapping, rep: StreamReport,
                     run_id: int | None, dry_run: bool) -> None:
        saved = self.store.get_cursor(connector.id, stream.name)
        tracker = CursorTracker(stream.cursor_field, stream.primary_key, saved) if stream.cursor_field else None
        records = stream.read(tracker.start if tracker else saved)
        boundary = tracker.boundary if tracker is not None and tracker.start is not None else None
        job = PageJob(connector.id, stream.name, smap.target, self.store.dialect, stream.cursor_field,
                      stream.primary_key, boundary)
        records = self.pages.expand(records, job)  # RawPages decoded here, or mapped by worker processes
        had_quarantine = bool(self.store.quarantined(connector.id, stream.name, limit=1))
        self._consume(connector, stream.name, smap, records, rep, run_id, tracker=tracker, dry_run=dry_run,
                      clear_quarantine=had_quarantine)

    def _remap(self, connector: Connector, name: str, smap: StreamMapping, rep: StreamReport,
               run_id: int | None, dry_run: bool) -> None:
        def stored() -> Iterator[Any]:
            for batch in self.store.stored_raw(smap.target, connector.id, name, self.batch_size):
                yield from batch
        self._consume(connector, name, smap, stored(), rep, run_id, tracker=None, dry_run=dry_run,
                      clear_quarantine=False, save_cursor=False)

    # -- the loop ---------------------------------------------------------------------------------------

    def _consume(self, connector: Connector, name: str, smap: StreamMapping, records: Iterable[Any],
                 rep: StreamReport, run_id: int | None, *, tracker: CursorTracker | None, dry_run: bool,
                 clear_quarantine: bool, save_cursor: bool = True) -> None:
        batch = _Batch()
        prepare = RowPreparer(smap.target, self.store.dialect, connector.id, name)
        write = functools.partial(self._write, connector.id, name, smap.target, rep=rep, run_id=run_id,
                                  dry_run=dry_run, clear_quarantine=clear_quarantine, save_cursor=save_cursor)
        with _Writer() as writer:
            try:
                for obj in records:
                    self._take(connector, name, smap, prepare, obj, batch, rep, tracker)
                    if len(batch) >= self.batch_size:
                        writer.submit(write, _seal(batch, tracker, final=False))
                        batch = _Batch()
            except Exception:
                writer.submit(write, _seal(batch, tracker, final=False))  # what was read still lands
                writer.wait()
                raise
            writer.submit(write, _seal(batch, tracker, final=True))

    def _take(self, connector: Connector, name: str, smap: StreamMapping, prepare: RowPreparer, obj: Any,
              batch: _Batch, rep: StreamReport, tracker: CursorTracker | None) -> None:
        """Map and validate one yielded object into the batch (or its quarantine)."""
        if type(obj) is dict:
            rep.read += 1
            if tracker is not None and tracker.already_stored(obj):
                rep.unchanged += 1
                return
            vetoed = functools.partial(self._vetoed, connector, name) if self._veto_hook else None
            result = map_record(smap, prepare, obj, vetoed)
            if type(result) is QuarantineEntry:
                batch.quarantine.append(result)
            elif result is None:
                rep.vetoed += 1
            else:
                batch.items.append(result)
                if tracker is not None:
                    tracker.observe(obj)
        elif type(obj) is Mapped:  # mapped by a page worker
            rep.read += 1
            batch.items.append(obj.prepared)
            if tracker is not None:
                tracker.observe_value(obj.cursor, obj.key)
        elif obj is ON_BOUNDARY:
            rep.read += 1
            rep.unchanged += 1
        elif type(obj) is QuarantineEntry:
            rep.read += 1
            batch.quarantine.append(obj)
        elif isinstance(obj, Checkpoint):  # a snapshot: the writer thread saves it later, the stream may mutate it
            batch.state, batch.has_state = copy.deepcopy(obj.state), True
        elif isinstance(obj, Tombstone):
            batch.tombstones.append(str(obj.external_id))
        elif isinstance(obj, Invalid):
            rep.read += 1
            key = obj.external_id or _readable_key(smap, obj.payload)
            batch.quarantine.append(quarantine_entry(obj.payload, obj.reason, key=key))
        else:
            rep.read += 1
            batch.quarantine.append(quarantine_entry(obj, f"stream yielded {type(obj).__name__}, not a dict"))

    def _vetoed(self, connector: Connector, name: str, model: Any) -> bool:
        results = self.host.hook.storesync_record_mapped(connector=connector, stream=name, record=model)
        return any(r is False for r in results)

    def _write(self, connector_id: str, name: str, target: str, batch: _Batch, *, rep: StreamReport,
               run_id: int | None, dry_run: bool, clear_quarantine: bool, save_cursor: bool) -> None:
        """Write one sealed batch, its quarantine, tombstones and cursor in one transaction."""
        rep.quarantined += len(batch.quarantine)
        with self.store.write(rollback=dry_run) as w:
            counts = w.upsert_prepared(connector_id, name, target, batch.items)
            rep.inserted += counts.inserted
            rep.updated += counts.updated
            rep.unchanged += counts.unchanged
            rep.deleted += w.tombstone(connector_id, name, target, batch.tombstones)
            w.quarantine(connector_id, name, batch.quarantine, run_id)
            if clear_quarantine and batch.items:
                w.clear_quarantine(connector_id, name, [p.item.external_id for p in batch.items])
            if save_cursor and batch.has_state:
                w.save_cursor(connector_id, name, batch.state)
        if self.progress:
            self.progress(connector_id, name, rep.read)


def _readable_key(smap: StreamMapping, payload: Any) -> str | None:
    """The key of a record that could not be read whole (a CSV row with undecodable bytes) when its key fields
    could: its quarantine entry then clears itself once the record maps (e.g. after the file's encoding is set),
    instead of lingering under a hash of the bad bytes."""
    if not isinstance(payload, dict):
        return None
    try:
        return smap.key(payload)
    except (RecordMappingError, LookupError, TypeError, ValueError):
        return None


def _account(report: RunReport, started: float, http: HttpSnapshot) -> None:
    """Fill the run report's duration and HTTP work (core/runstats.py)."""
    report.seconds = round(time.perf_counter() - started, 3)
    report.http_requests, report.http_retries, report.last_retry_error = http.requests, http.retries, \
        http.last_retry_error


def _seal(batch: _Batch, tracker: CursorTracker | None, *, final: bool) -> _Batch | None:
    """Fix the cursor a batch will commit (on the reading thread); ``None`` if there is nothing to write."""
    if tracker is not None:
        batch.state = tracker.state(final=final)
        batch.has_state = batch.state is not None
    return batch if (len(batch) or batch.has_state) else None


class _Writer:
    """Writes sealed batches in order on one background thread while the next batch is read and mapped.

    At most one batch is being written while another is built, so memory stays bounded; a write error
    surfaces on the reading thread at the next submit or at the end.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storesync-writer")
        self._pending: Future[None] | None = None

    def submit(self, write: Callable[[_Batch], None], batch: _Batch | None) -> None:
        self.wait()
        if batch is not None:
            self._pending = self._pool.submit(write, batch)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)  # an interrupted run still finishes (or rolls back) its write
