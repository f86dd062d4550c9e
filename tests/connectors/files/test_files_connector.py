"""The files connector, driven like the engine drives it: read, keep the last Checkpoint, read again from it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from storesync.connectors.files import FilesConnector, FileSpec, storesync_register_connectors
from storesync.core.connector import Checkpoint, ConnectorContext, Invalid, Stream
from storesync.core.errors import FatalSyncError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "files"


class Run:
    """What one read produced: records, invalid records, checkpoints; ``state`` is the last checkpoint's."""

    def __init__(self, items: Iterable[Any], cursor: Any = None) -> None:
        self.items = list(items)
        self.records = [i for i in self.items if isinstance(i, dict)]
        self.invalid = [i for i in self.items if isinstance(i, Invalid)]
        self.checkpoints = [i for i in self.items if isinstance(i, Checkpoint)]
        self.state = self.checkpoints[-1].state if self.checkpoints else cursor

    def ids(self, key: str = "id") -> list[Any]:
        return [r[key] for r in self.records]


def connector(tmp_path: Path, directory: str = "exports", every: int = 5000, **files: dict[str, Any]) -> FilesConnector:
    settings = FilesConnector.Settings(directory=directory, files=files, checkpoint_every=every)
    return FilesConnector("till", settings, ConnectorContext(base_dir=tmp_path))


def stream(tmp_path: Path, every: int = 5000, **spec: Any) -> Stream:
    return connector(tmp_path, every=every, s=spec).streams()[0]


def read(s: Stream, cursor: Any = None) -> Run:
    run = Run(s.read(cursor), cursor)
    json.dumps(run.state)  # the engine stores it as JSON
    return run


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    d = tmp_path / "exports"
    d.mkdir()
    return d


def write_jsonl(path: Path, start: int, stop: int, mode: str = "w") -> None:
    with open(path, mode) as fh:
        fh.writelines(json.dumps({"id": i, "note": "x" * 20}) + "\n" for i in range(start, stop))


def write_csv(path: Path, start: int, stop: int, header: bool = True) -> None:
    with open(path, "a" if not header else "w", newline="") as fh:
        if header:
            fh.write("id,name\r\n")
        fh.writelines(f"{i},name {i}\r\n" for i in range(start, stop))


def bump_mtime(path: Path) -> None:
    """Make sure a rewrite is visible even on file systems with coarse timestamps."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


# -- incremental by file ------------------------------------------------------------------------------------

def test_first_read_yields_every_row_and_second_read_nothing(tmp_path: Path, exports: Path) -> None:
    write_jsonl(exports / "orders-1.jsonl", 0, 5)
    write_jsonl(exports / "orders-2.jsonl", 5, 8)
    s = stream(tmp_path, pattern="orders-*.jsonl")
    first = read(s)
    assert first.ids() == list(range(8))
    assert first.invalid == []
    assert sorted(first.state["files"]) == ["orders-1.jsonl", "orders-2.jsonl"]
    assert first.state["partial"] is None
    assert len(first.checkpoints) == 2  # one per finished file
    assert read(s, first.state).items == []


def test_append_reads_only_from_the_old_offset(tmp_path: Path, exports: Path) -> None:
    path = exports / "orders.jsonl"
    write_jsonl(path, 0, 300)
    s = stream(tmp_path, pattern="*.jsonl")
    state = read(s).state
    # Garble the first line (far before the 4096-byte tail) keeping the size: only a full re-read would see it.
    data = path.read_bytes()
    path.write_bytes(b"#" * data.index(b"\n") + data[data.index(b"\n"):])
    write_jsonl(path, 300, 310, mode="a")
    second = read(s, state)
    assert second.ids() == list(range(300, 310))
    assert second.invalid == []
    assert second.state["files"]["orders.jsonl"]["size"] == path.stat().st_size


def test_append_to_csv_skips_the_rows_already_read(tmp_path: Path, exports: Path) -> None:
    path = exports / "sales.csv"
    write_csv(path, 0, 50)
    s = stream(tmp_path, pattern="*.csv")
    state = read(s).state
    assert state["files"]["sales.csv"]["rows"] == 50
    write_csv(path, 50, 60, header=False)
    second = read(s, state)
    assert second.ids() == [str(i) for i in range(50, 60)]
    assert read(s, second.state).items == []


def test_rewritten_file_is_read_again(tmp_path: Path, exports: Path) -> None:
    path = exports / "orders.jsonl"
    write_jsonl(path, 0, 20)
    s = stream(tmp_path, pattern="*.jsonl")
    state = read(s).state
    write_jsonl(path, 100, 105)  # shorter: a rewrite, not an append
    assert read(s, state).ids() == list(range(100, 105))


def test_grown_file_with_a_different_tail_is_read_in_full(tmp_path: Path, exports: Path) -> None:
    path = exports / "orders.jsonl"
    write_jsonl(path, 0, 5)
    s = stream(tmp_path, pattern="*.jsonl")
    state = read(s).state
    write_jsonl(path, 10, 20)  # longer, but not the old content followed by more
    bump_mtime(path)
    assert read(s, state).ids() == list(range(10, 20))


def test_new_file_is_read_and_vanished_file_is_forgotten(tmp_path: Path, exports: Path) -> None:
    write_jsonl(exports / "a.jsonl", 0, 3)
    s = stream(tmp_path, pattern="*.jsonl")
    state = read(s).state
    write_jsonl(exports / "b.jsonl", 3, 6)
    (exports / "a.jsonl").unlink()
    second = read(s, state)
    assert second.ids() == [3, 4, 5]
    assert list(second.state["files"]) == ["b.jsonl"]


def test_files_are_read_in_sorted_name_order_including_subfolders(tmp_path: Path, exports: Path) -> None:
    (exports / "2024").mkdir()
    write_jsonl(exports / "2024" / "b.jsonl", 2, 3)
    write_jsonl(exports / "2024" / "a.jsonl", 1, 2)
    (exports / "2024" / "dir.jsonl").mkdir()  # not a regular file: ignored
    s = stream(tmp_path, pattern="2024/*.jsonl")
    run = read(s)
    assert run.ids() == [1, 2]
    assert list(run.state["files"]) == ["2024/a.jsonl", "2024/b.jsonl"]


# -- encodings and CSV dialects -----------------------------------------------------------------------------

def test_big5_csv_decodes_chinese_names(tmp_path: Path, exports: Path) -> None:
    text = "id,name,district\r\n1,陳大文,旺角\r\n2,黃美玲,沙田\r\n"
    (exports / "members.csv").write_bytes(text.encode("big5"))
    run = read(stream(tmp_path, pattern="*.csv", encoding="big5"))
    assert run.records == [{"id": "1", "name": "陳大文", "district": "旺角"},
                           {"id": "2", "name": "黃美玲", "district": "沙田"}]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
def test_excel_utf8_bom_csv_decodes_and_strips_the_bom(tmp_path: Path, exports: Path, encoding: str) -> None:
    shutil.copy(FIXTURES / "customers-excel.csv", exports)
    run = read(stream(tmp_path, pattern="customers-*.csv", encoding=encoding, primary_key="id"))
    assert run.ids() == ["C1", "C2", "C3"]  # "id", not "\ufeffid"
    assert run.records[0]["name"] == "陳大文"
    assert run.records[1]["phone"] == ""  # empty stays empty; the mapping treats it as missing


def test_quoted_fields_tabs_and_multi_line_rows(tmp_path: Path, exports: Path) -> None:
    shutil.copy(FIXTURES / "products.csv", exports)
    (exports / "stock.tsv").write_text("sku\tqty\nTEA-01\t5\n")
    c = connector(tmp_path, p={"pattern": "products.csv", "primary_key": "sku"}, q={"pattern": "*.tsv"})
    products, stock = (read(s) for s in c.streams())
    assert products.records[0]["title"] == "Jasmine tea, 100g"
    assert products.records[1]["title"] == "Mug\n(two lines)"
    assert products.records[2] == {"sku": "BAG-03", "title": "Tote bag", "price": ""}
    assert stock.records == [{"sku": "TEA-01", "qty": "5"}]


def test_semicolon_delimiter_and_single_quotes(tmp_path: Path, exports: Path) -> None:
    (exports / "x.csv").write_text("id;name\n1;'Lee; Ka Ho'\n")
    run = read(stream(tmp_path, pattern="*.csv", delimiter=";", quotechar="'"))
    assert run.records == [{"id": "1", "name": "Lee; Ka Ho"}]


# -- records that cannot be read ----------------------------------------------------------------------------

def test_undecodable_bytes_become_invalid_naming_file_line_and_column(tmp_path: Path, exports: Path) -> None:
    (exports / "members.csv").write_bytes(b"id,name,phone\n1,Chan,123\n2,Caf\xe9 \xff,456\n3,Lee,789\n")
    run = read(stream(tmp_path, pattern="*.csv"))
    assert run.ids() == ["1", "3"]
    [bad] = run.invalid
    assert bad.reason.startswith("members.csv line 3 column 'name':")
    assert "utf-8" in bad.reason
    assert bad.payload == {"id": "2", "name": "Caf\\xe9 \\xff", "phone": "456"}
    json.dumps(bad.payload)  # storable in quarantine


def test_broken_json_line_becomes_invalid_and_good_rows_come_through(tmp_path: Path, exports: Path) -> None:
    shutil.copy(FIXTURES / "orders-2024.jsonl", exports)
    run = read(stream(tmp_path, pattern="orders-*.jsonl"))
    assert run.ids() == ["O1001", "O1002", "O1004"]  # the blank line 4 is skipped silently
    [bad] = run.invalid
    assert bad.reason.startswith("orders-2024.jsonl line 3: invalid JSON:")
    assert bad.payload == '{"id": "O1003", "total": "15.00" "customer": "C3"}'


def test_non_object_and_invalid_utf8_json_lines(tmp_path: Path, exports: Path) -> None:
    (exports / "o.jsonl").write_bytes(b'{"id": 1}\n[1, 2]\n{"id": "\xff"}\n{"id": 4}\n')
    run = read(stream(tmp_path, pattern="*.jsonl"))
    assert run.ids() == [1, 4]
    assert [i.reason.split(":")[0] for i in run.invalid] == ["o.jsonl line 2", "o.jsonl line 3"]
    assert "expected a JSON object, got list" in run.invalid[0].reason


def test_line_numbers_stay_right_after_an_append(tmp_path: Path, exports: Path) -> None:
    path = exports / "o.jsonl"
    write_jsonl(path, 0, 7)
    s = stream(tmp_path, pattern="*.jsonl")
    state = read(s).state
    with open(path, "a") as fh:
        fh.write('{"id": 7}\n{oops\n')
    [bad] = read(s, state).invalid
    assert bad.reason.startswith("o.jsonl line 9: invalid JSON")


def test_wrong_column_count_becomes_invalid(tmp_path: Path, exports: Path) -> None:
    (exports / "s.csv").write_text("id,name,qty\n1,a,1\n2,b\n3,c,3,extra\n4,d,4\n")
    run = read(stream(tmp_path, pattern="*.csv"))
    assert run.ids() == ["1", "4"]
    few, many = run.invalid
    assert few.reason == "s.csv line 3: expected 3 fields, got 2"
    assert few.payload == {"id": "2", "name": "b"}
    assert many.reason == "s.csv line 4: expected 3 fields, got 4"
    assert many.payload == {"id": "3", "name": "c", "qty": "3", "_extra_fields": ["extra"]}


# -- cursor column ------------------------------------------------------------------------------------------

def test_cursor_column_skips_older_rows_and_re_yields_equal_ones(tmp_path: Path, exports: Path) -> None:
    path = exports / "customers.csv"
    path.write_text("id,updated_at\n1,2024-01-01\n2,2024-01-03\n3,2024-01-02\n")
    s = stream(tmp_path, pattern="*.csv", cursor_column="updated_at")
    first = read(s)
    assert first.ids() == ["1", "2", "3"]
    assert first.state["max"] == "2024-01-03"
    # a full re-export (row 1 changed, so not an append): every row is read, old ones filtered out
    path.write_text("id,updated_at\n1,2024-01-02\n2,2024-01-03\n3,2024-01-02\n4,\n5,2024-01-04\n6,2024-01-03\n")
    bump_mtime(path)
    second = read(s, first.state)
    assert second.ids() == ["2", "5", "6"]  # 2 and 6 equal the max; 4 has no value
    assert second.state["max"] == "2024-01-04"
    assert "pending_max" not in second.state


def test_numeric_cursor_column(tmp_path: Path, exports: Path) -> None:
    path = exports / "stock.jsonl"
    path.write_text('{"id": 1, "seq": 9}\n{"id": 2, "seq": "10"}\n{"id": 3, "seq": "n/a"}\n')
    s = stream(tmp_path, pattern="*.jsonl", cursor_column="seq", cursor_type="number")
    first = read(s)
    assert first.ids() == [1, 2]
    assert first.state["max"] == 10  # as a number: "9" < "10" would be wrong as strings
    assert first.invalid[0].reason == "stock.jsonl line 3: cursor column 'seq' is not a number: 'n/a'"
    path.write_text('{"id": 1, "seq": 9}\n{"id": 4, "seq": 10}\n{"id": 5, "seq": 11.5}\n')
    bump_mtime(path)
    second = read(s, first.state)
    assert second.ids() == [4, 5]
    assert second.state["max"] == 11.5


def test_cursor_floor_is_the_max_saved_when_the_run_started(tmp_path: Path, exports: Path) -> None:
    (exports / "a.csv").write_text("id,t\n1,5\n")
    (exports / "b.csv").write_text("id,t\n2,3\n")
    s = stream(tmp_path, pattern="*.csv", cursor_column="t")
    run = Run(s.read(None))
    # b's row is older than a's, but both are new to this run; a resume after a.csv must not drop it either.
    assert run.ids() == ["1", "2"]
    after_a = run.checkpoints[0].state
    assert after_a["max"] is None and after_a["pending_max"] == "5"
    resumed = read(s, after_a)
    assert resumed.ids() == ["2"]
    assert resumed.state["max"] == "5"


# -- checkpoints inside a file ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_mid_file_resume_from_a_partial_checkpoint(tmp_path: Path, exports: Path, fmt: str) -> None:
    path = exports / f"big.{fmt}"
    (write_jsonl if fmt == "jsonl" else write_csv)(path, 0, 10)
    s = stream(tmp_path, every=3, pattern=f"*.{fmt}")
    items = iter(s.read(None))
    seen = []
    for item in items:  # a sync killed right after the second checkpoint was committed
        if isinstance(item, Checkpoint) and len(seen) == 6:
            state = item.state
            break
        if isinstance(item, dict):
            seen.append(item)
    assert state["partial"]["file"] == f"big.{fmt}"
    six_lines = sum(len(line) for line in path.read_bytes().splitlines(keepends=True)[:6])
    assert state["partial"]["offset"] == (6 if fmt == "csv" else six_lines)  # rows (CSV) or bytes (JSONL)
    assert "big." + fmt not in state["files"]
    resumed = read(s, state)
    assert [str(i) for i in resumed.ids()] == [str(i) for i in range(6, 10)]
    assert resumed.state["partial"] is None
    assert read(s, resumed.state).items == []


def test_partial_checkpoint_is_ignored_when_the_file_was_rewritten(tmp_path: Path, exports: Path) -> None:
    path = exports / "big.jsonl"
    write_jsonl(path, 0, 10)
    s = stream(tmp_path, every=4, pattern="*.jsonl")
    state = next(i for i in s.read(None) if isinstance(i, Checkpoint)).state
    assert state["partial"]["offset"] > 0
    write_jsonl(path, 50, 62)
    assert read(s, state).ids() == list(range(50, 62))


# -- settings, check() and registration ---------------------------------------------------------------------

def test_settings_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        FilesConnector.Settings(directory="x", files={"o": {"pattern": "*.csv", "delimeter": ";"}})
    with pytest.raises(ValidationError, match="extra_forbidden"):
        FilesConnector.Settings(directory="x", files={"o": {"pattern": "*.csv"}}, folder="y")


def test_settings_validate_encoding_format_and_delimiter() -> None:
    with pytest.raises(ValidationError, match="unknown encoding 'big-5'; use one Python knows"):
        FileSpec(pattern="*.csv", encoding="big-5")
    with pytest.raises(ValidationError, match="cannot tell the format of 'export_\\*'"):
        FileSpec(pattern="export_*")
    with pytest.raises(ValidationError, match="single character"):
        FileSpec(pattern="*.csv", delimiter=";;")
    assert FileSpec(pattern="*.ndjson").format == "jsonl"
    assert FileSpec(pattern="*.TSV").delimiter == "\t"
    assert FileSpec(pattern="*.csv", delimiter="\\t").delimiter == "\t"
    assert FileSpec(pattern="export_*", format="csv").delimiter == ","
    assert FileSpec(pattern="*.txt", encoding="cp950").encoding == "cp950"
    with pytest.raises(ValidationError, match="must be a glob inside"):
        FileSpec(pattern="../secrets/*.csv")


def test_check_reports_streams_and_matching_files(tmp_path: Path, exports: Path) -> None:
    write_jsonl(exports / "orders-1.jsonl", 0, 1)
    write_csv(exports / "customers.csv", 0, 1)
    c = connector(tmp_path, o={"pattern": "orders-*.jsonl"}, c={"pattern": "*.csv"}, p={"pattern": "none-*.csv"})
    assert c.check() == f"3 streams, 2 matching files in {exports}"
    assert c.directory == exports  # resolved relative to the config file's folder


def test_check_and_read_on_a_missing_directory_raise_fatal(tmp_path: Path) -> None:
    c = connector(tmp_path, directory="nowhere", o={"pattern": "*.csv"})
    with pytest.raises(FatalSyncError) as err:
        c.check()
    assert err.value.message == f"files connector 'till': directory {tmp_path / 'nowhere'} does not exist"
    assert err.value.hint == "create it or fix `directory` in plugins.toml"
    with pytest.raises(FatalSyncError, match="does not exist"):
        list(c.streams()[0].read(None))


def test_streams_carry_name_primary_key_and_no_target(tmp_path: Path) -> None:
    c = connector(tmp_path, orders={"pattern": "*.jsonl", "primary_key": "order_no"})
    [s] = c.streams()
    assert (s.name, s.target, s.primary_key) == ("orders", None, "order_no")
    assert c.stream("orders") is not None


def test_plugin_hook_registers_the_connector() -> None:
    registered: list[type] = []
    storesync_register_connectors(register=registered.append)
    assert registered == [FilesConnector]
    assert FilesConnector.name == "files" and FilesConnector.default_mapping == "files.toml"
