"""Helpers shared by the end-to-end tests: project layout, JSON reports, direct SQL on a store."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MAPPING = REPO / "mappings" / "files.toml"

if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

import datagen  # noqa: E402  (bench/datagen.py)

shopify_order = datagen.shopify_order
write_jsonl = datagen.write_jsonl

CUSTOMER_HEADER = "id,email,phone,first_name,last_name,member_id,birth_date,language,updated_at"


def unique_id(prefix: str = "till") -> str:
    """A connector id unique to one test, so no two tests ever share a lock file or run log entry."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def write_project(root: Path, database: str, connector_id: str, files: dict[str, str], *,
                  directory: str = "exports", mapping: str | None = None, batch_size: int = 500,
                  checkpoint_every: int = 2000) -> Path:
    """Write ``root/plugins.toml`` for one ``files`` connector; ``files`` maps stream -> glob pattern."""
    root.mkdir(parents=True, exist_ok=True)
    (root / directory).mkdir(exist_ok=True)
    lines = ["[storesync]", f"database = {json.dumps(database)}", f"batch_size = {batch_size}", "",
             f"[connectors.{connector_id}]", 'type = "files"', f"directory = {json.dumps(directory)}",
             f"checkpoint_every = {checkpoint_every}"]
    if mapping:
        lines.append(f"mapping = {json.dumps(mapping)}")
    for stream, pattern in files.items():
        lines += ["", f"[connectors.{connector_id}.files.{stream}]", f"pattern = {json.dumps(pattern)}"]
    path = root / "plugins.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path



def write_store_project(root: Path, database: str, connector_ids: list[str], tables: str = "") -> Path:
    """Write ``root/plugins.toml`` for a store whose records a test writes itself: one ``files`` connector per id,
    reading nothing, then ``tables`` (``[inventory]`` settings, say) as given."""
    lines = ["[storesync]", f"database = {json.dumps(database)}"]
    for cid in connector_ids:
        lines += ["", f"[connectors.{cid}]", 'type = "files"', 'directory = "."', f"[connectors.{cid}.files]",
                  'x = "*.none"']
    path = root / "plugins.toml"
    path.write_text("\n".join(lines) + "\n" + tables, encoding="utf-8")
    return path

def customer_row(i: int, *, email: str | None = None, deleted: str | None = None) -> str:
    email = f"customer{i}@example.com" if email is None else email
    row = f"C{i:05d},{email},,First{i},Last{i},M-{i},1990-01-02,en,2024-05-01 10:00:00"
    return row if deleted is None else f"{row},{deleted}"


def write_customers(path: Path, start: int, n: int, *, header: bool = True, append: bool = False) -> None:
    with open(path, "a" if append else "w", encoding="utf-8", newline="") as fh:
        if header:
            fh.write(CUSTOMER_HEADER + "\n")
        for i in range(start, start + n):
            fh.write(customer_row(i) + "\n")


def append_orders(path: Path, start: int, n: int) -> None:
    with open(path, "ab") as fh:
        for i in range(start, start + n):
            fh.write(json.dumps(shopify_order(i)).encode() + b"\n")


def parse_json(proc: Any) -> Any:
    """stdout of a ``--json`` command, with a useful message when it is not JSON."""
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON ({exc}); rc={proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
                             f"stderr:\n{proc.stderr[-3000:]}") from None


def explain(proc: Any) -> str:
    return f"rc={proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"


def sync(cli: Any, cwd: Path, *args: str, expect: int | None = 0, timeout: float = 300) -> list[dict[str, Any]]:
    """Run ``storesync sync --json ARGS``; check the exit code; return the reports."""
    proc = cli("sync", "--json", "--no-progress", *args, cwd=cwd, timeout=timeout)
    if expect is not None:
        assert proc.returncode == expect, explain(proc)
    return parse_json(proc)


def stream_report(reports: list[dict[str, Any]], stream: str) -> dict[str, Any]:
    (report,) = reports
    found = [s for s in report["streams"] if s["stream"] == stream]
    assert len(found) == 1, report
    return found[0]


def sa_url(url: str) -> str:
    """A store URL as SQLAlchemy wants it (psycopg 3 for PostgreSQL)."""
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    return url


def engine(url: str) -> sa.Engine:
    return sa.create_engine(sa_url(url))


def scalar(url: str, sql: str, **params: Any) -> Any:
    eng = engine(url)
    try:
        with eng.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        eng.dispose()


def rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    eng = engine(url)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params).all()]
    finally:
        eng.dispose()
