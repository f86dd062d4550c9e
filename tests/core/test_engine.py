"""The sync engine on SQLite and PostgreSQL: incremental reads, page edges, quarantine, remap, deletions."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

import memory_connector
from storesync.core.errors import ConfigError
from storesync.core.operations import Session

HERE = Path(__file__).parent.parent

MAPPING = """
[items]
target = "customer"
key = "id"

[items.fields]
email = { path = "email", transform = "email", required = true }
first_name = "name"
updated_at = { path = "updated_at", transform = "datetime" }
"""


class Env:
    """A merchant folder: plugins.toml, a mapping, the memory connector's data file."""

    def __init__(self, root: Path, store_url: str) -> None:
        self.root = root
        shutil.copy(HERE / "memory_connector.py", root / "memory_connector.py")
        (root / "people.toml").write_text(MAPPING)
        self.config = root / "plugins.toml"
        self.write_config(store_url)
        self.items: list[dict] = []

    def write_config(self, store_url: str, extra: str = "", modules: str = '"memory_connector"') -> None:
        self.config.write_text(f'[storesync]\ndatabase = "{store_url}"\nbatch_size = 3\n'
                               f'[plugins]\nmodules = [{modules}]\n'
                               f'[connectors.mem]\ntype = "memory"\ndata = "items.json"\nmapping = "people.toml"\n'
                               + extra)

    def put(self, *records: dict) -> None:
        by_id = {r["id"]: r for r in self.items}
        by_id.update({r["id"]: r for r in records})
        self.items = list(by_id.values())
        (self.root / "items.json").write_text(json.dumps({"items": self.items}))

    def sync(self, **kw):
        session = Session.open(str(self.config))
        options = {"streams": None, "full_refresh": False, "dry_run": False, "remap": False, "progress": False}
        (report,) = session.sync(None, **{**options, **kw})
        session.store.close()
        return report

    def rows(self) -> list[tuple]:
        session = Session.open(str(self.config))
        with session.store.read() as conn:
            result = conn.execute(sa.text("SELECT external_id, email, first_name, deleted FROM customer "
                                          "ORDER BY external_id")).all()
        session.store.close()
        return [tuple(r) for r in result]


def person(i: int, ts: str, name: str = "") -> dict:
    return {"id": i, "email": f"P{i}@Example.com", "name": name or f"p{i}", "updated_at": ts}


@pytest.fixture
def env(tmp_path, store_url):
    return Env(tmp_path, store_url)


def test_incremental_sync_reads_only_changes(env):
    env.put(*(person(i, f"2024-05-01T10:00:0{i}Z") for i in range(5)))
    first = env.sync().streams[0]
    assert (first.read, first.inserted) == (5, 5)
    again = env.sync().streams[0]
    assert again.inserted == 0 and again.updated == 0
    assert again.read <= 1  # only the boundary record, de-duplicated
    env.put(person(2, "2024-05-01T11:00:00Z", name="renamed"), person(9, "2024-05-01T11:00:00Z"))
    third = env.sync().streams[0]
    assert (third.inserted, third.updated) == (1, 1)
    assert ("2", "p2@example.com", "renamed", False) in env.rows()


def test_page_edge_records_sharing_a_timestamp_are_never_skipped(env):
    same = "2024-05-01T10:00:00Z"
    env.put(*(person(i, same) for i in range(4)))  # batch size 3: the timestamp spans a batch edge
    assert env.sync().streams[0].inserted == 4
    env.put(person(4, same), person(5, same))  # arrive later, with the very same timestamp
    report = env.sync().streams[0]
    assert report.inserted == 2
    assert [r[0] for r in env.rows()] == ["0", "1", "2", "3", "4", "5"]


def test_bad_records_quarantined_good_ones_land_then_retry_after_fix(env, tmp_path):
    env.put(person(1, "2024-05-01T10:00:00Z"), {"id": 2, "email": "not-an-email", "updated_at": "2024-05-01T10:00:01Z"},
            {"id": 3, "name": "no email", "updated_at": "2024-05-01T10:00:02Z"})
    report = env.sync()
    assert report.status == "quarantined" and report.exit_code == 1
    assert (report.streams[0].inserted, report.streams[0].quarantined) == (1, 2)
    session = Session.open(str(env.config))
    reasons = {q["record_key"]: (q["field"], q["reason"]) for q in session.store.quarantined("mem")}
    assert reasons["2"][0] == "email" and "not-an-email" in reasons["2"][1]
    assert reasons["3"][0] == "email" and "required" in reasons["3"][1]
    # the merchant relaxes the mapping; retry replays the stored payloads, no API call
    (tmp_path / "people.toml").write_text(MAPPING.replace(
        'email = { path = "email", transform = "email", required = true }',
        'email = { path = "work_email", transform = "email" }'))
    calls = len(memory_connector.READS)
    (retry,) = Session.open(str(env.config)).retry_quarantine(["mem"], None)
    assert retry.streams[0].inserted == 2 and retry.status == "ok"
    assert Session.open(str(env.config)).store.quarantined("mem") == []
    assert len(memory_connector.READS) == calls
    assert len(env.rows()) == 3


def test_record_fixed_at_the_source_leaves_quarantine(env):
    env.put({"id": 1, "email": "broken", "updated_at": "2024-05-01T10:00:00Z"})
    env.sync()
    env.put(person(1, "2024-05-01T12:00:00Z"))
    assert env.sync().status == "ok"
    assert Session.open(str(env.config)).store.quarantined("mem") == []


def test_tombstone_marks_the_row_deleted(env):
    env.put(person(1, "2024-05-01T10:00:00Z"), person(2, "2024-05-01T10:00:01Z"))
    env.sync()
    env.put({"id": 1, "_deleted": True, "updated_at": "2024-05-01T12:00:00Z"})
    assert env.sync().streams[0].deleted == 1
    assert [(r[0], bool(r[3])) for r in env.rows()] == [("1", True), ("2", False)]


def test_remap_reapplies_mapping_to_stored_payloads_without_reading(env, tmp_path):
    env.put(person(1, "2024-05-01T10:00:00Z", name="tai man"))
    env.sync()
    (tmp_path / "people.toml").write_text(MAPPING.replace('first_name = "name"',
                                                          'first_name = { path = "name", transform = "title" }'))
    calls = len(memory_connector.READS)
    report = env.sync(remap=True).streams[0]
    assert (report.read, report.updated) == (1, 1)
    assert env.rows()[0][2] == "Tai Man"
    assert len(memory_connector.READS) == calls


def test_dry_run_writes_nothing(env):
    env.put(person(1, "2024-05-01T10:00:00Z"))
    report = env.sync(dry_run=True)
    assert report.status == "dry-run" and report.streams[0].inserted == 1
    assert env.rows() == []
    assert Session.open(str(env.config)).store.status()["runs"] == []


def test_full_refresh_reads_everything_again(env):
    env.put(*(person(i, f"2024-05-01T10:00:0{i}Z") for i in range(3)))
    env.sync()
    report = env.sync(full_refresh=True).streams[0]
    assert (report.read, report.unchanged, report.inserted) == (3, 3, 0)


def test_connector_failure_keeps_committed_batches_and_reports_exit_3(env):
    env.put(*(person(i, f"2024-05-01T10:00:0{i}Z") for i in range(7)))
    env.write_config(env.config.read_text().split('"')[1], extra="fail_after = 4\n")
    report = env.sync()
    assert report.status == "failed" and report.exit_code == 3
    assert "memory source went away" in report.streams[0].error
    assert len(env.rows()) == 4  # the good records before the failure landed
    run = Session.open(str(env.config)).store.status()["runs"][0]
    assert run["status"] == "failed" and run["counts"]["items"]["inserted"] == 4


def test_hooks_veto_records_and_observe_the_run(env, tmp_path):
    (tmp_path / "observer.py").write_text('''
from storesync import hookimpl
RUNS = []

@hookimpl
def storesync_record_mapped(connector, stream, record):
    if record.first_name == "spam":
        return False
    record.attributes["seen_by"] = "observer"

@hookimpl
def storesync_sync_finished(run):
    RUNS.append((run.connector_id, run.status))
''')
    env.write_config(env.config.read_text().split('"')[1], modules='"memory_connector", "observer"')
    env.put(person(1, "2024-05-01T10:00:00Z"), person(2, "2024-05-01T10:00:01Z", name="spam"))
    sys.modules.pop("observer", None)  # a fresh module per parametrisation
    report = env.sync()
    assert (report.streams[0].inserted, report.streams[0].vetoed) == (1, 1)
    import observer
    assert observer.RUNS == [("mem", "ok")]
    session = Session.open(str(env.config))
    with session.store.read() as conn:
        attrs = conn.execute(sa.text("SELECT attributes FROM customer")).scalar_one()
    assert (json.loads(attrs) if isinstance(attrs, str) else attrs) == {"seen_by": "observer"}


def test_unknown_stream_is_a_configuration_error_before_any_work(env):
    env.put(person(1, "2024-05-01T10:00:00Z"))
    session = Session.open(str(env.config))
    with pytest.raises(ConfigError, match="no stream 'itmes'; did you mean 'items'"):
        session.sync(None, streams=["itmes"], full_refresh=False, dry_run=False, remap=False, progress=False)
    assert session.store.status()["runs"] == []


def test_checkpoint_state_is_snapshotted_when_yielded(tmp_path):
    """A stream that mutates one state object after yielding it must not move the saved cursor ahead."""
    (tmp_path / "mutating.py").write_text('''
from storesync import Checkpoint, Connector, Stream, hookimpl

class Mutating(Connector):
    name = "mutating"
    def streams(self):
        return [Stream("items", "customer", reader=self.read)]
    def check(self):
        return "ok"
    def read(self, cursor):
        state = {"done": 0}
        for i in range(1, 4):
            yield {"id": i, "email": f"p{i}@example.com"}
            state["done"] = i
            yield Checkpoint(state)
        state["done"] = 999  # mutated after the last checkpoint was yielded
        raise RuntimeError("source died")

@hookimpl
def storesync_register_connectors(register):
    register(Mutating)
''')
    (tmp_path / "people.toml").write_text('[items]\ntarget = "customer"\nkey = "id"\n'
                                          '[items.fields]\nemail = "email"\n')
    (tmp_path / "plugins.toml").write_text(f'[storesync]\ndatabase = "sqlite:///{tmp_path / "s.db"}"\n'
                                           '[plugins]\nmodules = ["mutating"]\n'
                                           '[connectors.m]\ntype = "mutating"\nmapping = "people.toml"\n')
    session = Session.open(str(tmp_path / "plugins.toml"))
    (report,) = session.sync(None, streams=None, full_refresh=False, dry_run=False, remap=False, progress=False)
    assert report.status == "failed" and report.streams[0].inserted == 3
    assert session.store.get_cursor("m", "items") == {"done": 3}
