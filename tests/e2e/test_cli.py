"""CLI behaviour end to end: errors with exit codes, mappings apply, dry runs, remap, deletions, the lock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from e2e_support import (
    DEFAULT_MAPPING,
    engine,
    explain,
    parse_json,
    rows,
    shopify_order,
    stream_report,
    sync,
    unique_id,
    write_customers,
    write_jsonl,
    write_project,
)


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, explain(proc)


# -- configuration errors -----------------------------------------------------------------------------------

def test_config_check_reports_a_typo_with_did_you_mean(cli, tmp_path: Path) -> None:
    config = tmp_path / "plugins.toml"
    config.write_text('[storesync]\ndatabse = "sqlite:///s.db"\n', encoding="utf-8")
    proc = cli("config", "check", cwd=tmp_path)
    assert proc.returncode == 2, explain(proc)
    assert f"{config.resolve()}: storesync.databse: unknown key 'databse'; did you mean 'database'?" in proc.stderr
    _no_traceback(proc)


def test_config_check_unknown_connector_type_lists_known_types(cli, tmp_path: Path) -> None:
    (tmp_path / "plugins.toml").write_text('[connectors.shop]\ntype = "fils"\ndirectory = "."\n', encoding="utf-8")
    proc = cli("config", "check", cwd=tmp_path)
    assert proc.returncode == 2, explain(proc)
    assert "connectors.shop.type" in proc.stderr and "unknown connector type 'fils'" in proc.stderr
    known = proc.stderr.split("known:", 1)[1]
    assert "files" in known, proc.stderr
    _no_traceback(proc)


def test_config_check_missing_environment_variable(cli, tmp_path: Path) -> None:
    var = "STORESYNC_E2E_SURELY_UNSET"
    (tmp_path / "plugins.toml").write_text(f'[storesync]\ndatabase = "${{{var}}}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != var}
    proc = cli("config", "check", cwd=tmp_path, env=env)
    assert proc.returncode == 2, explain(proc)
    assert "storesync.database" in proc.stderr and var in proc.stderr
    _no_traceback(proc)


# -- mappings -----------------------------------------------------------------------------------------------

def _orders_project(tmp_path: Path, mapping: str | None = None) -> str:
    cid = unique_id()
    write_project(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", cid, {"orders": "orders*.jsonl"}, mapping=mapping)
    return cid


def _check_canonical(stdout: str, expected: list[dict]) -> None:
    out = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert len(out) == len(expected)
    for got, raw in zip(out, expected, strict=True):
        assert got["external_id"] == str(raw["id"])
        assert got["total"] == raw["total_price"] and isinstance(got["total"], str)
        created = datetime.fromisoformat(got["created_at"])
        assert created.utcoffset() is not None, got["created_at"]
        assert created == datetime.fromisoformat(raw["created_at"])
        assert got["currency"] == "HKD"
        assert [line["sku"] for line in got["lines"]] == [x["sku"] for x in raw["line_items"]]
        assert all(isinstance(line["unit_price"], str) for line in got["lines"])


@pytest.mark.parametrize("shape", ["array", "object", "jsonl"])
def test_mappings_apply_prints_canonical_json_lines(cli, tmp_path: Path, shape: str) -> None:
    cid = _orders_project(tmp_path)
    raw = [shopify_order(i) for i in range(3)]
    sample = tmp_path / f"sample.{shape}"
    if shape == "array":
        sample.write_text(json.dumps(raw), encoding="utf-8")
    elif shape == "object":
        sample.write_text(json.dumps({"orders": raw, "count": 3}), encoding="utf-8")
    else:
        sample.write_text("".join(json.dumps(r) + "\n" for r in raw), encoding="utf-8")
    proc = cli("mappings", "apply", cid, "orders", "--input", str(sample), cwd=tmp_path)
    assert proc.returncode == 0, explain(proc)
    assert proc.stderr.strip() == ""
    _check_canonical(proc.stdout, raw)


def test_mappings_apply_reports_failures_on_stderr(cli, tmp_path: Path) -> None:
    cid = _orders_project(tmp_path)
    bad = shopify_order(1)
    del bad["total_price"]
    sample = tmp_path / "sample.jsonl"
    sample.write_text(json.dumps(shopify_order(0)) + "\n" + json.dumps(bad) + "\n{not json\n", encoding="utf-8")
    proc = cli("mappings", "apply", cid, "orders", "--input", str(sample), cwd=tmp_path)
    assert proc.returncode == 1, explain(proc)
    _check_canonical(proc.stdout, [shopify_order(0)])
    failures = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert len(failures) == 2, proc.stderr
    assert failures[0]["index"] == 1 and failures[0]["key"] == str(bad["id"]) and failures[0]["field"] == "total"
    assert failures[1]["index"] == 2 and "invalid JSON" in failures[1]["reason"]


def test_unknown_transform_names_file_key_path_and_suggestion(cli, tmp_path: Path) -> None:
    mapping = tmp_path / "orders.toml"
    text = DEFAULT_MAPPING.read_text(encoding="utf-8")
    typo = text.replace('total = { path = "total_price", transform = "decimal"',
                        'total = { path = "total_price", transform = "decimall"')
    assert typo != text
    mapping.write_text(typo, encoding="utf-8")
    cid = _orders_project(tmp_path, mapping="orders.toml")
    sample = tmp_path / "sample.jsonl"
    sample.write_text(json.dumps(shopify_order(0)) + "\n", encoding="utf-8")
    for args in (("mappings", "apply", cid, "orders", "--input", str(sample)), ("mappings", "check", cid)):
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, explain(proc))
        _check_unknown_transform(proc, mapping)
        assert proc.stdout.strip() == "", (args, proc.stdout)


def _check_unknown_transform(proc: subprocess.CompletedProcess[str], mapping: Path) -> None:
    assert str(mapping.resolve()) in proc.stderr, proc.stderr
    assert "orders.fields.total.transform" in proc.stderr, proc.stderr
    assert "did you mean 'decimal'" in proc.stderr, proc.stderr
    _no_traceback(proc)


def test_sync_with_an_unknown_transform_is_a_mapping_error_exit_2(cli, tmp_path: Path) -> None:
    """Exit 2 is for configuration and mapping errors; 3 is for a connector that failed."""
    mapping = tmp_path / "orders.toml"
    mapping.write_text(DEFAULT_MAPPING.read_text(encoding="utf-8").replace(
        'total = { path = "total_price", transform = "decimal"', 'total = { path = "total_price", transform = "decimall"'),
        encoding="utf-8")
    _orders_project(tmp_path, mapping="orders.toml")
    write_jsonl(tmp_path / "exports" / "orders.jsonl", 2)
    proc = cli("sync", "--no-progress", cwd=tmp_path)
    _check_unknown_transform(proc, mapping)
    assert proc.returncode == 2, explain(proc)


# -- sync options -------------------------------------------------------------------------------------------

def test_dry_run_writes_nothing_but_reports_would_be_inserts(cli, store_url: str, tmp_path: Path) -> None:
    cid = unique_id()
    write_project(tmp_path, store_url, cid, {"customers": "customers*.csv", "orders": "orders*.jsonl"})
    write_customers(tmp_path / "exports" / "customers.csv", 0, 7)
    write_jsonl(tmp_path / "exports" / "orders.jsonl", 5)

    dry = sync(cli, tmp_path, "--dry-run")
    assert dry[0]["status"] == "dry-run"
    assert stream_report(dry, "customers")["inserted"] == 7
    assert stream_report(dry, "orders")["inserted"] == 5
    status = parse_json(cli("status", "--json", cwd=tmp_path))
    assert set(status["records"].values()) == {0}, status["records"]
    assert status["runs"] == [] and status["cursors"] == []
    assert rows(store_url, "SELECT COUNT(*) FROM order_line") == [(0,)]

    real = sync(cli, tmp_path)  # the dry run saved no cursor: everything is still new
    assert stream_report(real, "customers")["inserted"] == 7
    assert stream_report(real, "orders")["inserted"] == 5


def test_remap_updates_stored_records_without_reading_the_source(cli, store_url: str, tmp_path: Path) -> None:
    cid = unique_id()
    mapping = tmp_path / "my.toml"
    shutil.copy(DEFAULT_MAPPING, mapping)
    write_project(tmp_path, store_url, cid, {"customers": "customers*.csv"}, mapping="my.toml")
    write_customers(tmp_path / "exports" / "customers.csv", 0, 6)
    first = sync(cli, tmp_path)
    assert stream_report(first, "customers")["inserted"] == 6

    text = mapping.read_text(encoding="utf-8")
    changed = text.replace('first_name = { path = "first_name", transform = "strip" }',
                           'first_name = { path = "first_name", transform = "upper" }')
    assert changed != text
    mapping.write_text(changed, encoding="utf-8")
    for f in (tmp_path / "exports").iterdir():  # proof that --remap does not read the source
        f.unlink()

    remap = stream_report(sync(cli, tmp_path, "--remap"), "customers")
    assert (remap["updated"], remap["inserted"], remap["quarantined"], remap["error"]) == (6, 0, 0, None), remap
    names = sorted(r[0] for r in rows(store_url, "SELECT first_name FROM customer"))
    assert names == [f"FIRST{i}" for i in range(6)]
    again = stream_report(sync(cli, tmp_path, "--remap"), "customers")
    assert (again["updated"], again["unchanged"]) == (0, 6), again


def test_deleted_column_marks_the_customer_deleted(cli, store_url: str, tmp_path: Path) -> None:
    cid = unique_id()
    write_project(tmp_path, store_url, cid, {"customers": "customers*.csv"})
    csv_path = tmp_path / "exports" / "customers.csv"
    header = "id,email,first_name,last_name,updated_at,deleted\n"
    csv_path.write_text(header + "A1,a1@example.com,Ann,Lee,2024-05-01 10:00:00,false\n"
                                 "A2,a2@example.com,Bo,Ng,2024-05-01 10:00:00,true\n", encoding="utf-8")
    first = stream_report(sync(cli, tmp_path), "customers")
    assert first["inserted"] == 2

    def deleted() -> dict[str, bool]:
        return {ext: bool(flag) for ext, flag in rows(store_url, "SELECT external_id, deleted FROM customer")}

    assert deleted() == {"A1": False, "A2": True}
    # the export is rewritten with A1 now deleted too
    csv_path.write_text(header + "A1,a1@example.com,Ann,Lee,2024-05-02 10:00:00,true\n"
                                 "A2,a2@example.com,Bo,Ng,2024-05-01 10:00:00,true\n", encoding="utf-8")
    second = stream_report(sync(cli, tmp_path), "customers")
    assert (second["inserted"], second["updated"]) == (0, 1), second
    assert deleted() == {"A1": True, "A2": True}


def test_status_json_on_an_empty_store(cli, store_url: str, tmp_path: Path) -> None:
    (tmp_path / "plugins.toml").write_text(f"[storesync]\ndatabase = {json.dumps(store_url)}\n", encoding="utf-8")
    proc = cli("status", "--json", cwd=tmp_path)
    assert proc.returncode == 0, explain(proc)
    status = parse_json(proc)
    assert status["runs"] == [] and status["cursors"] == [] and status["quarantine"] == []
    assert status["records"] and set(status["records"].values()) == {0}


def test_version_and_help(cli, tmp_path: Path) -> None:
    version = cli("--version", cwd=tmp_path)
    assert version.returncode == 0, explain(version)
    assert version.stdout.startswith("storesync")
    for args in (("--help",), ("sync", "--help"), ("mappings", "apply", "--help")):
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 0, (args, explain(proc))
        assert "Usage:" in proc.stdout
        if args == ("--help",):
            assert "Exit codes" in proc.stdout


# -- the lock -----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_second_sync_of_a_running_connector_exits_4_at_once(cli, store_url: str, tmp_path: Path) -> None:
    cid = unique_id("till")
    write_project(tmp_path, store_url, cid, {"orders": "orders*.jsonl"})
    write_jsonl(tmp_path / "exports" / "orders.jsonl", 30_000)
    env = {k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}
    first = subprocess.Popen([sys.executable, "-m", "storesync.cli", "sync", cid, "--no-progress"], cwd=tmp_path,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    poll = engine(store_url)
    try:
        deadline = time.monotonic() + 120
        while True:  # the first run holds the lock once its run row exists
            assert first.poll() is None, f"the first sync ended before the test could overlap it: {first.returncode}"
            assert time.monotonic() < deadline, "the first sync never started"
            try:
                with poll.connect() as conn:
                    if conn.execute(sa.text("SELECT COUNT(*) FROM run WHERE connector_id = :c AND status = 'running'"),
                                    {"c": cid}).scalar():
                        break
            except sa.exc.SQLAlchemyError:
                pass
            time.sleep(0.05)
    finally:
        poll.dispose()
    try:
        second = cli("sync", cid, "--no-progress", cwd=tmp_path, timeout=60)
        # "at once": it gave up while the first still ran, rather than waiting for the lock (no wall-clock
        # bound: the machine is shared, and start-up alone takes seconds under load)
        assert first.poll() is None, "the first sync must still be running when the second one gives up"
        assert second.returncode == 4, explain(second)
        assert f"connector '{cid}' is locked by another run" in second.stderr, second.stderr
        _no_traceback(second)
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # the lock is released: the next run goes through (and finds nothing new)
    after = stream_report(sync(cli, tmp_path, cid), "orders")
    assert (after["inserted"], after["updated"]) == (0, 0)


def test_mappings_preview_reads_live_and_writes_nothing(cli, tmp_path: Path) -> None:
    cid = unique_id()
    db = tmp_path / "store.db"
    write_project(tmp_path, f"sqlite:///{db}", cid, {"customers": "customers*.csv"})
    write_customers(tmp_path / "exports" / "customers.csv", 0, 5)
    proc = cli("mappings", "preview", cid, "customers", "--limit", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["external_id"] for r in records] == ["C00000", "C00001"]
    assert records[0]["email"] == "customer0@example.com"
    status = json.loads(cli("status", "--json", cwd=tmp_path).stdout)
    assert status["records"]["customer"] == 0 and status["cursors"] == []
