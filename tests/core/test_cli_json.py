"""``emit_json_stream`` writes the same text as ``emit_json``, with iterator values written item by item."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from storesync.cli import emit_json, emit_json_stream

AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
ITEMS = [{"sku": "VASE", "detail": "two lines:\nsecond", "at": AT, "nested": {"a": [1, 2], "b": None}},
         {"sku": "TEA", "detail": "", "at": None, "nested": {}}]


def _text(capsys: pytest.CaptureFixture[str], emit, data) -> str:
    emit(data)
    return capsys.readouterr().out


@pytest.mark.parametrize("items", [ITEMS, ITEMS[:1], []])
def test_iterators_are_written_as_the_lists_emit_json_writes(capsys, items) -> None:
    whole = _text(capsys, emit_json, {"positions": 3, "decisions": items, "push": None, "list": [1, {"x": "y"}]})
    streamed = _text(capsys, emit_json_stream, {"positions": 3, "decisions": iter(items), "push": None,
                                                "list": [1, {"x": "y"}]})
    assert streamed == whole
    assert json.loads(streamed)["decisions"] == json.loads(whole)["decisions"]


def test_an_empty_object_and_a_generator_consumed_once(capsys) -> None:
    assert _text(capsys, emit_json_stream, {}) == _text(capsys, emit_json, {})
    seen = []

    def rows():
        for n in range(3):
            seen.append(n)
            yield {"n": n}

    out = json.loads(_text(capsys, emit_json_stream, {"rows": rows()}))
    assert out == {"rows": [{"n": 0}, {"n": 1}, {"n": 2}]} and seen == [0, 1, 2]
