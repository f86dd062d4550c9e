"""Fault campaign: every connector's job against its emulator with injected faults, compared with a clean run.

For each job of ``campaign_jobs.JOBS`` tagged ``faults``: one run against a fault-free emulator (the reference),
one against the same seeded data with 10% 5xx, 5% truncated bodies, bursts of 429 and 5% slow replies, then
the two outcomes compared (store rows by binding and hash; sale orders and SMS in the emulators). Retries are
counted from the structured log (``--log-format json -v``: one record per retry) and checked against the
per-request limit and the per-run budget. Last, each job runs against an emulator that always fails: it must
exit 3 naming the connector and the last error, with no traceback.

    .venv/bin/python bench/fault_campaign.py                 # CI size (about a minute)
    .venv/bin/python bench/fault_campaign.py --scale 10      # full size
    .venv/bin/python bench/fault_campaign.py --job "shopify sync" --seed 3

Exit status 0 when every job lost nothing, duplicated nothing and stayed within its retry budget.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign_jobs import (JOBS, Comparison, Job, Live, campaign_arguments, compare, fast_http,  # noqa: E402
                           run_cli, write_project)

from storesync.core.emulation import Faults  # noqa: E402

__all__ = ["FaultRun", "campaign_faults", "exhaust", "fault_run", "main"]

RATES = {"error_rate": 0.10, "truncate_rate": 0.05, "slow_rate": 0.05, "slow_seconds": 0.2, "burst_rate": 0.03,
         "burst_length": 3}


@dataclass
class FaultRun:
    """What one (possibly repeated) run of a job did."""

    exit_codes: list[int]
    outcome: list[Any]
    effects: list[Any]
    injected: Counter[str]
    requests: int
    retries: int
    max_attempt: int
    seconds: float
    log_lines: int
    bad_log_lines: list[str] = field(default_factory=list)
    stderr: str = ""


def campaign_faults(seed: int) -> Faults:
    return Faults(seed=seed, **RATES)


def retry_records(stderr: str) -> tuple[list[dict[str, Any]], list[str], int]:
    """(retry log records, lines that are not JSON objects, all lines) of a ``--log-format json`` stderr."""
    retries, bad, total = [], [], 0
    for line in stderr.splitlines():
        if not line.strip():
            continue
        total += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad.append(line)
            continue
        if not isinstance(record, dict):
            bad.append(line)
        elif "attempt" in record and record.get("logger") == "storesync.http":
            retries.append(record)
    return retries, bad, total


def fault_run(job: Job, faults: Faults, scale: int, root: Path, store_url: str,
              http: dict[str, Any] | None = None) -> FaultRun:
    """Prepare, then run the job's command (again while it fails, up to ``job.max_runs``); observe the outcome."""
    started = time.perf_counter()
    with job.emulator(faults, scale) as emu:
        live = Live(root, store_url, emu, scale, http or fast_http())
        write_project(live, job)
        rates = ("error_rate", "truncate_rate", "slow_rate", "burst_rate")
        saved = {name: getattr(faults, name) for name in rates}
        for name in rates:  # the preparation is fault-free: the faults are for the command under test
            setattr(faults, name, 0.0)
        for args in job.prepare:
            proc = run_cli(root, *args)
            if proc.returncode not in (0, 1):
                raise RuntimeError(f"{job.name}: preparing with {args} failed:\n{proc.stderr[-2000:]}")
        for name, value in saved.items():
            setattr(faults, name, value)
        codes, stderr, retries, bad, lines = [], "", [], [], 0
        for _ in range(job.max_runs):
            proc = run_cli(root, "--log-format", "json", "-v", *job.command)
            codes.append(proc.returncode)
            stderr = proc.stderr
            found, not_json, total = retry_records(proc.stderr)
            retries += found
            bad += not_json
            lines += total
            if proc.returncode == 0:
                break
        outcome, effects = job.observe(live), job.effects(live)
        requests = getattr(emu, "requests", None)
    return FaultRun(codes, outcome, effects, Counter(faults.injected), int(requests) if requests is not None else 0,
                    len(retries), max((r["attempt"] for r in retries), default=0),
                    time.perf_counter() - started, lines, bad, stderr)


@dataclass
class JobResult:
    job: str
    clean: FaultRun
    faulty: FaultRun
    comparison: Comparison
    budget: int
    max_retries: int

    @property
    def ok(self) -> bool:
        return (self.comparison.clean and self.faulty.exit_codes[-1] == 0 and self.clean.exit_codes == [0]
                and self.faulty.retries <= self.budget * len(self.faulty.exit_codes)
                and self.faulty.max_attempt <= self.max_retries and not self.faulty.bad_log_lines)


def run_job(job: Job, scale: int, seed: int, workdir: Path) -> JobResult:
    """The reference run and the faulty run of one job (each with its own SQLite store), compared."""
    http = fast_http()
    runs = {}
    for kind, faults in (("clean", Faults(seed=seed)), ("faulty", campaign_faults(seed))):
        root = workdir / f"{job.name.replace(' ', '-')}-{kind}"
        runs[kind] = fault_run(job, faults, scale, root, f"sqlite:///{root / 'store.db'}", http)
    cmp = compare(runs["clean"].outcome, runs["faulty"].outcome, runs["clean"].effects, runs["faulty"].effects)
    return JobResult(job.name, runs["clean"], runs["faulty"], cmp, http["retry_budget"], http["max_retries"])


@dataclass
class Exhausted:
    job: str
    exit_code: int
    message: str
    names_connector: bool
    names_error: bool
    traceback: bool

    @property
    def ok(self) -> bool:
        return self.exit_code == 3 and self.names_connector and self.names_error and not self.traceback


def exhaust(job: Job, workdir: Path, seed: int = 0) -> Exhausted:
    """Run the job against an emulator that answers every request with a 5xx, with two retries allowed."""
    root = workdir / f"{job.name.replace(' ', '-')}-exhausted"
    with job.emulator(Faults(seed=seed, error_rate=1.0), 1) as emu:
        live = Live(root, f"sqlite:///{root / 'store.db'}", emu, 1, fast_http(max_retries=2))
        write_project(live, job)
        emu.faults.error_rate = 0.0  # the preparation is fault-free, as in the other runs
        for args in job.prepare:
            run_cli(root, *args)
        emu.faults.error_rate = 1.0
        proc = run_cli(root, *job.command)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    text = "\n".join(errors)
    return Exhausted(job.name, proc.returncode, text[-400:], job.connector in text,
                     any(f"HTTP {s}" in text for s in (500, 502, 503)), "Traceback" in proc.stderr)


def _row(r: JobResult) -> list[str]:
    f, c = r.faulty, r.comparison
    inj = f.injected
    return [r.job, str(f.requests), str(inj["5xx"]), str(inj["truncated"]), str(inj["429"]), str(inj["slow"]),
            f"{f.retries} (max {f.max_attempt}/{r.max_retries} per request, budget {r.budget}/run)",
            ",".join(map(str, f.exit_codes)), str(c.reference + c.effects), str(c.lost + c.effects_lost),
            str(c.duplicated + c.effects_duplicated), str(c.changed), f"{f.seconds:.1f}s"]


HEADER = ["job", "requests", "5xx", "truncated", "429", "slow", "retries", "exit codes", "records", "lost",
          "duplicated", "changed", "time"]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)))


def main(argv: list[str] | None = None) -> int:
    args, names = campaign_arguments(__doc__ or "", "faults", argv, lambda parser: None)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fault-campaign-") as tmp:
        results = [run_job(JOBS[n], args.scale, args.seed, Path(tmp)) for n in names]
        exhausted = [exhaust(JOBS[n], Path(tmp)) for n in names]
    print(f"fault campaign: scale {args.scale}, seed {args.seed}, rates {RATES}")
    print_table(HEADER, [_row(r) for r in results])
    total = Counter()
    for r in results:
        total.update(r.faulty.injected)
    print(f"total faults injected: {sum(total.values())} ({dict(total)}); lost "
          f"{sum(r.comparison.lost + r.comparison.effects_lost for r in results)}, duplicated "
          f"{sum(r.comparison.duplicated + r.comparison.effects_duplicated for r in results)}")
    print("\nfaults outlasting the retries (every request 5xx, max_retries 2):")
    print_table(["job", "exit", "names connector", "names last error", "traceback", "message"],
                [[e.job, str(e.exit_code), str(e.names_connector), str(e.names_error), str(e.traceback),
                  e.message.replace("\n", " | ")[:160]] for e in exhausted])
    print(f"\n{time.perf_counter() - started:.1f}s in all")
    return 0 if all(r.ok for r in results) and all(e.ok for e in exhausted) else 1


if __name__ == "__main__":
    sys.exit(main())
