"""Reconcile N SKUs over L locations with M open order lines (core/inventory.py), against a minimal baseline.

    python bench/bench_inventory.py [--skus 100000] [--locations 20] [--lines 1000000]

Every SKU has one authority report per location (each location's authority is the ERP or a till) plus a web-shop
report at a third of the locations; the open lines are spread over SKUs, with a third placed at a till location
and the rest web orders waiting for allocation. The figure is ``reconcile`` alone (records built beforehand), and
the process's peak RSS. The baseline, in the same run, is the same arithmetic as three dict passes without
settings, conflicts or evidence: the floor for this computation in CPython.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from storesync.core.inventory import Demand, LevelReport, reconcile  # noqa: E402
from storesync.core.inventory_config import InventorySettings  # noqa: E402


def settings(locations: int) -> InventorySettings:
    locs = {f"L{i}": {"authority": "erp" if i == 0 else "tills",
                      "sources": {("erp" if i == 0 else "tills"): f"X{i}", "shop": str(100 + i)},
                      "safety_stock": i % 3} for i in range(locations)}
    return InventorySettings.model_validate({
        "locations": locs, "channels": {"shop": {"locations": list(locs)}, "tills": {"locations": list(locs)[1:]}},
        "allocation": {"strategy": "priority", "priority": list(locs)}})


def data(skus: int, locations: int, lines: int, seed: int = 1) -> tuple[list[LevelReport], list[Demand]]:
    rng = random.Random(seed)
    t0 = datetime(2026, 11, 30, tzinfo=UTC)
    stamps = [t0 + timedelta(minutes=m) for m in range(60)]
    names = [f"SKU-{i:06d}" for i in range(skus)]
    reports = []
    for sku in names:
        for i in range(locations):
            reports.append(LevelReport("erp" if i == 0 else "tills", f"X{i}", sku, rng.randrange(50),
                                       rng.randrange(3), stamps[rng.randrange(30)]))
            if i % 3 == 0:
                reports.append(LevelReport("shop", str(100 + i), sku, rng.randrange(50), None, stamps[30]))
    demand = []
    for n in range(lines):
        placed = rng.random() < 1 / 3
        i = rng.randrange(1, locations)
        demand.append(Demand("tills" if placed else "shop", f"O{n}", stamps[rng.randrange(60)],
                             names[rng.randrange(skus)], 1 + rng.randrange(3), f"X{i}" if placed else None))
    return reports, demand


def baseline(reports: list[LevelReport], demand: list[Demand], authority: dict[str, str],
             where: dict[tuple[str, str], str]) -> int:
    on_hand: dict[tuple[str, str], tuple[int, int, datetime | None]] = {}
    for r in reports:
        loc = where.get((r.connector_id, r.location))
        if loc is not None and authority[loc] == r.connector_id:
            on_hand[(r.sku, loc)] = (r.on_hand or 0, r.committed or 0, r.as_of)
    committed: dict[tuple[str, str], int] = defaultdict(int)
    for d in demand:
        if d.location is not None:
            key = (d.sku, where[(d.connector_id, d.location)])
            held = on_hand.get(key)
            if held is None or d.placed_at > held[2]:
                committed[key] += d.quantity
    return sum(max(0, h - c - committed.get(k, 0)) for k, (h, c, _t) in on_hand.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--locations", type=int, default=20)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    conf = settings(args.locations)
    began = time.perf_counter()
    reports, demand = data(args.skus, args.locations, args.lines)
    print(f"{len(reports):,} level reports, {len(demand):,} open lines built in {time.perf_counter() - began:.1f}s",
          flush=True)
    where = conf.source_index
    authority = {loc: spec.authority for loc, spec in conf.locations.items()}
    start = time.perf_counter()
    baseline(reports, demand, authority, where)
    base = time.perf_counter() - start
    start = time.perf_counter()
    result = reconcile(conf, reports, demand)
    ours = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kinds = defaultdict(int)
    for c in result.conflicts:
        kinds[c.kind] += 1
    print(f"reconcile: {ours:.1f}s for {len(result.positions):,} positions, {len(result.available_to_sell):,} "
          f"channel figures, conflicts {dict(kinds)}")
    print(f"baseline (three dict passes, no settings/conflicts/evidence): {base:.1f}s   ratio {ours / base:.1f}x")
    print(f"peak RSS of this process (data included): {peak:,.0f} MB   (targets: <= 10 s, <= 1 GiB)")


if __name__ == "__main__":
    main()
