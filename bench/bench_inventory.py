"""Reconcile N SKUs over L locations with M open order lines in the store (core/inventory_bulk.py), timed.

    python bench/bench_inventory.py [--skus 100000] [--locations 20] [--lines 1000000] [--small]
                                    [--database postgresql://user@host/db] [--reconcile]

The store (a SQLite file in a temporary directory, or a fresh schema of the PostgreSQL database given) is filled
by bulk inserts, not timed: a variant per SKU for each of the ERP, the tills and the web shop; an authority report
per SKU and location (the ERP by its own SKU at the warehouse, the tills through their variant ids elsewhere) and
a web-shop report through Shopify's inventory item id at a third of the locations; M open lines, a third placed
at a till location, the rest web orders waiting for allocation (plus a fifth as many lines of closed orders).

Then, each phase in its own process (its peak RSS is that process's ``ru_maxrss``, generation excluded):

1. ``refresh(full=True)``: every position, channel target and exception;
2. 100 SKUs change (two reports each and a new web order for half of them), then ``refresh()``: incremental;
3. the baseline, same tables, same run: one hand-written SQL aggregation of on hand - committed - open demand per
   (SKU, location), SKU through the variant join, no report times, safety stock, targets or exceptions: the floor
   for reading these rows once in this database;
4. with ``--reconcile``, the command a user runs, ``storesync inventory reconcile --json``, in a subprocess, twice:
   the first run decides every web order waiting for a location (minutes at full size), the later one what
   changed since (nothing new here: the oversold SKUs it explains).

On PostgreSQL the figures are the client's; the server's memory is its own (shared_buffers, work_mem).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa  # noqa: E402

from storesync.core.inventory_bulk import refresh  # noqa: E402
from storesync.core.inventory_config import InventorySettings  # noqa: E402
from storesync.core.store import Store  # noqa: E402
from storesync.core.tables import CHILD_TABLES, ENTITY_TABLES, to_utc_text  # noqa: E402

T0 = datetime(2026, 11, 30, tzinfo=UTC)
CHUNK = 50_000


def inventory_table(locations: int) -> dict:
    """The warehouse (ERP) and L-1 shop floors (tills); the web shop sells from all, the tills from theirs."""
    locs = {f"L{i}": {"authority": "erp" if i == 0 else "tills",
                      "sources": {("erp" if i == 0 else "tills"): f"X{i}", "shop": str(100 + i)},
                      "safety_stock": i % 3} for i in range(locations)}
    return {"locations": locs, "channels": {"shop": {"locations": list(locs)}, "tills": {"locations": list(locs)[1:]}},
            "safety_stock": [{"sku": "SKU-000007", "quantity": 2}],
            "allocation": {"strategy": "priority", "priority": list(locs)}}


def settings(locations: int) -> InventorySettings:
    return InventorySettings.model_validate(inventory_table(locations))


def plugins_toml(url: str, locations: int) -> str:
    """A plugins.toml for ``storesync inventory reconcile`` on the generated store: the three systems as
    ``files`` connectors that read nothing (the store holds their records), and the same ``[inventory]``."""
    table = inventory_table(locations)
    out = ["[storesync]", f"database = {json.dumps(url)}", ""]
    for cid in ("erp", "tills", "shop"):
        out += [f"[connectors.{cid}]", 'type = "files"', 'directory = "."', f"[connectors.{cid}.files]",
                'none = "*.none"', ""]
    for loc, spec in table["locations"].items():
        sources = ", ".join(f"{k} = {json.dumps(v)}" for k, v in spec["sources"].items())
        out += [f"[inventory.locations.{loc}]", f"authority = {json.dumps(spec['authority'])}",
                f"sources = {{ {sources} }}", f"safety_stock = {spec['safety_stock']}", ""]
    for cid, spec in table["channels"].items():
        out += [f"[inventory.channels.{cid}]", f"locations = {json.dumps(spec['locations'])}", ""]
    for rule in table["safety_stock"]:
        out += ["[[inventory.safety_stock]]", f"sku = {json.dumps(rule['sku'])}", f"quantity = {rule['quantity']}", ""]
    allocation = table["allocation"]
    out += ["[inventory.allocation]", f"strategy = {json.dumps(allocation['strategy'])}",
            f"priority = {json.dumps(allocation['priority'])}", ""]
    return "\n".join(out)


# -- generation (not timed) --------------------------------------------------------------------------------

class Loader:
    """Bulk rows into one table: sqlite3 executemany, or psycopg COPY."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.dbapi = conn.connection.driver_connection
        self.pg = conn.dialect.name == "postgresql"
        self.synced = T0 - timedelta(hours=1)

    def stamp(self, value: datetime) -> object:
        return value if self.pg else to_utc_text(value)

    def load(self, table: str, cols: list[str], rows) -> None:
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                self._write(table, cols, batch)
                batch = []
        if batch:
            self._write(table, cols, batch)

    def _write(self, table: str, cols: list[str], rows: list[tuple]) -> None:
        if self.pg:
            with self.dbapi.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(cols))
            self.dbapi.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)


BINDING = ["connector_id", "stream", "external_id", "row_hash", "raw", "synced_at", "deleted"]


def generate(store: Store, skus: int, locations: int, lines: int, seed: int = 1) -> dict[str, int]:
    rng = random.Random(seed)
    stamps = [T0 + timedelta(minutes=m) for m in range(60)]
    with store.engine.begin() as conn:
        load = Loader(conn)
        # synced over the day before (a sync writes rows a few at a time), so the refresh's look-back below its
        # high-water mark finds a few minutes' worth, as it would in use
        synced_at = [load.stamp(load.synced - timedelta(minutes=m)) for m in range(24 * 60)]
        at = [load.stamp(s) for s in stamps]
        no = False

        def variants():
            for n in range(skus):
                sku = f"SKU-{n:06d}"
                synced = synced_at[rng.randrange(len(synced_at))]
                yield ("erp", "variants", f"E{n}", "h", None, synced, no, sku, None)
                yield ("tills", "variants", f"T{n}", "h", None, synced, no, sku, None)
                yield ("shop", "variants", f"S{n}", "h", None, synced, no, sku, f"I{n}")
        load.load("variant", [*BINDING, "sku", "inventory_item_id"], variants())

        def levels():
            for n in range(skus):
                for i in range(locations):
                    raw = json.dumps({"location": i, "item": n})
                    synced = synced_at[rng.randrange(len(synced_at))]
                    if i == 0:
                        yield ("erp", "quants", f"q{n}-{i}", "h", raw, synced, no, f"SKU-{n:06d}", None, "X0",
                               rng.randrange(50), rng.randrange(3), at[rng.randrange(30)], None)
                    else:
                        yield ("tills", "counts", f"c{n}-{i}", "h", raw, synced, no, None, f"T{n}", f"X{i}",
                               rng.randrange(50), rng.randrange(3), at[rng.randrange(30)], None)
                    if i % 3 == 0:
                        yield ("shop", "levels", f"l{n}-{i}", "h", raw, synced, no, None, None, str(100 + i),
                               rng.randrange(50), None, at[30], json.dumps({"inventory_item_id": f"I{n}"}))
        load.load("inventory_level", [*BINDING, "sku", "variant_external_id", "location_external_id", "on_hand",
                                      "committed", "as_of", "attributes"], levels())
        closed = lines // 5
        order_rows, line_rows = [], []
        n_lines = 0
        order_id = 0
        while n_lines < lines + closed:
            order_id += 1
            placed = rng.random() < 1 / 3
            cid = "tills" if placed else "shop"
            status = "closed" if n_lines >= lines else "open"
            order_rows.append((cid, "orders", f"O{order_id}", "h", None, synced_at[rng.randrange(len(synced_at))], no,
                               "HKD", status, at[rng.randrange(60)],
                               f"X{rng.randrange(1, locations)}" if placed else None))
            for pos in range(1 + rng.randrange(3)):
                n = rng.randrange(skus)
                line_rows.append((order_id, pos, f"SKU-{n:06d}" if cid == "shop" else None,
                                  f"T{n}" if cid == "tills" else None, 1 + rng.randrange(3), 0))
                n_lines += 1
        load.load("orders", ["id", *BINDING, "currency", "status", "created_at", "location_external_id"],
                  ((i + 1, *row) for i, row in enumerate(order_rows)))
        load.load("order_line", ["order_id", "position", "sku", "variant_external_id", "quantity",
                                 "fulfilled_quantity"], line_rows)
    if store.dialect == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('orders', 'id'), (SELECT max(id) FROM orders))")
            conn.exec_driver_sql("ANALYZE")
    else:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return {"orders": len(order_rows), "lines": len(line_rows)}


def change(store: Store, skus: int, count: int = 100, seed: int = 2) -> list[str]:
    """``count`` SKUs change: their warehouse and first shop-floor counts, and a web order for half of them."""
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(skus), count))
    level, order, line = ENTITY_TABLES["inventory_level"], ENTITY_TABLES["order"], CHILD_TABLES["order"][1]
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        for n in chosen:
            for cid, ext in (("erp", f"q{n}-0"), ("tills", f"c{n}-1")):
                conn.execute(sa.update(level).where(level.c.connector_id == cid, level.c.external_id == ext)
                             .values(on_hand=rng.randrange(50), as_of=now, synced_at=now))
        for n in chosen[::2]:
            new = conn.execute(sa.insert(order).values(
                connector_id="shop", stream="orders", external_id=f"N{n}", row_hash="h", synced_at=now,
                deleted=False, currency="HKD", status="open", created_at=now)).inserted_primary_key[0]
            conn.execute(sa.insert(line).values(order_id=new, position=0, sku=f"SKU-{n:06d}", quantity=1))
    return [f"SKU-{n:06d}" for n in chosen]


# -- the timed phases, each in its own process -----------------------------------------------------------

BASELINE = """
WITH d AS (SELECT COALESCE(ln.sku, v.sku) AS sku, o.location_external_id AS loc, SUM(ln.quantity) AS q
           FROM orders o JOIN order_line ln ON ln.order_id = o.id
           LEFT JOIN variant v ON v.connector_id = o.connector_id AND v.external_id = ln.variant_external_id
           WHERE o.status = 'open' GROUP BY 1, 2),
     h AS (SELECT COALESCE(l.sku, v.sku) AS sku, l.location_external_id AS loc,
                  l.on_hand - COALESCE(l.committed, 0) AS free
           FROM inventory_level l
           LEFT JOIN variant v ON v.connector_id = l.connector_id AND v.external_id = l.variant_external_id
           WHERE l.connector_id <> 'shop')
SELECT COUNT(*), SUM(CASE WHEN h.free - COALESCE(d.q, 0) > 0 THEN h.free - COALESCE(d.q, 0) ELSE 0 END)
FROM h LEFT JOIN d ON d.sku = h.sku AND d.loc = h.loc
"""


def phase(url: str, name: str, locations: int) -> dict:
    store = Store(url)
    conf = settings(locations)
    began = time.perf_counter()
    out: dict = {}
    if name == "baseline":
        with store.engine.connect() as conn:
            count, total = conn.exec_driver_sql(BASELINE).one()
        out.update(rows=count, total=int(total or 0))
    else:
        result = refresh(store, conf, full=name == "full")
        out.update(full=result.full, skus=result.skus_recomputed, positions=result.positions,
                   targets=result.targets, exceptions=result.exceptions.counts, without_variant=result.without_variant,
                   steps={k: round(v, 2) for k, v in result.steps.items()})
    out["seconds"] = time.perf_counter() - began
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store.close()
    return out


def run_phase(url: str, name: str, locations: int) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--url", url, "--locations", str(locations)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"phase {name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def reconcile_command(url: str, locations: int, workdir: str) -> dict:
    """``storesync inventory reconcile --json`` as a user runs it on the store: wall time, peak RSS, exit code."""
    config = Path(workdir) / "plugins.toml"
    config.write_text(plugins_toml(url, locations), encoding="utf-8")
    cmd = [sys.executable, "-m", "storesync.cli", "--config", str(config), "inventory", "reconcile", "--json"]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: open conflicts remain, as this store has
        sys.exit(f"inventory reconcile exited {code}:\n{proc.stderr.read() if proc.stderr else ''}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "exit": code}


def pg_schema(base: str) -> tuple[str, str]:
    schema = f"bench_inv_{uuid.uuid4().hex[:8]}"
    with sa.create_engine(Store(base).url).begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--locations", type=int, default=20)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--small", action="store_true", help="10,000 SKUs x 20 locations, 100,000 lines")
    parser.add_argument("--database", help="a PostgreSQL URL (a fresh schema is made and dropped); default SQLite")
    parser.add_argument("--reconcile", action="store_true",
                        help="also time `storesync inventory reconcile` twice: the first run decides every waiting "
                             "order (minutes at full size), a later one what changed")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.url, args.phase, args.locations)))
        return
    if args.small:
        args.skus, args.lines = 10_000, 100_000
    with tempfile.TemporaryDirectory(prefix="bench_inventory_") as tmp:
        schema = None
        url = f"sqlite:///{os.path.join(tmp, 'store.db')}"
        if args.database:
            url, schema = pg_schema(args.database)
        try:
            report(url, args, tmp)
        finally:
            if schema:
                with sa.create_engine(Store(args.database).url).begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


def report(url: str, args: argparse.Namespace, workdir: str) -> None:
    began = time.perf_counter()
    store = Store(url)
    made = generate(store, args.skus, args.locations, args.lines)
    print(f"{store.dialect}: {args.skus:,} SKUs x {args.locations} locations, {made['lines']:,} lines "
          f"({args.lines:,} open) in {made['orders']:,} orders, generated in {time.perf_counter() - began:.0f}s",
          flush=True)
    full = run_phase(url, "full", args.locations)
    print(f"full refresh: {full['seconds']:.1f}s, peak RSS {full['peak_mb']:,.0f} MB: {full['positions']:,} "
          f"positions, {full['targets']:,} targets, exceptions {full['exceptions']}, "
          f"SKUs without a variant {full['without_variant']}\n  seconds per step: {full['steps']}", flush=True)
    changed = change(store, args.skus)
    store.close()
    inc = run_phase(url, "incremental", args.locations)
    print(f"incremental after {len(changed)} changed SKUs: {inc['seconds']:.2f}s, peak RSS {inc['peak_mb']:,.0f} "
          f"MB: full={inc['full']}, {inc['skus']} SKUs, {inc['positions']:,} positions, {inc['targets']:,} targets"
          f"\n  seconds per step: {inc['steps']}", flush=True)
    base = run_phase(url, "baseline", args.locations)
    print(f"baseline (one SQL aggregation, no times/safety/targets/exceptions): {base['seconds']:.1f}s, peak RSS "
          f"{base['peak_mb']:,.0f} MB over {base['rows']:,} rows   ratio full/baseline "
          f"{full['seconds'] / base['seconds']:.1f}x")
    if args.reconcile:
        for label in ("first", "later"):
            run = reconcile_command(url, args.locations, workdir)
            print(f"storesync inventory reconcile, {label} run: {run['seconds']:.1f}s, peak RSS "
                  f"{run['peak_mb']:,.0f} MB, exit {run['exit']}", flush=True)
    print("targets: full <= 10 s and <= 1 GiB; incremental <= 1 s")


if __name__ == "__main__":
    main()
