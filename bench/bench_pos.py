"""Orders per second from the Square emulator into SQLite: storesync against a hand-written minimal pipeline.

    python bench/bench_pos.py [--orders 20000] [--page-size 500] [--repeat 3]

Both sides read the same emulator (same seed, no rate limit, no faults) over loopback HTTP with
``POST /v2/orders/search`` sorted by ``UPDATED_AT``, 500 orders a page, cursor in the body:

* storesync: ``storesync sync tills --stream orders`` exactly as a user runs it (a subprocess, a fresh SQLite file
  each time); the figure is the orders stream's own time from the run report (process start-up excluded);
* baseline: one ``httpx.Client`` paging the same search, ``orjson`` decoding, a hand-written function for the
  fields ``mappings/pos.toml`` [orders] fills (money from minor units, states, line quantities), and
  ``sqlite3.executemany`` upserts of orders and lines, in a child process as storesync runs in one (the emulator
  keeps its own process to itself). No validation, raw payload, quarantine, cursor or run log.

The best of ``--repeat`` runs of each is printed, with the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson

from storesync.connectors.pos.emulator import SquareEmulator

STATUS = {"OPEN": "open", "DRAFT": "open", "COMPLETED": "closed", "CANCELED": "cancelled"}


def storesync_run(pos: SquareEmulator, root: Path, page_size: int) -> float:
    """Seconds the orders stream took in one real ``storesync sync`` run."""
    (root / "plugins.toml").write_text(
        f'[storesync]\ndatabase = "sqlite:///{root / "store.db"}"\nbatch_size = 1000\n\n'
        + pos.plugins_toml() + f"order_page_size = {page_size}\n", encoding="utf-8")
    env = {**os.environ, "SQUARE_TOKEN": pos.token}
    proc = subprocess.run([sys.executable, "-m", "storesync.cli", "sync", "tills", "--stream", "orders", "--json",
                           "--no-progress"], cwd=root, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"storesync sync failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    (report,) = json.loads(proc.stdout)
    (orders,) = [s for s in report["streams"] if s["stream"] == "orders"]
    assert orders["inserted"] == len(pos.store.orders) and orders["quarantined"] == 0, orders
    return float(orders["seconds"])


def _money(value: dict | None) -> str | None:
    return None if not value else str(Decimal(value["amount"]).scaleb(-2))


def _row(order: dict[str, Any]) -> tuple:
    return (order["id"], order.get("reference_id"), order.get("customer_id"), order["total_money"]["currency"],
            _money(order.get("total_money")), STATUS.get(order.get("state"), "open"), order["created_at"],
            order.get("updated_at"), order.get("location_id"))


def baseline_run(pos: SquareEmulator, db: Path, page_size: int) -> float:
    """Seconds the hand-written pipeline takes, in a process of its own like storesync (not sharing the GIL)."""
    spec = {"base_url": pos.base_url, "token": pos.token, "locations": pos.store.location_ids[:10],
            "db": str(db), "page_size": page_size, "orders": len(pos.store.orders)}
    proc = subprocess.run([sys.executable, __file__, "--baseline-child", json.dumps(spec)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"baseline failed:\n{proc.stderr[-3000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def baseline_child(spec: dict[str, Any]) -> float:
    """The hand-written pipeline: page, map and upsert every order; returns its seconds."""
    conn = sqlite3.connect(spec["db"])
    conn.executescript("""
        CREATE TABLE orders (external_id TEXT PRIMARY KEY, number TEXT, customer TEXT, currency TEXT, total TEXT,
                             status TEXT, created_at TEXT, updated_at TEXT, location TEXT);
        CREATE TABLE order_line (order_id TEXT, uid TEXT, variant TEXT, title TEXT, quantity INTEGER,
                                 unit_price TEXT, PRIMARY KEY (order_id, uid));""")
    started = time.perf_counter()
    body: dict[str, Any] = {"location_ids": spec["locations"], "limit": spec["page_size"], "query": {
        "filter": {"state_filter": {"states": ["OPEN", "COMPLETED", "CANCELED"]}},
        "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}}}
    with httpx.Client(base_url=spec["base_url"], headers={"Authorization": f"Bearer {spec['token']}"},
                      timeout=30) as http:
        request = dict(body)
        while True:
            page = orjson.loads(http.post("/v2/orders/search", json=request).raise_for_status().content)
            orders = page.get("orders", [])
            conn.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (external_id) DO UPDATE "
                             "SET status = excluded.status, total = excluded.total, updated_at = excluded.updated_at",
                             [_row(o) for o in orders])
            conn.executemany("INSERT INTO order_line VALUES (?,?,?,?,?,?) ON CONFLICT DO UPDATE SET "
                             "quantity = excluded.quantity",
                             [(o["id"], li["uid"], li.get("catalog_object_id"), li.get("name"),
                               int(Decimal(li["quantity"])), _money(li.get("base_price_money")))
                              for o in orders for li in o["line_items"]])
            conn.commit()
            if not page.get("cursor"):
                break
            request = {**body, "cursor": page["cursor"]}
    elapsed = time.perf_counter() - started
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == spec["orders"]
    conn.close()
    return elapsed


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--baseline-child":
        print(baseline_child(json.loads(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    built = time.perf_counter()
    with SquareEmulator(orders=args.orders, seed=1) as pos, tempfile.TemporaryDirectory() as tmp:
        print(f"emulator: {args.orders} orders, {len(pos.store.locations)} locations, built in "
              f"{time.perf_counter() - built:.1f}s; pages of {args.page_size}")
        ours, base = [], []
        for i in range(args.repeat):
            root = Path(tmp) / f"run{i}"
            root.mkdir()
            ours.append(storesync_run(pos, root, args.page_size))
            base.append(baseline_run(pos, root / "baseline.db", args.page_size))
    best_ours, best_base = min(ours), min(base)
    rate_ours, rate_base = args.orders / best_ours, args.orders / best_base
    print(f"storesync sync (orders stream): {rate_ours:,.0f} orders/s  (best of {args.repeat}: {best_ours:.2f}s)")
    print(f"baseline httpx+orjson+sqlite3:  {rate_base:,.0f} orders/s  (best of {args.repeat}: {best_base:.2f}s)")
    print(f"ratio storesync / baseline: {rate_ours / rate_base:.2f}")


if __name__ == "__main__":
    main()
