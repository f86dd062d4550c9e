"""Sale orders per second from the Odoo emulator into SQLite: storesync (both transports) against a hand-written
minimal pipeline.

    python bench/bench_erp.py [--orders 5000] [--page-size 200] [--repeat 3]

All read the same emulator (same seed, no faults) over loopback HTTP: ``sale.order`` ``search_read`` pages ordered
``write_date asc, id asc``, then one ``sale.order.line`` ``read`` and one ``product.product`` lookup per page.

* storesync: ``storesync sync erp --stream sale_orders`` exactly as a user runs it (a subprocess, a fresh SQLite
  file each time), over JSON-RPC and over JSON-2; the figure is the stream's own time from the run report;
* baseline: one ``httpx.Client`` speaking JSON-RPC (authenticate, then ``execute_kw``) with plain offset paging,
  ``orjson``, a hand-written mapping of the fields ``mappings/erp.toml`` [sale_orders] fills, and
  ``sqlite3.executemany`` upserts of orders and lines, in a child process as storesync runs in one. No validation,
  raw payload, quarantine, cursor or run log.

The best of ``--repeat`` runs of each is printed, with the ratios.
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
from pathlib import Path
from typing import Any

import httpx
import orjson

from storesync.connectors.erp.emulator import OdooEmulator

ORDER_FIELDS = ["name", "partner_id", "state", "date_order", "client_order_ref", "amount_untaxed", "amount_total",
                "currency_id", "order_line", "write_date"]
LINE_FIELDS = ["order_id", "product_id", "name", "product_uom_qty", "qty_delivered", "price_unit", "price_subtotal"]
STATUS = {"done": "closed", "cancel": "cancelled"}


def storesync_run(odoo: OdooEmulator, root: Path, page_size: int, transport: str) -> float:
    """Seconds the sale_orders stream took in one real ``storesync sync`` run."""
    (root / "plugins.toml").write_text(
        f'[storesync]\ndatabase = "sqlite:///{root / "store.db"}"\nbatch_size = 1000\n\n'
        + odoo.plugins_toml(transport=transport) + f"page_size = {page_size}\n", encoding="utf-8")
    env = {**os.environ, "ODOO_API_KEY": odoo.api_key}
    proc = subprocess.run([sys.executable, "-m", "storesync.cli", "sync", "erp", "--stream", "sale_orders", "--json",
                           "--no-progress"], cwd=root, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"storesync sync failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    (report,) = json.loads(proc.stdout)
    (stream,) = report["streams"]
    assert stream["inserted"] == len(odoo.db.tables["sale.order"]) and stream["quarantined"] == 0, stream
    return float(stream["seconds"])


def baseline_run(odoo: OdooEmulator, db: Path, page_size: int) -> float:
    """Seconds the hand-written pipeline takes, in a process of its own like storesync (not sharing the GIL)."""
    spec = {"url": odoo.url, "database": odoo.database, "login": odoo.login, "key": odoo.api_key, "db": str(db),
            "page_size": page_size, "orders": len(odoo.db.tables["sale.order"])}
    proc = subprocess.run([sys.executable, __file__, "--baseline-child", json.dumps(spec)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"baseline failed:\n{proc.stderr[-3000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


class _Rpc:
    def __init__(self, http: httpx.Client, spec: dict[str, Any]) -> None:
        self.http, self.spec = http, spec
        self.uid = self._call("common", "authenticate", [spec["database"], spec["login"], spec["key"], {}])

    def _call(self, service: str, method: str, args: list) -> Any:
        body = {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args}}
        return orjson.loads(self.http.post("/jsonrpc", json=body).raise_for_status().content)["result"]

    def __call__(self, model: str, method: str, args: list, kwargs: dict) -> Any:
        s = self.spec
        return self._call("object", "execute_kw", [s["database"], self.uid, s["key"], model, method, args, kwargs])


def baseline_child(spec: dict[str, Any]) -> float:
    """The hand-written pipeline: page, map and upsert every sale order with its lines; returns its seconds."""
    conn = sqlite3.connect(spec["db"])
    conn.executescript("""
        CREATE TABLE orders (external_id TEXT PRIMARY KEY, number TEXT, customer TEXT, currency TEXT, total TEXT,
                             status TEXT, created_at TEXT, updated_at TEXT);
        CREATE TABLE order_line (order_id TEXT, line_id TEXT, sku TEXT, title TEXT, quantity INTEGER,
                                 unit_price TEXT, PRIMARY KEY (order_id, line_id));""")
    started = time.perf_counter()
    with httpx.Client(base_url=spec["url"], timeout=30) as http:
        rpc, offset = _Rpc(http, spec), 0
        while True:
            page = rpc("sale.order", "search_read", [], {"fields": ORDER_FIELDS, "offset": offset,
                                                         "limit": spec["page_size"], "order": "write_date asc, id asc"})
            lines = rpc("sale.order.line", "read", [[i for o in page for i in o["order_line"]]], {"fields": LINE_FIELDS})
            products = {p["id"]: p["default_code"] for p in rpc("product.product", "search_read", [], {
                "domain": [("id", "in", sorted({ln["product_id"][0] for ln in lines}))], "fields": ["default_code"]})}
            conn.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (external_id) DO UPDATE "
                             "SET status = excluded.status, total = excluded.total, updated_at = excluded.updated_at",
                             [(str(o["id"]), o["name"], str(o["partner_id"][0]), o["currency_id"][1],
                               str(o["amount_total"]), STATUS.get(o["state"], "open"), o["date_order"],
                               o["write_date"]) for o in page])
            conn.executemany("INSERT INTO order_line VALUES (?,?,?,?,?,?) ON CONFLICT DO UPDATE SET "
                             "quantity = excluded.quantity",
                             [(str(ln["order_id"][0]), str(ln["id"]), products.get(ln["product_id"][0]), ln["name"],
                               int(ln["product_uom_qty"]), str(ln["price_unit"])) for ln in lines])
            conn.commit()
            offset += len(page)
            if len(page) < spec["page_size"]:
                break
    elapsed = time.perf_counter() - started
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == spec["orders"]
    conn.close()
    return elapsed


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--baseline-child":
        print(baseline_child(json.loads(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    built = time.perf_counter()
    with OdooEmulator(orders=args.orders, partners=500, products=200, seed_value=1) as odoo, \
            tempfile.TemporaryDirectory() as tmp:
        lines = len(odoo.db.tables["sale.order.line"])
        print(f"emulator: {args.orders} sale orders ({lines} lines), built in {time.perf_counter() - built:.1f}s; "
              f"pages of {args.page_size}")
        runs: dict[str, list[float]] = {"jsonrpc": [], "json2": [], "baseline": []}
        for i in range(args.repeat):
            root = Path(tmp) / f"run{i}"
            for transport in ("jsonrpc", "json2"):
                (root / transport).mkdir(parents=True)
                runs[transport].append(storesync_run(odoo, root / transport, args.page_size, transport))
            runs["baseline"].append(baseline_run(odoo, root / "baseline.db", args.page_size))
    best = {name: min(times) for name, times in runs.items()}
    for name, label in (("jsonrpc", "storesync sync, JSON-RPC"), ("json2", "storesync sync, JSON-2  "),
                        ("baseline", "baseline JSON-RPC+sqlite3")):
        print(f"{label}: {args.orders / best[name]:,.0f} orders/s  (best of {args.repeat}: {best[name]:.2f}s)")
    print(f"ratio storesync / baseline: JSON-RPC {best['baseline'] / best['jsonrpc']:.2f}, "
          f"JSON-2 {best['baseline'] / best['json2']:.2f}")


if __name__ == "__main__":
    main()
