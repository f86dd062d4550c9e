"""Pairwise quality of a clustering against ground truth, and the clock and memory of a step (issue 8 bench).

Pairwise: every pair of records put in one person is a predicted pair; a true pair is two records of one real
entity. Precision = true predicted pairs / predicted pairs, recall = true predicted pairs / true pairs.
"""

from __future__ import annotations

import resource
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Quality", "measure", "measure_cpu", "pairwise", "peak_rss_mib"]


@dataclass(frozen=True)
class Quality:
    predicted: int
    true: int
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def row(self) -> dict[str, float]:
        return {"precision": round(self.precision, 5), "recall": round(self.recall, 5), "f1": round(self.f1, 5),
                "predicted_pairs": self.predicted, "true_pairs": self.true}


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise(clusters: Iterable[Iterable[Hashable]], truth: Mapping[Hashable, Hashable]) -> Quality:
    """Pairwise counts of ``clusters`` (lists of record ids) against ``truth`` (record id -> entity id),
    counted through cluster/entity intersections, never by listing pairs."""
    predicted = correct = 0
    for cluster in clusters:
        members = list(cluster)
        predicted += _pairs(len(members))
        correct += sum(_pairs(c) for c in Counter(truth[m] for m in members).values())
    true = sum(_pairs(c) for c in Counter(truth.values()).values())
    return Quality(predicted, true, correct)


def peak_rss_mib() -> float:
    """The peak resident set of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and its wall seconds."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def measure_cpu(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall seconds and this process's CPU seconds meanwhile (on a shared machine the wall time
    includes waiting for a core; the CPU time does not)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu
