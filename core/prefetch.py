"""Read ahead: run an iterator on a background thread so the next page downloads while this one is mapped.

A connector's pages are fetched over HTTP (the GIL is released while waiting on the socket) and then mapped,
validated and hashed on the reading thread (CPU). Run one after the other, the remote system and this process
take turns being idle; ``prefetch`` overlaps them. The queue is bounded (``depth`` items ahead), so memory stays
flat; an exception raised by the iterator is re-raised on the consuming thread, at the position it happened;
closing the consuming generator early stops the producer after at most one more item.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")

_DONE = object()


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], depth: int = 2, *, name: str = "storesync-prefetch") -> Iterator[T]:
    """Yield what ``items`` yields, produced up to ``depth`` items ahead on a daemon thread."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(slots, item, stop):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            _put(slots, _Failure(exc), stop)
            return
        finally:
            close = getattr(items, "close", None)
            if stop.is_set() and callable(close):
                close()  # the consumer left early: let the source release its connection
        _put(slots, _DONE, stop)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def _put(slots: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless the consumer has gone; False when it has."""
    while not stop.is_set():
        try:
            slots.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False
