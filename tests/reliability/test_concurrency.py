"""Concurrency on PostgreSQL: workers syncing different connectors in parallel end with the same store as one
serial run. (A second sync of a connector that is syncing exits 4 at once: tests/e2e/test_cli.py.)"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from campaign_jobs import JOBS, observe_store, popen_cli, run_cli, write_combined_project
from pgschema import fresh_schema

from storesync.core.emulation import Faults


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
                write_combined_project(root, url, dict(zip((j.name for j in jobs), emulators, strict=True)))
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
