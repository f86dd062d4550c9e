"""kill -9 in the middle of a sync, several times: the store ends up exactly as after one uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from e2e_support import engine, rows, scalar, stream_report, sync, unique_id, write_jsonl, write_project

N_ORDERS = 30_000
LINES_PER_ORDER = 3  # datagen.shopify_order's default


@pytest.fixture(scope="session")
def big_orders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~30,000 Shopify-shaped orders in one JSON Lines file, generated once per session."""
    path = tmp_path_factory.mktemp("big") / "orders-big.jsonl"
    write_jsonl(path, N_ORDERS)
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}


def _start_sync(cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "storesync.cli", "sync", "--no-progress"], cwd=cwd, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _count(eng: sa.Engine) -> int | None:
    try:
        with eng.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar_one())
    except sa.exc.SQLAlchemyError:  # tables not created yet, or a SQLite writer holds a lock for a moment
        return None


def _kill_when(proc: subprocess.Popen[bytes], eng: sa.Engine, at_least: int, deadline: float = 120) -> int:
    """SIGKILL ``proc`` as soon as the store holds ``at_least`` orders while it still runs; return that count."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        count = _count(eng)
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"the sync finished (rc={proc.returncode}, {count} orders stored) before it could be "
                        f"killed at >= {at_least} orders; make N_ORDERS bigger\n{err[-2000:]}")
        if count is not None and count >= at_least:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return count
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    pytest.fail(f"the store never reached {at_least} orders within {deadline} s")


def _orders(url: str) -> list[tuple[object, ...]]:
    return rows(url, "SELECT external_id, row_hash, deleted FROM orders")


def _lines(url: str) -> Counter[tuple[object, ...]]:
    return Counter(rows(url, "SELECT o.external_id, l.position, l.sku, l.quantity, l.unit_price "
                             "FROM order_line l JOIN orders o ON o.id = l.order_id"))


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(cli, store_url: str, second_store_url: str,
                                                                 tmp_path: Path, big_orders: Path) -> None:
    started = time.monotonic()
    cid = unique_id()
    # store A: the reference, one uninterrupted run (in the background, while store B is being crashed)
    ref_dir, crash_dir = tmp_path / "ref", tmp_path / "crash"
    write_project(ref_dir, second_store_url, unique_id("ref"), {"orders": "orders*.jsonl"})
    write_project(crash_dir, store_url, cid, {"orders": "orders*.jsonl"})
    for d in (ref_dir, crash_dir):
        shutil.copy(big_orders, d / "exports" / big_orders.name)
    reference = subprocess.Popen([sys.executable, "-m", "storesync.cli", "sync", "--no-progress"], cwd=ref_dir,
                                 env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    # store B: killed three times at different moments, each restart resuming from the last committed batch
    poll = engine(store_url)
    seen = []
    try:
        for extra in (1, 2_500, 5_200):  # the first batch; later ones a few checkpoints further on
            before = _count(poll) or 0
            proc = _start_sync(crash_dir)
            seen.append(_kill_when(proc, poll, before + extra))
            assert proc.returncode == -signal.SIGKILL, "the sync was not killed mid-run"
            assert proc.poll() == -signal.SIGKILL
    finally:
        poll.dispose()
    assert 0 < seen[0] < seen[1] < seen[2] < N_ORDERS, seen

    before_final = scalar(store_url, "SELECT COUNT(*) FROM orders")
    assert before_final >= seen[2]
    orders = stream_report(sync(cli, crash_dir), "orders")
    # re-read records (since the last checkpoint) are unchanged, never updated; the rest is inserted once
    assert orders["inserted"] == N_ORDERS - before_final, orders
    assert (orders["updated"], orders["quarantined"], orders["error"]) == (0, 0, None), orders

    out, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err.decode(errors="replace")[-3000:]

    # the same rows, the same hashes, the same lines, no duplicates
    a_orders, b_orders = _orders(second_store_url), _orders(store_url)
    assert len(a_orders) == len(b_orders) == N_ORDERS
    assert len(set(b_orders)) == len(b_orders)
    assert set(b_orders) == set(a_orders)
    a_lines, b_lines = _lines(second_store_url), _lines(store_url)
    assert sum(b_lines.values()) == sum(a_lines.values()) == N_ORDERS * LINES_PER_ORDER
    assert b_lines == a_lines
    for url in (store_url, second_store_url):
        assert rows(url, "SELECT connector_id, stream, external_id, COUNT(*) FROM orders "
                         "GROUP BY connector_id, stream, external_id HAVING COUNT(*) > 1") == []
        assert rows(url, "SELECT order_id, position, COUNT(*) FROM order_line "
                         "GROUP BY order_id, position HAVING COUNT(*) > 1") == []
        assert scalar(url, "SELECT COUNT(*) FROM order_line WHERE order_id NOT IN (SELECT id FROM orders)") == 0
        assert scalar(url, "SELECT COUNT(*) FROM quarantine") == 0

    # nothing left to do
    again = stream_report(sync(cli, crash_dir), "orders")
    assert (again["inserted"], again["updated"], again["quarantined"]) == (0, 0, 0), again
    elapsed = time.monotonic() - started
    print(f"crash test on {store_url.split(':')[0]}: kills at {seen} orders, {elapsed:.1f} s")
