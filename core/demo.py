"""``storesync demo``: the whole job on an emulated merchant, with a report a merchant can read.

The steps are the real pipeline, in process, on the demo's own ``plugins.toml`` (``core/demo_merchant.py``):

1. sync every connector (web orders are forwarded into the ERP on the way);
2. resolve identities (one person per real customer across the systems);
3. reconcile inventory with push-back (the teapot sold three times over: one web order is denied and its
   customer told; the mooncake pre-orders are parked; Shopify's stale levels are corrected);
4. the warehouse receives mooncakes: sync the ERP, reconcile again (the first pre-orders get their sets);
5. send the texts (``notify``);
6. report, and write the HTML page.

Each step's outcome is collected into a ``DemoReport``; ``render`` prints it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .demo_merchant import OVERSELL_SKU, PREORDER_SKU, demo_merchant

__all__ = ["DemoReport", "run_demo"]


@dataclass
class DemoReport:
    directory: Path
    size: str
    steps: list[tuple[str, float]] = field(default_factory=list)  # (what, seconds)
    synced: dict[str, dict[str, int]] = field(default_factory=dict)  # connector -> stream -> records stored
    identities: dict[str, Any] = field(default_factory=dict)
    oversells: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[Any] = field(default_factory=list)
    pushed: int = 0
    forwarded: int = 0
    texts: list[tuple[str, str]] = field(default_factory=list)
    html: Path | None = None
    seconds: float = 0.0


def run_demo(directory: Path, size: str = "small", *, keep_running: bool = False,
             say: Callable[[str], None] = print, wait: Callable[[], None] | None = None) -> DemoReport:
    """Run the demo into ``directory`` (its plugins.toml and store.db); ``wait`` keeps the emulators up."""
    from .inventory_run import run_inventory
    from .notifications import run_notify
    from .operations import Session

    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "store.db"
    for stale in (database, directory / "store.db-wal", directory / "store.db-shm"):
        stale.unlink(missing_ok=True)
    report = DemoReport(directory, size)

    def step(what: str, fn: Callable[[], Any]) -> Any:
        say(f"• {what} ...")
        t0 = time.perf_counter()
        out = fn()
        report.steps.append((what, time.perf_counter() - t0))
        return out

    with demo_merchant(size) as merchant:
        config = directory / "plugins.toml"
        # relative to the plugins.toml, as storesync reads it: right whether ``directory`` is relative or not
        config.write_text(merchant.plugins_toml(f"sqlite:///{database.name}"), encoding="utf-8")
        session = Session.open(str(config))
        merchant.oversell()
        runs = step("syncing the web shop, the tills and the ERP (web orders forwarded to the ERP)",
                    lambda: session.sync(["shop", "tills", "erp"], streams=None, full_refresh=False,
                                         dry_run=False, remap=False, progress=False))
        for run in runs:
            report.synced[run.connector_id] = {s.stream: s.inserted + s.updated for s in run.streams}
        report.identities = step("resolving identities across the systems", lambda: _identities(session))
        first = step("reconciling inventory and pushing stock to the web shop",
                     lambda: run_inventory(session, push=True))
        step("the warehouse receives 2 mooncake sets; syncing the ERP", lambda: (
            merchant.receive_preorder_stock(2),
            session.sync(["erp"], streams=None, full_refresh=False, dry_run=False, remap=False, progress=False)))
        second = step("reconciling again (pre-orders first come, first served)",
                      lambda: run_inventory(session, push=True))
        step("sending the texts", lambda: run_notify(session.host, session.store))
        report.decisions = [*first.decisions, *second.decisions]
        report.oversells = [x for x in first.conflicts if x["kind"] == "oversell"]
        report.pushed = sum(len(r.push.applied) for r in (first, second) if r.push is not None)
        report.forwarded = _forwarded(session)
        report.texts = merchant.texts()
        report.html = step("writing the HTML report", lambda: _html(session, directory / "report.html"))
        session.store.close()
        report.seconds = time.perf_counter() - started
        if keep_running and wait is not None:
            wait()
    return report


def _identities(session: Any) -> dict[str, Any]:
    """Resolve persons if the identity commands are installed; the summary and one merged person explained."""
    from .identity_demo import demo_summary

    return demo_summary(session)


def _forwarded(session: Any) -> int:
    from .forwarded import ForwardedOrderRow

    t = ForwardedOrderRow.__table__  # type: ignore[attr-defined]
    with session.store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t).where(
            t.c.state.in_(("created", "found")))).scalar_one()


def _html(session: Any, path: Path) -> Path | None:
    try:
        from .report_html import write_report  # type: ignore[import-not-found]
    except ImportError:
        return None
    write_report(session, path)
    return path


def render(report: DemoReport, echo: Callable[[str], None] = print) -> None:
    """The merchant's report: what happened, with examples, and what to try next."""
    echo("")
    echo(f"Harbour Goods, emulated on 127.0.0.1: the whole job in {report.seconds:.1f} s")
    echo("")
    echo("1. Synced")
    for cid, streams in report.synced.items():
        echo(f"   {cid:6} " + ", ".join(f"{n} {s}" for s, n in streams.items() if n))
    echo(f"   {report.forwarded} web order(s) written into the ERP")
    if report.identities:
        ids = report.identities
        echo("")
        echo(f"2. Customers: {ids['records']} records across the systems are {ids['persons']} people "
             f"({ids['merged']} of them in more than one system; {ids['possible']} possible links held back for "
             "review, never used to route a text)")
        if ids.get("example"):
            echo("   For example:")
            for line in ids["example"].splitlines():
                echo(f"     {line}")
    echo("")
    echo("3. Stock")
    for x in report.oversells:
        echo(f"   Oversold: {x['sku']} at {x['location']}: {x['detail']}")
        for o in x["orders"]:
            echo(f"     {o['placed_at'][11:19]} order {o['order_id']} ({o['connector_id']}): {o['verdict']}")
        echo(f"     -> {x['resolution']}")
    for d in report.decisions:
        if d.line.sku == PREORDER_SKU or d.state != "allocated":
            echo(f"   Order {d.line.order_id} ({d.line.sku}): {d.detail}")
    echo(f"   {report.pushed} stock level(s) corrected in the web shop (compare-and-set)")
    echo("")
    echo(f"4. Texts sent ({len(report.texts)})")
    for to, body in report.texts:
        echo(f"   to {to}: {body}")
    if report.html:
        echo("")
        echo(f"Report page: {report.html}")
    cfg = report.directory / "plugins.toml"
    echo("")
    echo("Try next (against the store the demo left):")
    echo(f"   storesync --config {cfg} inventory show {OVERSELL_SKU}")
    echo(f"   storesync --config {cfg} inventory conflicts")
    echo(f"   storesync --config {cfg} messages list")
    if report.identities.get("example_id"):
        echo(f"   storesync --config {cfg} identities explain {report.identities['example_id']}")
    echo(f"   storesync --config {cfg} status")
