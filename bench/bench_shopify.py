"""Full and incremental Shopify sync from the emulator into SQLite: storesync against a hand-written pipeline and dlt.

    python bench/bench_shopify.py [--orders 100000] [--no-dlt] [--no-minimal]

dlt comes with the ``bench`` extra: ``pip install -e '.[bench]'``.

The emulator runs in this process (rate limit off); each pipeline runs in a process of its own, one after the
other, against the same emulator in the same run, so the ratios hold on a noisy shared machine. Memory is each
pipeline process's own peak RSS and the peak PSS summed over it and its workers (see ``run``). Every pipeline
reads customers, products (with variants) and orders (``status=any``, 250 a page):

* storesync: the real ``storesync sync`` command with the default mapping, validation and store;
* baseline: the hand-written minimal pipeline (shopify_pipelines.py), with storesync's transform functions
  (``same``) and with stdlib one-liners (``minimal``);
* dlt: dlt resources over its REST client with Link-header paging, merge on ``id``, into duckdb.

Then 1% of the orders change in the emulator and storesync syncs again: the requests it made and the orders it
read show that only the changes were fetched.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN = "shpat_bench"


def run(cmd: list[str]) -> dict:
    """Run ``cmd``; its wall time, stdout, peak memory in MB and CPU seconds, worker processes included.

    Memory is sampled from /proc every 0.1 s until the child exits: ``rss_mb`` is the child's own peak
    (``VmHWM``); ``pss_mb`` the peak of the summed proportional set size of the child and every process under
    it (storesync's page workers are forked and share pages with it: PSS counts a shared page once, split
    between its sharers, where summing RSS would count it in every process). ``ru_maxrss`` would not do: it
    survives exec, so a child forked from this process, which holds the emulator's data, would report this
    process's size. The CPU time is ``wait4``'s, which includes the children the child waited for.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "SHOPIFY_TOKEN": TOKEN})
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []

    def drain(stream, sink):
        for chunk in iter(lambda: stream.read(65536), b""):
            sink.append(chunk)

    readers = [threading.Thread(target=drain, args=(proc.stdout, out_chunks)),
               threading.Thread(target=drain, args=(proc.stderr, err_chunks))]
    for t in readers:
        t.start()
    peak, pss, processes = [0], [0], set()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            tree = _tree(proc.pid)
            processes.update(tree)
            peak[0] = max(peak[0], _proc_kb(proc.pid, "status", "VmHWM:"))
            pss[0] = max(pss[0], sum(_proc_kb(pid, "smaps_rollup", "Pss:") for pid in tree))
            done.wait(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _pid, status, usage = os.wait4(proc.pid, 0)  # the child's own CPU time (ru_maxrss is not usable, see above)
    seconds = time.perf_counter() - start
    done.set()
    for t in (sampler, *readers):
        t.join()
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    out, err = b"".join(out_chunks).decode(), b"".join(err_chunks).decode()
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{out[-2000:]}\n{err[-3000:]}")
    return {"seconds": seconds, "output": out, "rss_mb": peak[0] / 1024, "pss_mb": pss[0] / 1024,
            "cpu": usage.ru_utime + usage.ru_stime, "processes": len(processes)}


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as children:
                    todo += [int(c) for c in children.read().split()]
        except (OSError, ValueError):
            continue
    return found


def _proc_kb(pid: int, file: str, field: str) -> int:
    """``field`` (in kB) of ``/proc/<pid>/<file>`` (``status``: ``VmHWM:``, the peak resident set so far;
    ``smaps_rollup``: ``Pss:``, the proportional set size now), or 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/{file}", encoding="ascii") as proc:
            for line in proc:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def storesync_config(work: Path, base_url: str) -> Path:
    config = work / "plugins.toml"
    config.write_text(f'[storesync]\ndatabase = "sqlite:///{work / "storesync.db"}"\n\n'
                      f'[connectors.shop]\ntype = "shopify"\nshop = "bench.myshopify.com"\n'
                      f'access_token = "${{SHOPIFY_TOKEN}}"\nbase_url = "{base_url}"\npacing = false\n'
                      'streams = ["customers", "products", "orders"]\n', encoding="utf-8")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changed", type=float, default=0.01, help="share of orders changed before the re-sync")
    parser.add_argument("--no-dlt", action="store_true")
    parser.add_argument("--no-minimal", action="store_true", help="skip the stdlib-transform baseline")
    args = parser.parse_args()

    from storesync.connectors.shopify.emulator import ShopifyEmulator

    began = time.perf_counter()
    with ShopifyEmulator(orders=args.orders, seed=args.seed, token=TOKEN, rate_limit=None) as shop, \
            tempfile.TemporaryDirectory(prefix="storesync-bench-shopify-") as tmp:
        work = Path(tmp)
        store = shop.store
        records = len(store.orders) + len(store.customers) + len(store.products)
        print(f"emulator: {len(store.orders):,} orders, {len(store.customers):,} customers, "
              f"{len(store.products):,} products ({len(store.variants):,} variants), built in "
              f"{time.perf_counter() - began:.1f}s", flush=True)
        results: dict[str, dict] = {}

        def timed(label: str, cmd: list[str]) -> dict:
            before = shop.requests.total
            result = run(cmd)
            result["requests"] = shop.requests.total - before
            results[label] = result
            print(f"  {label:<22} {result['seconds']:7.1f}s  {len(store.orders) / result['seconds']:8,.0f} orders/s  "
                  f"{records / result['seconds']:8,.0f} records/s  {result['requests']:6,} requests  "
                  f"peak RSS {result['rss_mb']:5.0f} MB  PSS (all processes) {result['pss_mb']:5.0f} MB  "
                  f"CPU {result['cpu']:6.1f}s", flush=True)
            return result

        config = storesync_config(work, shop.base_url)
        sync = [sys.executable, "-m", "storesync.cli", "--config", str(config), "sync", "--json", "--no-progress"]
        pipelines = [sys.executable, str(HERE / "shopify_pipelines.py")]
        timed("storesync", sync)
        report = {s["stream"]: s for s in json.loads(results["storesync"]["output"])[0]["streams"]}
        assert report["orders"]["inserted"] == len(store.orders) and report["orders"]["quarantined"] == 0, report
        timed("baseline (same)", [*pipelines, "baseline", shop.base_url, TOKEN, str(work / "baseline.db")])
        if not args.no_minimal:
            timed("baseline (minimal)", [*pipelines, "baseline", shop.base_url, TOKEN, str(work / "minimal.db"),
                                         "--transforms", "minimal"])
        if not args.no_dlt:
            timed("dlt (duckdb)", [*pipelines, "dlt", shop.base_url, TOKEN, str(work / "dlt")])

        changed = random.Random(args.seed).sample(list(store.orders.keys), max(1, int(len(store.orders) *
                                                                                      args.changed)))
        for key in changed:
            shop.touch("orders", key)
        again = timed("storesync incremental", sync)
        report = {s["stream"]: s for s in json.loads(again["output"])[0]["streams"]}

    ours = results["storesync"]["seconds"]
    print("\nratios (records/s, higher is better for storesync):")
    base = results["baseline (same)"]["seconds"]
    print(f"  storesync / hand-written baseline (same transforms): {base / ours:.2f}x   (target >= 0.8)")
    if "baseline (minimal)" in results:
        print(f"  storesync / hand-written baseline (minimal transforms): "
              f"{results['baseline (minimal)']['seconds'] / ours:.2f}x")
    if "dlt (duckdb)" in results:
        print(f"  storesync / dlt: {results['dlt (duckdb)']['seconds'] / ours:.2f}x   (target >= 5)")
    ours_mem = results["storesync"]
    print(f"  peak memory storesync: {ours_mem['pss_mb']:.0f} MB PSS over {ours_mem['processes']} processes "
          f"(main process RSS {ours_mem['rss_mb']:.0f} MB)   (target <= 300)")
    print(f"  CPU seconds per 1,000 records: storesync {1000 * results['storesync']['cpu'] / records:.2f}, "
          f"baseline (same) {1000 * results['baseline (same)']['cpu'] / records:.2f}   (load average at the end: "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"incremental after {len(changed):,} orders changed ({100 * args.changed:g}%): "
          f"{again['requests']} requests, {report['orders']['read']:,} orders read, "
          f"{report['orders']['updated']:,} updated, {report['orders']['inserted']} inserted, "
          f"{again['seconds']:.1f}s (full sync: {results['storesync']['requests']:,} requests)")


if __name__ == "__main__":
    main()
