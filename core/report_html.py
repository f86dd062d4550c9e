"""``storesync report --html FILE``: one self-contained page about the store, to look at in any browser offline.

Sections: records per connector and run (a stacked bar chart and the table), stock per SKU across locations and
channels with oversells marked, pre-order queues in the order they are served, and merged persons with their
source records (when identity resolution has run). Charts are SVG drawn by matplotlib and inlined, so the page
needs no network and no script. Every figure in a table carries ``data-*`` attributes naming what it is, so a
test (or a script) can read the numbers back.
"""

from __future__ import annotations

import html
import io
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .inventory import reconcile
from .inventory_config import inventory_settings
from .inventory_ledger import AllocationRow, ConflictRow
from .inventory_store import load_demand, load_reports
from .tables import RunRow

__all__ = ["report_data", "write_report"]

MAX_SKUS = 200  # the stock table and chart show the SKUs with the most activity first, up to this many


def report_data(session: Any) -> dict[str, Any]:
    """Everything the page shows, as plain data (also what ``--json`` prints)."""
    store = session.store
    runs, allocations, conflicts = RunRow.__table__, AllocationRow.__table__, ConflictRow.__table__  # type: ignore
    with store.engine.connect() as conn:
        run_rows = [dict(r) for r in conn.execute(sa.select(runs).order_by(runs.c.id)).mappings()]
        queue = [dict(r) for r in conn.execute(sa.select(allocations).where(
            allocations.c.origin == "preorder").order_by(allocations.c.sku, allocations.c.placed_at)).mappings()]
        open_conflicts = {(r.sku, r.location) for r in conn.execute(sa.select(
            conflicts.c.sku, conflicts.c.location).where(conflicts.c.kind == "oversell"))}
        persons = _persons(conn)
    data: dict[str, Any] = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "runs": [],
                            "stock": [], "channels": [], "preorders": queue, "persons": persons}
    for r in run_rows:
        records = sum(int(s.get("inserted", 0)) + int(s.get("updated", 0)) for s in (r["counts"] or {}).values()
                      if isinstance(s, dict))
        data["runs"].append({"run": r["id"], "connector_id": r["connector_id"], "status": r["status"],
                             "started_at": r["started_at"].isoformat(timespec="seconds"), "records": records})
    settings = inventory_settings(session.config)
    if settings.locations:
        recon = reconcile(settings, load_reports(store), load_demand(store))
        busy: dict[str, int] = defaultdict(int)
        for (sku, _loc), pos in recon.positions.items():
            busy[sku] += pos.committed + abs(pos.on_hand)
        keep = set(sorted(busy, key=lambda s: (-busy[s], s))[:MAX_SKUS])
        for (sku, loc), pos in sorted(recon.positions.items()):
            if sku in keep:
                data["stock"].append({"sku": sku, "location": loc, "on_hand": pos.on_hand,
                                      "committed": pos.committed, "available": pos.available,
                                      "oversold": pos.shortfall > 0 or (sku, loc) in open_conflicts})
        data["channels"] = [{"channel": ch, "sku": sku, "available": n}
                            for (ch, sku), n in sorted(recon.available_to_sell.items()) if sku in keep]
    return data


def write_report(session: Any, path: Path) -> Path:
    """Write the page to ``path``; returns it."""
    data = report_data(session)
    path.write_text(_page(data), encoding="utf-8")
    return path


def _persons(conn: Any) -> list[dict[str, Any]]:
    """Merged persons and their source records, if identity resolution has stored any."""
    try:
        from .identity_demo import merged_persons

        return merged_persons(conn)
    except (ImportError, sa.exc.SQLAlchemyError):  # identity resolution not installed, or never run
        return []


# -- the page ------------------------------------------------------------------------------------------------

def _page(data: dict[str, Any]) -> str:
    parts = [f"<p class=meta>Generated {_e(data['generated_at'])}</p>", "<h2>Records per connector and run</h2>",
             _runs_chart(data["runs"]),
             _table(["run", "connector", "status", "started", "records"],
                    [[(r["run"], "run"), (r["connector_id"], "connector"), (r["status"], "status"),
                      (r["started_at"], "started"), (r["records"], "records")] for r in data["runs"]], "runs")]
    parts += ["<h2>Stock per SKU and location</h2>",
              "<p>On hand is the authority's count; committed, the open orders it has not counted yet; "
              "available, what can still be sold. <span class=oversold>Red</span>: oversold.</p>",
              _stock_chart(data["stock"]),
              _table(["sku", "location", "on hand", "committed", "available"],
                     [[(s["sku"], "sku"), (s["location"], "location"), (s["on_hand"], "on_hand"),
                       (s["committed"], "committed"), (s["available"], "available")] for s in data["stock"]],
                     "stock", marked=[s["oversold"] for s in data["stock"]]),
              "<h3>What each channel can sell</h3>",
              _table(["channel", "sku", "available"],
                     [[(c["channel"], "channel"), (c["sku"], "sku"), (c["available"], "available")]
                      for c in data["channels"]], "channels")]
    parts += ["<h2>Pre-order queues</h2>", "<p>Served first come, first served as stock arrives.</p>",
              _table(["sku", "order", "channel", "placed", "quantity", "state"],
                     [[(p["sku"], "sku"), (p["order_id"], "order"), (p["connector_id"], "channel"),
                       (p["placed_at"].isoformat(timespec="minutes") if p["placed_at"] else "", "placed"),
                       (p["quantity"], "quantity"), (p["state"], "state")] for p in data["preorders"]], "preorders")]
    parts.append("<h2>Merged persons</h2>")
    if data["persons"]:
        for person in data["persons"]:
            parts.append(f"<h3 data-person='{_e(person['person_id'])}'>{_e(person.get('name') or '')} "
                         f"(person {_e(person['person_id'])})</h3>")
            parts.append(_table(["connector", "stream", "record", "rule"],
                                [[(m["connector_id"], "connector"), (m["stream"], "stream"),
                                  (m["external_id"], "record"), (m.get("rule") or "", "rule")]
                                 for m in person["records"]], "person"))
    else:
        parts.append("<p>No merged persons (run <code>storesync identities resolve</code>).</p>")
    return _SHELL.format(body="\n".join(parts))


def _table(header: list[str], rows: list[list[tuple[Any, str]]], name: str,
           marked: list[bool] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = " class=oversold" if marked and marked[i] else ""
        cells = "".join(f"<td data-field='{key}'>{_e(value)}</td>" for value, key in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table data-table='{name}'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _runs_chart(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "<p>No sync has run yet.</p>"
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    by_connector: dict[str, list[int]] = defaultdict(lambda: [0] * len(runs))
    for i, r in enumerate(runs):
        by_connector[r["connector_id"]][i] = r["records"]
    fig, ax = plt.subplots(figsize=(8, 2.6))
    bottom = [0] * len(runs)
    for connector, values in sorted(by_connector.items()):
        ax.bar([str(r["run"]) for r in runs], values, bottom=bottom, label=connector)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xlabel("run")
    ax.set_ylabel("records stored")
    ax.legend(fontsize=8)
    return _svg(fig, plt)


def _stock_chart(stock: list[dict[str, Any]]) -> str:
    if not stock:
        return "<p>No stock reconciled (add [inventory] to plugins.toml).</p>"
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    skus = sorted({s["sku"] for s in stock})[:30]
    locations = sorted({s["location"] for s in stock})
    value = {(s["sku"], s["location"]): s for s in stock}
    fig, ax = plt.subplots(figsize=(9, 3.2))
    width = 0.8 / max(1, len(locations))
    for j, loc in enumerate(locations):
        xs = [i + j * width for i in range(len(skus))]
        cells = [value.get((sku, loc)) for sku in skus]
        ax.bar(xs, [c["on_hand"] if c else 0 for c in cells], width, label=loc,
               edgecolor=["red" if c and c["oversold"] else "none" for c in cells], linewidth=2)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(skus))], skus, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("on hand")
    ax.legend(fontsize=8)
    return _svg(fig, plt)


def _svg(fig: Any, plt: Any) -> str:
    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: no XML prolog or doctype inside the page


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


_SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>storesync report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; }}
tr.oversold td, span.oversold {{ color: #b00; font-weight: bold; }}
svg {{ max-width: 100%; height: auto; }}
.meta {{ color: #777; }}
</style></head>
<body><h1>storesync report</h1>
{body}
</body></html>
"""
