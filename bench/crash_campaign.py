"""Crash campaign: SIGKILL every job of ``campaign_jobs.JOBS`` tagged ``crash`` at seeded random moments of its work,
rerun it, and compare with an uninterrupted run: the same store, no sale order created twice in the ERP emulator,
no SMS sent twice by the SMS emulator.

For each job a reference run (fresh emulator, fresh store) gives the outcome and how long the work takes: from the
emulator's first request to its last (for the files job, the whole command). A trial then starts a fresh world,
prepares it, and runs the command again and again, each run killed with SIGKILL at a moment drawn uniformly from
the work still left (seeded), until the job's quota of kills is reached or a run finishes first; then it runs
the command to the end (again while it exits non-zero, up to ``job.max_runs``) and compares. A kind of job is
added by one entry in ``JOBS``; nothing here changes.

    .venv/bin/python bench/crash_campaign.py                         # CI size: 4 kills per job, 24 in all
    .venv/bin/python bench/crash_campaign.py --kills 20 --scale 5    # full size
"""

from __future__ import annotations

import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign_jobs import (JOBS, Comparison, Job, Live, campaign_arguments, compare, fast_http,  # noqa: E402
                           popen_cli, run_cli, write_project)
from fault_campaign import print_table  # noqa: E402

from storesync.core.emulation import Faults  # noqa: E402

__all__ = ["CrashResult", "crash_job", "main"]


@dataclass
class CrashResult:
    job: str
    trials: int = 0
    kills: int = 0
    finished_first: int = 0
    final_codes: list[list[int]] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def total(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.comparisons)

    @property
    def ok(self) -> bool:
        return not self.failures and all(c.clean for c in self.comparisons) and self.kills > 0


def _requests(emu: Any) -> int:
    log = getattr(emu, "requests", None)
    return int(log) if log is not None else 0


def _wait_for_work(proc: Any, emu: Any, before: int, http: bool, timeout: float = 60) -> float:
    """When the job's work starts: its first request to the emulator (or at once for a job without one)."""
    end = time.monotonic() + timeout
    while http and _requests(emu) <= before and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.002)
    return time.monotonic()


def _world(job: Job, root: Path, scale: int) -> tuple[Any, Live]:
    emu = job.emulator(Faults(seed=0), scale)
    emu.__enter__()
    live = Live(root, f"sqlite:///{root / 'store.db'}", emu, scale, fast_http())
    write_project(live, job)
    for args in job.prepare:
        proc = run_cli(root, *args)
        if proc.returncode not in (0, 1):
            emu.__exit__(None, None, None)
            raise RuntimeError(f"{job.name}: preparing with {args} failed:\n{proc.stderr[-2000:]}")
    return emu, live


def _reference(job: Job, root: Path, scale: int) -> tuple[list[Any], list[Any], float, float]:
    """(outcome, effects, seconds from start to first request, seconds of work) of an uninterrupted run."""
    emu, live = _world(job, root, scale)
    try:
        started = time.monotonic()
        proc = popen_cli(root, *job.command)
        work_from = _wait_for_work(proc, emu, _requests(emu), job.http)
        ended, seen = time.monotonic(), _requests(emu)
        while proc.poll() is None:  # the work ends with the last request (then the process only shuts down)
            time.sleep(0.002)
            if not job.http or _requests(emu) != seen:
                ended, seen = time.monotonic(), _requests(emu)
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"{job.name}: the reference run failed ({proc.returncode}):\n{err.decode()[-2000:]}")
        return job.observe(live), job.effects(live), work_from - started, ended - work_from
    finally:
        emu.__exit__(None, None, None)


def crash_job(job: Job, workdir: Path, *, kills: int, scale: int, seed: int, max_trials: int = 4) -> CrashResult:
    """Kill the job ``kills`` times (fresh worlds as needed, at most ``max_trials``); compare each world at the end.

    A world's runs are killed one after another until one finishes before its moment (the work is done: later
    kills would only hit runs with nothing left to do) or the quota is reached; then it is run to the end.
    """
    started = time.perf_counter()
    slug = job.name.replace(" ", "-")
    ref_outcome, ref_effects, startup, work = _reference(job, workdir / f"{slug}-reference", scale)
    rng = random.Random(f"{seed}-{job.name}")
    result = CrashResult(job.name)
    while result.kills < kills and result.trials < max_trials:
        emu, live = _world(job, workdir / f"{slug}-trial{result.trials}", scale)
        try:
            _kill_runs(job, emu, live, rng, work, startup, result, kills)
            _finish(job, live, result, ref_outcome, ref_effects)
        finally:
            emu.__exit__(None, None, None)
        result.trials += 1
    result.seconds = time.perf_counter() - started
    return result


def _kill_runs(job: Job, emu: Any, live: Live, rng: random.Random, work: float, startup: float,
               result: CrashResult, quota: int) -> None:
    """Start the job and SIGKILL it at a random moment of its work, again and again (see crash_job)."""
    done = 0.0  # work the killed runs did: a rerun resumes, so less is left for the next one
    while result.kills < quota:
        before = _requests(emu)
        proc = popen_cli(live.root, *job.command)
        began = _wait_for_work(proc, emu, before, job.http)
        at = began + rng.uniform(0.0, max(work - done, work * 0.2) * 0.9)
        while proc.poll() is None and time.monotonic() < at:
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        if proc.returncode != -signal.SIGKILL:
            result.finished_first += 1
            return
        result.kills += 1
        done += max(0.0, at - began - (0.0 if job.http else startup))


def _finish(job: Job, live: Live, result: CrashResult, ref_outcome: list[Any], ref_effects: list[Any]) -> None:
    """Run the job to the end (again while it exits non-zero, up to ``job.max_runs``) and compare."""
    codes, final = [], None
    for _ in range(job.max_runs):
        final = run_cli(live.root, *job.command)
        codes.append(final.returncode)
        if "Traceback" in final.stderr:
            result.failures.append(f"trial {result.trials}: traceback\n{final.stderr[-1500:]}")
        if final.returncode == 0:
            break
    if codes[-1] != 0 and final is not None:
        result.failures.append(f"trial {result.trials}: did not converge, exit codes {codes}\n{final.stderr[-1500:]}")
    result.final_codes.append(codes)
    result.comparisons.append(compare(ref_outcome, job.observe(live), ref_effects, job.effects(live)))


def main(argv: list[str] | None = None) -> int:
    args, names = campaign_arguments(__doc__ or "", "crash", argv, lambda parser: parser.add_argument(
        "--kills", type=int, default=4, help="SIGKILLs per job (20+ in all at the default)"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="crash-campaign-") as tmp:
        results = [crash_job(JOBS[n], Path(tmp), kills=args.kills, scale=args.scale, seed=args.seed,
                             max_trials=max(4, args.kills)) for n in names]
    print(f"crash campaign: {args.kills} SIGKILLs per job, scale {args.scale}, seed {args.seed}")
    print_table(["job", "trials", "SIGKILLs", "finished first", "records", "lost", "duplicated", "changed",
                 "final exit codes", "time"],
                [[r.job, str(r.trials), str(r.kills), str(r.finished_first),
                  str(r.comparisons[0].reference + r.comparisons[0].effects if r.comparisons else 0),
                  str(r.total("lost") + r.total("effects_lost")),
                  str(r.total("duplicated") + r.total("effects_duplicated")), str(r.total("changed")),
                  " ".join(",".join(map(str, c)) for c in r.final_codes), f"{r.seconds:.1f}s"] for r in results])
    print(f"SIGKILLs in all: {sum(r.kills for r in results)}; {time.perf_counter() - started:.1f}s")
    for r in results:
        for failure in r.failures:
            print(f"{r.job}: {failure}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
