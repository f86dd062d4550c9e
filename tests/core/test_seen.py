"""SeenIds: a bounded memory of webhook delivery ids."""

from __future__ import annotations

import threading

import pytest

from storesync.core.seen import SeenIds


def test_an_id_is_new_once_and_the_oldest_is_forgotten_past_capacity() -> None:
    seen = SeenIds(capacity=2)
    assert [seen.first_time(i) for i in ("a", "b", "a")] == [True, True, False]
    assert seen.first_time("c") is True  # evicts b: a was seen more recently
    assert seen.first_time("a") is False and seen.first_time("b") is True
    assert len(seen) == 2


def test_concurrent_deliveries_of_one_id_pass_once() -> None:
    seen = SeenIds()
    passed: list[bool] = []
    threads = [threading.Thread(target=lambda: passed.append(seen.first_time("evt-1"))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert passed.count(True) == 1


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SeenIds(capacity=0)
