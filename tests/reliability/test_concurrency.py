"""Concurrency: a second sync of a connector that is syncing exits 4 at once; on PostgreSQL, workers syncing
different connectors in parallel end with the same store as one serial run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from campaign_jobs import JOBS, Live, fast_http, observe_store, popen_cli, run_cli, write_project
from pgschema import fresh_schema

from storesync.core.emulation import Faults


def test_a_second_sync_of_the_same_connector_exits_4_at_once(store_url: str, tmp_path: Path) -> None:
    job = JOBS["shopify sync"]
    with job.emulator(Faults(seed=0, slow_rate=1.0, slow_seconds=0.5), 1) as emu:  # every reply a bit late
        live = Live(tmp_path, store_url, emu, 1, fast_http())
        write_project(live, job)
        first = popen_cli(tmp_path, *job.command)
        try:
            deadline = time.monotonic() + 60
            while int(emu.requests) == 0 and time.monotonic() < deadline:  # the first run holds the lock
                time.sleep(0.01)
            started = time.monotonic()
            second = run_cli(tmp_path, "sync", "shop", "--json", "--no-progress")
            second_seconds = time.monotonic() - started
            # "at once": the second run ended while the first still worked (it did not wait for the lock)
            assert first.poll() is None, f"the first sync ended before the second ({second_seconds:.1f}s)"
            emu.faults.off()  # let the first finish quickly
        finally:
            _, err = first.communicate(timeout=300)
    assert second.returncode == 4, second.stderr[-2000:]
    (report,) = json.loads(second.stdout)
    assert report["status"] == "locked" and "locked by another run" in report["error"]
    assert first.returncode == 0, err.decode()[-2000:]


@pytest.mark.postgres
def test_parallel_workers_on_different_connectors_match_a_serial_run(tmp_path: Path) -> None:
    base = os.environ.get("STORESYNC_TEST_PG_URL")
    if not base:
        pytest.skip("set STORESYNC_TEST_PG_URL to run PostgreSQL tests")
    jobs = [JOBS[n] for n in ("shopify sync", "square sync", "odoo sync")]
    emulators = [job.emulator(Faults(seed=0), 1) for job in jobs]
    for emu in emulators:
        emu.start()
    try:
        stores = {}
        for mode in ("serial", "parallel"):
            with fresh_schema(base) as url:
                root = tmp_path / mode
                _project(root, url, jobs, emulators)
                started = time.monotonic()
                if mode == "serial":
                    proc = run_cli(root, "sync", "--no-progress", *(j.connector for j in jobs))
                    assert proc.returncode == 0, proc.stderr[-3000:]
                else:
                    workers = [popen_cli(root, "sync", "--no-progress", j.connector) for j in jobs]
                    for worker in workers:
                        _, err = worker.communicate(timeout=300)
                        assert worker.returncode == 0, err.decode()[-3000:]
                print(f"{mode}: {time.monotonic() - started:.1f}s")
                stores[mode] = sorted(observe_store(url, tuple(j.connector for j in jobs)), key=repr)
    finally:
        for emu in emulators:
            emu.stop()
    assert len(stores["serial"]) > 1000
    assert stores["parallel"] == stores["serial"]


def _project(root: Path, url: str, jobs: list, emulators: list) -> None:
    """One plugins.toml with the connector tables of several jobs."""
    tables = []
    for job, emu in zip(jobs, emulators, strict=True):
        live = Live(root, url, emu, 1, fast_http())
        write_project(live, job)  # writes the job's files; its connector table is taken from plugins.toml
        text = (root / "plugins.toml").read_text(encoding="utf-8")
        tables.append(text.split("\n\n", 1)[1])
    (root / "plugins.toml").write_text(f"[storesync]\ndatabase = {json.dumps(url)}\nbatch_size = 100\n\n"
                                       + "\n".join(tables), encoding="utf-8")
