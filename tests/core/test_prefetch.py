"""``prefetch``: reading ahead on a thread, with order, errors, early exit and bounded memory."""

from __future__ import annotations

import threading

import pytest

from storesync.core.prefetch import prefetch


def test_items_come_through_in_order() -> None:
    assert list(prefetch(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(prefetch([])) == []


def test_the_next_item_is_produced_while_the_consumer_works_on_this_one() -> None:
    second_made = threading.Event()

    def source():
        yield 1
        second_made.set()
        yield 2

    items = prefetch(source())
    assert next(items) == 1
    # without a producer thread, nothing would run source() past its first yield until the next next()
    assert second_made.wait(timeout=10)
    assert list(items) == [2]


def test_an_error_is_raised_where_it_happened() -> None:
    def source():
        yield "a"
        yield "b"
        raise ConnectionError("page 3 failed")

    got = []
    with pytest.raises(ConnectionError, match="page 3 failed"):
        for item in prefetch(source()):
            got.append(item)
    assert got == ["a", "b"]


def test_leaving_early_stops_and_closes_the_source_and_it_never_runs_far_ahead() -> None:
    made, closed = [], threading.Event()

    def source():
        try:
            for i in range(10_000):
                made.append(i)
                yield i
        finally:
            closed.set()

    items = prefetch(source(), depth=2)
    assert next(items) == 0
    items.close()
    assert closed.wait(timeout=10)
    # one handed over, two in the queue, one blocked on the full queue at most
    assert len(made) <= 4, len(made)


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        list(prefetch([1], depth=0))
