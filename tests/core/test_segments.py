"""SMS segment counts against the generated GSM-7 / UCS-2 vectors, plus the edges the vectors leave out."""

from __future__ import annotations

import json

import pytest
from shared_fixtures import fixture_path

from storesync.core.segments import count_segments


def vectors() -> list[dict]:
    return json.loads(fixture_path("generated", "sms_segment_vectors.json").read_text(encoding="utf-8"))["cases"]


def test_every_generated_vector() -> None:
    cases = vectors()
    assert len(cases) >= 10
    for case in cases:
        got = count_segments(case["text"])
        assert (got.encoding, got.units, got.segments) == (case["encoding"], case["units"], case["segments"]), case


@pytest.mark.parametrize(("text", "expected"), [
    ("", ("GSM-7", 0, 1)),
    ("Hi Mei, your order #1002 is ready", ("GSM-7", 33, 1)),
    ("€" * 80, ("GSM-7", 160, 1)),                 # extension characters cost two septets
    ("€" * 81, ("GSM-7", 162, 2)),
    ("A" * 159 + "你", ("UCS-2", 160, 3)),         # one Chinese character turns the whole text UCS-2
    ("👍" * 35, ("UCS-2", 70, 1)),                 # astral characters are two UTF-16 units
    ("👍" * 36, ("UCS-2", 72, 2)),
    ("你" * 134, ("UCS-2", 134, 2)),               # 67 per part
    ("你" * 135, ("UCS-2", 135, 3)),
])
def test_edges(text: str, expected: tuple) -> None:
    got = count_segments(text)
    assert (got.encoding, got.units, got.segments) == expected
