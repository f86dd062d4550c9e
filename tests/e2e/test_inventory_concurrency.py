"""Several workers accept orders for the last units at once: never more allocated than there is.

Each worker process stores its own web order for the SKU and, at the same moment as the others (a barrier),
runs the inventory decision for that SKU. Without the lock each worker would see three free units and its own
order only, and all eight would be allocated. With it, the decisions are taken one after the other and each
sees the ones before: exactly three orders get a unit, the other five are denied, each order once.
"""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from e2e_support import write_store_project

from storesync.core.inventory_ledger import AllocationRow
from storesync.core.models import InventoryLevel, Order, OrderLine, Variant
from storesync.core.store import Store
from storesync.core.writer import Item

WORKERS = 8
UNITS = 3

INVENTORY = """
[inventory.locations.cwb]
authority = "tills"
sources = { tills = "L1", shop = "7" }

[inventory.channels.shop]
locations = ["cwb"]
push = false

[inventory.allocation]
strategy = "priority"
priority = ["cwb"]
"""


def _worker(config: str, n: int, barrier: multiprocessing.synchronize.Barrier,  # type: ignore[name-defined]
            out: multiprocessing.Queue) -> None:
    from storesync.core.inventory_run import run_inventory
    from storesync.core.operations import Session

    session = Session.open(config)
    placed = datetime.now(UTC) + timedelta(seconds=n)
    with session.store.write() as w:
        w.upsert("shop", "orders", "order", [Item(f"web{n}", Order(
            external_id=f"web{n}", currency="HKD", created_at=placed,
            lines=[OrderLine(sku="LAST", quantity=1)]), None)])
    barrier.wait(timeout=60)
    run = run_inventory(session, sku="LAST")
    out.put([(d.line.order_id, d.state) for d in run.decisions])


def test_last_units_are_never_allocated_twice(store_url: str, tmp_path: Path) -> None:
    config = write_store_project(tmp_path, store_url, ["shop", "tills"], INVENTORY)
    store = Store(store_url)
    with store.write() as w:
        w.upsert("tills", "catalog", "variant", [Item("v", Variant(external_id="v", sku="LAST", currency="HKD"),
                                                      None)])
        w.upsert("tills", "inventory", "inventory_level", [Item("l", InventoryLevel(
            external_id="l", variant_external_id="v", location_external_id="L1", on_hand=UNITS, committed=0,
            as_of=datetime.now(UTC) - timedelta(hours=1)), None)])
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(config), n, barrier, out)) for n in range(WORKERS)]
    for p in procs:
        p.start()
    decided = [pair for _ in procs for pair in out.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    t = AllocationRow.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.order_id, t.c.state)).all()
    store.close()
    states = [state for _order, state in rows]
    assert len(rows) == WORKERS == len({order for order, _ in rows})  # one decision per order, none twice
    assert states.count("allocated") == UNITS and states.count("denied") == WORKERS - UNITS
    assert sorted(decided) == sorted(rows)  # every decision stored is the one a worker took
