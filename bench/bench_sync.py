"""End-to-end `files` sync of Shopify-shaped JSON Lines orders, against a hand-written minimal pipeline.

    python bench/bench_sync.py [--n 1000000] [--small 100000] [--db sqlite|postgresql|both] [--pg-url URL]

Each pipeline runs in its own process (peak RSS is that process's own ``ru_maxrss``), on the same file, in
the same run, so the ratios hold on a noisy shared machine:

* storesync: the real ``storesync sync`` command (files connector, default mapping, validation, store);
* baseline: orjson + a hand-written mapping function for the same fields + pydantic validation +
  ``sqlite3.executemany`` upserts (SQLite) or COPY into staging tables + INSERT ... ON CONFLICT (PostgreSQL);
  see baseline_pipeline.py for its two flavours (same transform functions; stdlib one-liners).

It also times a re-sync with nothing changed, and the peak RSS at ``--small`` and ``--n`` orders.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BATCH = 2000


def ensure_data(n: int, directory: Path) -> Path:
    from datagen import write_jsonl

    path = directory / f"orders-{n}" / "orders.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {n:,} orders into {path} ...", file=sys.stderr, flush=True)
        write_jsonl(path, n)
    return path


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``cmd``; return its wall time and its own peak RSS in MB."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{out[-2000:]}\n{err[-2000:]}")
    return {"seconds": seconds, "rss_mb": usage.ru_maxrss / 1024, "output": out}


def storesync_run(data: Path, db_url: str, work: Path) -> tuple[dict[str, float], dict[str, float]]:
    config = work / "plugins.toml"
    config.write_text(f'[storesync]\ndatabase = "{db_url}"\nbatch_size = {BATCH}\n'
                      f'[connectors.bulk]\ntype = "files"\ndirectory = "{data.parent}"\n'
                      '[connectors.bulk.files.orders]\npattern = "orders.jsonl"\n')
    cmd = [sys.executable, "-m", "storesync.cli", "--config", str(config), "sync", "--json", "--no-progress"]
    first = measure(cmd)
    counts = json.loads(first["output"])[0]["streams"][0]
    assert counts["inserted"] > 0 and counts["quarantined"] == 0, counts
    again = measure(cmd)
    return first, again


def baseline_run(data: Path, db_url: str, transforms: str) -> dict[str, float]:
    return measure([sys.executable, str(Path(__file__)), "--baseline", str(data), "--pg-url", db_url,
                    "--transforms", transforms])


def reset_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench CASCADE")
        conn.execute("CREATE SCHEMA bench")


def compare(n: int, db: str, pg_url: str, data_dir: Path) -> dict[str, float]:
    data = ensure_data(n, data_dir)
    with tempfile.TemporaryDirectory(prefix="storesync-bench-") as tmp:
        work = Path(tmp)
        if db == "sqlite":
            ours_url, base_url = f"sqlite:///{work / 'store.db'}", f"sqlite:///{work / 'baseline.db'}"
        else:
            reset_pg(pg_url)
            ours_url = base_url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3Dbench"
        base = baseline_run(data, base_url, "same")
        if db == "postgresql":
            reset_pg(pg_url)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{work / 'baseline.db'}{suffix}").unlink(missing_ok=True)
        minimal = baseline_run(data, base_url, "minimal")
        if db == "postgresql":
            reset_pg(pg_url)
        ours, again = storesync_run(data, ours_url, work)
    return {"n": n, "db": db, "ours_rps": n / ours["seconds"], "base_rps": n / base["seconds"],
            "ratio": base["seconds"] / ours["seconds"], "ours_rss": ours["rss_mb"], "base_rss": base["rss_mb"],
            "min_rps": n / minimal["seconds"], "min_ratio": minimal["seconds"] / ours["seconds"],
            "resync_s": again["seconds"], "full_s": ours["seconds"], "resync_pct": 100 * again["seconds"] / ours["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="size for the RSS growth comparison")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("STORESYNC_TEST_PG_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--baseline", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--transforms", choices=["same", "minimal"], default="same", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        from baseline_pipeline import run

        return run(args.baseline, args.pg_url, BATCH, args.transforms)
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    rows = []
    for db in dbs:
        for n in sorted({args.small, args.n}):
            rows.append(compare(n, db, args.pg_url, args.data))
            r = rows[-1]
            print(f"{db:10} {n:>9,} orders: storesync {r['ours_rps']:>8,.0f}/s  baseline {r['base_rps']:>8,.0f}/s  "
                  f"ratio {r['ratio']:.2f}  (minimal-transform baseline {r['min_rps']:,.0f}/s, ratio "
                  f"{r['min_ratio']:.2f})  peak RSS {r['ours_rss']:.0f} MB (baseline {r['base_rss']:.0f} MB)  "
                  f"re-sync {r['resync_s']:.2f}s = {r['resync_pct']:.1f}% of full", flush=True)
    for db in dbs:
        sized = [r for r in rows if r["db"] == db]
        if len(sized) == 2:
            growth = 100 * (sized[1]["ours_rss"] / sized[0]["ours_rss"] - 1)
            print(f"{db}: peak RSS grows {growth:+.1f}% from {sized[0]['n']:,} to {sized[1]['n']:,} orders")


if __name__ == "__main__":
    main()
