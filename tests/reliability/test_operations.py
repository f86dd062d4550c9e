"""Operations: structured logs (``--log-format json``) and the run report of each sync (``storesync runs``)."""

from __future__ import annotations

import json
from pathlib import Path

from campaign_jobs import JOBS, Live, fast_http, run_cli, write_project
from fault_campaign import retry_records

from storesync.core.emulation import Faults


def test_json_logs_and_the_run_report_agree_on_a_sync_that_fought_faults(tmp_path: Path) -> None:
    job = JOBS["shopify sync"]
    with job.emulator(Faults(seed=4, error_rate=0.15, burst_rate=0.05), 1) as emu:
        write_project(Live(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", emu, 1, fast_http()), job)
        proc = run_cli(tmp_path, "--log-format", "json", "-v", *job.command, "--json")
        served = int(emu.requests)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (report,) = json.loads(proc.stdout)
    retries, not_json, lines = retry_records(proc.stderr)
    assert not_json == [] and lines >= len(retries) > 0
    for record in retries:  # each retry: when, which run, which request, why, how long it waits
        assert record["connector"] == "shop" and record["run_id"] == report["run_id"]
        assert record["level"] == "info" and record["ts"].endswith("+00:00")
        assert {"http_method", "http_path", "http_error", "attempt", "sleep_seconds"} <= set(record)
    assert report["http_retries"] == len(retries) and report["http_requests"] == served

    (row,) = json.loads(run_cli(tmp_path, "runs", "--json").stdout)
    assert (row["id"], row["connector_id"], row["status"]) == (report["run_id"], "shop", "ok")
    assert row["http_retries"] == len(retries) and row["http_requests"] == served
    assert row["records_read"] == sum(s["read"] for s in report["streams"]) > 0
    assert row["records_written"] == sum(s["inserted"] for s in report["streams"])
    assert row["seconds"] > 0 and row["last_retry_error"] and row["last_error"] is None
    table = run_cli(tmp_path, "runs", "shop")
    assert table.returncode == 0 and "retries" in table.stdout and str(len(retries)) in table.stdout


def test_a_failed_run_is_reported_with_its_last_error_and_errors_are_json_lines_too(tmp_path: Path) -> None:
    job = JOBS["shopify sync"]
    with job.emulator(Faults(seed=0, error_rate=1.0), 1) as emu:
        write_project(Live(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", emu, 1, fast_http(max_retries=1)), job)
        proc = run_cli(tmp_path, "--log-format", "json", *job.command)
    assert proc.returncode == 3
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    errors = [r for r in records if r["level"] == "error"]
    assert errors and all("failed after 1 retries" in r["message"] for r in errors)
    assert {r.get("where") for r in errors} >= {"shop/orders"}
    (row,) = json.loads(run_cli(tmp_path, "runs", "--json").stdout)
    assert row["status"] == "failed" and "failed after 1 retries: HTTP 50" in row["last_error"]
    assert row["http_retries"] > 0 and row["records_written"] == 0
