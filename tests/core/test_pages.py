"""Pages mapped in worker processes (core/pages.py) store exactly what mapping on the main process stores."""

from __future__ import annotations

import functools
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from storesync.connectors.shopify.client import decode_page as shopify_page
from storesync.connectors.shopify.emulator import Faults, ShopifyEmulator
from storesync.core import pages
from storesync.core.config import Config
from storesync.core.connector import RawPage
from storesync.core.cursor import Boundary
from storesync.core.engine import SyncEngine
from storesync.core.operations import Session
from storesync.core.pages import ON_BOUNDARY, Mapped, PageJob, PagePool, worker_count
from storesync.core.plugins import build_plugin_host
from storesync.core.writer import QuarantineEntry

TOKEN = "shpat_pages_test_token"
TABLES = ("customer", "product", "variant", "orders")


def engine_for(root: Path, base_url: str, workers: int) -> SyncEngine:
    root.mkdir(parents=True, exist_ok=True)
    (root / "plugins.toml").write_text(
        f'[storesync]\ndatabase = "sqlite:///{root / "store.db"}"\nbatch_size = 100\nworkers = {workers}\n\n'
        f'[connectors.web]\ntype = "shopify"\nshop = "harbour-goods-hk.myshopify.com"\naccess_token = "{TOKEN}"\n'
        f'base_url = "{base_url}"\npage_size = 20\npacing = false\n'
        'streams = ["customers", "products", "orders"]\n', encoding="utf-8")
    session = Session.open(str(root / "plugins.toml"))
    return SyncEngine(session.host, session.store)


def stored(root: Path) -> dict[str, set]:
    with sqlite3.connect(root / "store.db") as conn:
        out = {t: set(conn.execute(f"SELECT external_id, row_hash FROM {t}")) for t in TABLES}
        out["order_line"] = set(conn.execute(
            "SELECT o.external_id, l.position, l.sku, l.quantity FROM order_line l JOIN orders o ON o.id = l.order_id"))
    return out


def counts(engine: SyncEngine) -> dict[str, tuple]:
    (report,) = engine.sync(["web"])
    assert report.status in ("ok", "quarantined"), report.error  # the emulator seeds a few bad records
    return {s.stream: (s.read, s.inserted, s.updated, s.unchanged, s.quarantined) for s in report.streams}


def test_worker_processes_store_what_the_main_process_stores_full_and_incremental(tmp_path: Path) -> None:
    with ShopifyEmulator(orders=400, seed=21, token=TOKEN, rate_limit=None) as shop:
        here = engine_for(tmp_path / "here", shop.base_url, workers=0)
        pool = engine_for(tmp_path / "pool", shop.base_url, workers=2)
        assert counts(here) == counts(pool)
        assert here.pages.pages_mapped == 0
        assert pool.pages.pages_mapped >= 20 - 2  # 400 orders in pages of 20, after the first 2 of each stream
        assert stored(tmp_path / "here") == stored(tmp_path / "pool")

        for key in shop.store.orders.keys[50:250]:
            shop.touch("orders", key)
        for key in shop.store.customers.keys[:30]:
            shop.touch("customers", key)
        mapped = pool.pages.pages_mapped
        again_here, again_pool = counts(here), counts(pool)
    assert again_here == again_pool
    assert pool.pages.pages_mapped > mapped  # the incremental run used the workers too
    assert again_pool["orders"][2] == 200 and again_pool["customers"][2] == 30  # updated
    assert again_pool["orders"][4] == 0  # nothing quarantined
    assert stored(tmp_path / "here") == stored(tmp_path / "pool")


def test_a_short_body_mapped_in_a_worker_is_downloaded_again(tmp_path: Path) -> None:
    with ShopifyEmulator(orders=300, seed=22, token=TOKEN, rate_limit=None) as good, \
            ShopifyEmulator(orders=300, seed=22, token=TOKEN, rate_limit=None,
                            faults=Faults(truncate_rate=0.2, truncate_mode="short", seed=3)) as bad:
        clean = engine_for(tmp_path / "clean", good.base_url, workers=0)
        faulty = engine_for(tmp_path / "faulty", bad.base_url, workers=2)
        counts(clean)
        counts(faulty)
        assert bad.requests.total > good.requests.total  # short bodies happened and were fetched again
    assert faulty.pages.pages_mapped > 0
    assert stored(tmp_path / "clean") == stored(tmp_path / "faulty")


def test_a_worker_marks_records_stored_at_the_boundary_and_maps_the_rest(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, "http://127.0.0.1:9", workers=1)
    pages._adopt(engine.host)  # what a worker process does first, here in this process
    stamp = "2025-06-01T10:00:00+08:00"
    orders = [{"id": i, "name": f"#{i}", "updated_at": stamp, "created_at": stamp, "currency": "HKD",
               "total_price": "10.00", "line_items": []} for i in (1, 2, 3)]
    orders.append({"id": 4, "updated_at": stamp})  # no created_at, total or currency: does not map
    job = PageJob("web", "orders", "order", "sqlite", "updated_at", "id",
                  Boundary("updated_at", "id", stamp, frozenset({"1", "3"})))
    body = orjson.dumps({"orders": orders})

    out = pickle.loads(pickle.dumps(pages._map_page(body, functools.partial(shopify_page, key="orders"), job)))

    assert out[0] is ON_BOUNDARY and out[2] is ON_BOUNDARY  # as it crosses back to the main process
    assert isinstance(out[1], Mapped) and (out[1].cursor, out[1].key) == (stamp, "2")
    assert out[1].prepared.row[2] == "2" and out[1].prepared.item.model is None  # orders need no model once prepared
    assert isinstance(out[3], QuarantineEntry) and out[3].external_id == "4"
    assert pages._map_page(body[:-5], functools.partial(shopify_page, key="orders"), job) is None


def _pages(n: int, decode) -> list[RawPage]:
    return [RawPage(orjson.dumps({"customers": [{"id": i * 10 + k} for k in range(3)]}), decode) for i in range(n)]


def test_a_page_that_cannot_reach_a_worker_is_decoded_here_and_the_pool_turns_off(caplog) -> None:
    pool = PagePool(1, inline_pages=1)
    pool.start(build_plugin_host(Config()))
    assert pool.active
    job = PageJob("web", "customers", "customer", "sqlite", None, "id", None)
    try:
        out = list(pool.expand(_pages(3, lambda body: orjson.loads(body)["customers"]), job))  # not picklable
    finally:
        pool.close()
    assert [r["id"] for r in out] == [0, 1, 2, 10, 11, 12, 20, 21, 22]
    assert not pool.active and pool.pages_mapped == 0
    assert "page workers are off" in caplog.text


def test_a_worker_that_cannot_map_the_stream_turns_the_pool_off_without_losing_a_page() -> None:
    pool = PagePool(1, inline_pages=0)
    pool.start(build_plugin_host(Config()))  # a configuration with no connector "web"
    job = PageJob("web", "customers", "customer", "sqlite", None, "id", None)
    try:
        out = list(pool.expand([*_pages(2, functools.partial(shopify_page, key="customers")), "marker"], job))
    finally:
        pool.close()
    assert [r if isinstance(r, str) else r["id"] for r in out] == [0, 1, 2, 10, 11, 12, "marker"]
    assert not pool.active


@pytest.mark.parametrize(("setting", "cpus", "expected"), [(0, 8, 0), (3, 1, 3), (None, 1, 0), (None, 2, 2),
                                                           (None, 16, 4)])
def test_worker_count(monkeypatch, setting, cpus, expected) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: cpus)
    assert worker_count(setting) == expected


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
            found += [int(c) for c in children.read().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _sync_process(root: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}
    return subprocess.Popen([sys.executable, "-m", "storesync.cli", "--config", str(root / "plugins.toml"), "sync",
                             "--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _workers_of(proc: subprocess.Popen[bytes], deadline: float = 60) -> list[int]:
    end = time.monotonic() + deadline
    while time.monotonic() < end and proc.poll() is None:
        kids = _children(proc.pid)
        if len(kids) == 2:
            return kids
        time.sleep(0.05)
    pytest.fail(f"no page workers appeared (rc={proc.poll()})")


@pytest.mark.slow
def test_workers_end_with_a_main_process_killed_with_9_and_a_rerun_completes_the_store(tmp_path: Path) -> None:
    slow = Faults(slow_rate=1.0, slow_seconds=0.2, seed=1)  # every page late: the sync lasts half a minute
    with ShopifyEmulator(orders=3000, seed=23, token=TOKEN, rate_limit=None, faults=slow) as shop:
        engine_for(tmp_path, shop.base_url, workers=2)  # writes plugins.toml
        proc = _sync_process(tmp_path)
        workers = _workers_of(proc)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        end = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < end:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "a page worker outlived its killed main process"

        shop.faults.slow_rate = 0.0
        rerun = _sync_process(tmp_path)
        err = rerun.communicate(timeout=120)[1].decode()
        assert rerun.returncode == 0, err
    with sqlite3.connect(tmp_path / "store.db") as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 3000


@pytest.mark.slow
def test_ctrl_c_stops_the_sync_and_its_workers_without_their_tracebacks(tmp_path: Path) -> None:
    slow = Faults(slow_rate=1.0, slow_seconds=0.2, seed=1)
    with ShopifyEmulator(orders=3000, seed=24, token=TOKEN, rate_limit=None, faults=slow) as shop:
        engine_for(tmp_path, shop.base_url, workers=2)
        proc = _sync_process(tmp_path)
        workers = _workers_of(proc)
        time.sleep(0.5)
        for pid in (proc.pid, *workers):  # what a terminal does: SIGINT to the whole foreground group
            os.kill(pid, signal.SIGINT)
        err = proc.communicate(timeout=30)[1].decode()
    assert proc.returncode != 0
    assert err.count("Traceback") <= 1 and "KeyboardInterrupt" not in err.replace("Aborted", ""), err[-3000:]
    time.sleep(0.5)
    assert not any(_alive(w) for w in workers)


def test_a_closed_pool_decodes_here_until_started_again() -> None:
    pool = PagePool(1, inline_pages=0)
    pool.start(build_plugin_host(Config()))
    pool.close()
    assert not pool.active
    out = list(pool.expand(_pages(2, functools.partial(shopify_page, key="customers")),
                           PageJob("web", "customers", "customer", "sqlite", None, "id", None)))
    assert [r["id"] for r in out] == [0, 1, 2, 10, 11, 12] and pool.pages_mapped == 0
