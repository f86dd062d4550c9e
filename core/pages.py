"""Pages mapped in worker processes: decode, map, validate and hash a page's records off the main process.

A big sync is CPU-bound in Python: decoding each JSON page, mapping and validating its records and hashing them
take several times longer than downloading the page or writing its rows. Threads cannot share that work (the
GIL), processes can. A stream that yields ``RawPage`` objects lets ``PagePool`` send each page's bytes to a
worker process, which returns the page's records already turned into row parameters (``Prepared``),
quarantine entries or "already stored at the cursor boundary" markers, in the page's order. This process keeps
downloading (the connector's read-ahead thread) and writing (the engine's writer thread) meanwhile.

Workers are forked when a sync of a connector that yields raw pages starts, before the sync starts any
thread, so they begin with the plugin host and compiled mappings already in memory (nothing to import or
compile, pages shared with this process until written) and with plugins registered in-process too. If a worker
dies or a page cannot be sent to one, the rest of the run decodes pages on this process, with a warning: the
store ends the same either way, only the speed differs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

from .connector import RawPage
from .cursor import Boundary
from .errors import RetriableSyncError
from .recordmap import map_record
from .writer import Prepared, QuarantineEntry, RowPreparer, keeps_model

__all__ = ["ON_BOUNDARY", "Mapped", "PageJob", "PagePool", "decode_page", "expand_pages", "worker_count"]

logger = logging.getLogger("storesync.pages")

#: a body that does not decode is downloaded again at most this many times
MAX_REFETCHES = 3
#: a stream's first pages are decoded here (a small stream gains nothing from the round trip)
INLINE_PAGES = 2
#: ``[storesync] workers`` when unset: one per CPU, at most this many, none on a single CPU
AUTO_WORKERS_MAX = 4


class Mapped(NamedTuple):
    """A record a worker mapped: its row, and the cursor value and primary key the tracker observes."""

    prepared: Prepared
    cursor: Any
    key: str


class _OnBoundary:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ON_BOUNDARY"

    def __reduce__(self) -> str:
        return "ON_BOUNDARY"  # unpickles as this module's one instance, so ``is`` holds across processes


#: a record an earlier run stored at exactly the saved cursor value (counted as unchanged)
ON_BOUNDARY = _OnBoundary()


class PageJob(NamedTuple):
    """The stream a page belongs to, as a worker needs it."""

    connector_id: str
    stream: str
    target: str
    dialect: str
    cursor_field: str | None
    primary_key: str
    boundary: Boundary | None


def worker_count(setting: int | None) -> int:
    """Worker processes for ``[storesync] workers`` (``None``: automatic)."""
    if setting is not None:
        return setting
    cpus = os.cpu_count() or 1
    return 0 if cpus < 2 else min(cpus, AUTO_WORKERS_MAX)


def decode_page(page: RawPage) -> list[Any]:
    """The records of ``page``, decoded on this process; a body that does not decode is downloaded again."""
    body = page.body
    for attempt in range(MAX_REFETCHES + 1):
        try:
            return page.decode(body)
        except ValueError as exc:
            if page.refetch is None or attempt == MAX_REFETCHES:
                tried = f" (downloaded {attempt + 1} times)" if page.refetch else ""
                raise RetriableSyncError(f"a page of {len(body):,} bytes does not decode{tried}: {exc}",
                                         hint="a truncated download; run the sync again") from None
            logger.warning("a page of %d bytes does not decode (%s); downloading it again", len(body), exc)
            body = page.refetch()
    raise AssertionError("unreachable")


def expand_pages(records: Iterable[Any]) -> Iterator[Any]:
    """``records`` with every ``RawPage`` replaced by its decoded records (for readers other than the engine)."""
    for obj in records:
        if type(obj) is RawPage:
            yield from decode_page(obj)
        else:
            yield obj


class PagePool:
    """Worker processes that map ``RawPage``s; one pool serves every stream of a run."""

    def __init__(self, workers: int, *, inline_pages: int = INLINE_PAGES) -> None:
        self.workers = workers
        self.inline_pages = inline_pages
        self.pages_mapped = 0  # by workers
        self._executor: ProcessPoolExecutor | None = None
        self._off_reason: str | None = "not started"
        self._checked: Any = None  # the last decode function known to pickle

    @property
    def active(self) -> bool:
        return self._off_reason is None

    def start(self, host: Any) -> None:
        """Fork the workers now, with ``host`` (a ``PluginHost`` whose mappings are compiled) in their memory.

        Call it before the run starts threads: a forked child gets only the forking thread, and a lock another
        thread held at that moment would stay locked in the child.
        """
        if self.workers <= 0 or self._executor is not None:
            return
        try:
            context = multiprocessing.get_context("fork")
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                                 initargs=(host,))
            self._executor.submit(int).result()  # with fork, the first submit starts every worker
        except (OSError, ValueError, RuntimeError, BrokenProcessPool) as exc:  # no fork here, or out of processes
            self._executor = None
            logger.warning("page workers could not start (%s: %s); mapping on the main process",
                           type(exc).__name__, exc)
            return
        self._off_reason = None

    def expand(self, records: Iterable[Any], job: PageJob) -> Iterator[Any]:
        """What ``records`` yields, in order, with each ``RawPage`` replaced by its records.

        Pages past the first few go to the workers (one more in flight than there are workers) and come back as
        ``Mapped``, ``QuarantineEntry``, ``ON_BOUNDARY`` or other non-dict objects the stream put in the page;
        the others come back decoded, as dicts, for the engine to map itself.
        """
        pending: deque[tuple[RawPage, Future[Any]]] = deque()
        seen = 0
        for obj in records:
            if type(obj) is RawPage:
                seen += 1
                if self.active and seen > self.inline_pages and self._sendable(obj.decode):
                    pending.append((obj, self._submit(obj, job)))
                    if len(pending) > self.workers:
                        yield from self._collect(*pending.popleft())
                    continue
                while pending:
                    yield from self._collect(*pending.popleft())
                yield from decode_page(obj)
            else:
                while pending:
                    yield from self._collect(*pending.popleft())
                yield obj
        while pending:
            yield from self._collect(*pending.popleft())

    def close(self) -> None:
        """Stop the workers; pages are decoded on this process until ``start`` is called again."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._off_reason = "closed"

    # -- internals

    def _sendable(self, decode: Any) -> bool:
        """Whether ``decode`` pickles (checked once per decode object: a stream uses one for all its pages).

        Checked here, before submitting: a task that fails to pickle inside the pool can leave its workers
        waiting for work that never comes.
        """
        if decode is self._checked:
            return True
        try:
            pickle.dumps(decode)
        except Exception as exc:  # noqa: BLE001 - any failure to pickle means the same: map here
            self._turn_off(f"the page's decode function cannot be sent to a worker: {type(exc).__name__}: {exc}")
            return False
        self._checked = decode
        return True

    def _submit(self, page: RawPage, job: PageJob) -> Future[Any]:
        assert self._executor is not None
        return self._executor.submit(_map_page, page.body, page.decode, job)

    def _collect(self, page: RawPage, future: Future[Any]) -> Iterator[Any]:
        try:
            results = future.result()
        except Exception as exc:  # a worker that cannot start, died, or a page that does not pickle
            self._turn_off(f"{type(exc).__name__}: {exc}")
            results = None
        if results is None:  # the body did not decode in the worker, or the pool failed: do it here
            yield from decode_page(page)
            return
        self.pages_mapped += 1
        yield from results

    def _turn_off(self, reason: str) -> None:
        if self._off_reason is None:
            logger.warning("page workers are off for the rest of this run (%s); mapping on the main process",
                           reason)
            self._off_reason = reason
        executor, self._executor = self._executor, None
        if executor is not None:
            workers = list(getattr(executor, "_processes", {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
            for process in workers:
                process.join(timeout=5)  # they leave on the shutdown signal
                if process.is_alive():  # (seen only after a task failed to pickle, which _sendable prevents)
                    process.terminate()


# -- the worker side -------------------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _adopt(host: Any) -> None:
    """Map pages of ``host``'s connectors in this process (what a worker does first; tests call it directly)."""
    _worker["host"] = host
    _worker["streams"] = {}


def _start_worker(host: Any) -> None:
    _adopt(host)
    # Ctrl-C reaches the whole process group: the main process handles it and stops the pool
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # a forked worker holds the task queue's write end too, so it would wait forever on a parent killed with -9
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="storesync-worker-watch",
                     daemon=True).start()


def _exit_with_parent(parent: int, every: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _map_page(body: bytes, decode: Any, job: PageJob) -> list[Any] | None:
    """The page's records turned into what ``PagePool.expand`` yields; ``None`` if the body does not decode."""
    try:
        records = decode(body)
    except ValueError:
        return None
    key = (job.connector_id, job.stream, job.target, job.dialect)
    if key not in _worker["streams"]:
        smap = _worker["host"].mapping(job.connector_id).stream(job.stream)
        _worker["streams"][key] = (smap, RowPreparer(job.target, job.dialect, job.connector_id, job.stream))
    smap, prepare = _worker["streams"][key]
    keep_model = keeps_model(job.target)
    field, pk, boundary = job.cursor_field, job.primary_key, job.boundary
    out: list[Any] = []
    for obj in records:
        if type(obj) is not dict:
            out.append(obj)
        elif boundary is not None and boundary.holds(obj):
            out.append(ON_BOUNDARY)
        else:
            result = map_record(smap, prepare, obj)
            if type(result) is QuarantineEntry:
                out.append(result)
            else:
                if not keep_model:  # the model pickles slowly and nothing after preparing needs it
                    result = result._replace(item=result.item._replace(model=None))
                out.append(Mapped(result, obj.get(field) if field else None, str(obj.get(pk))))
    return out
