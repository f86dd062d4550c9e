"""The order-forwarding step: stored orders of some connectors written into another through ``create_order``.

A connector whose settings name ``forward_orders_from = ["shop", "tills"]`` and that declares ``create_order``
receives every stored, not deleted, not cancelled order of those connectors, once. Per order:

1. ``forwarded_order`` gets a ``pending`` row (committed) before the target is called;
2. the target's ``create_order`` gets the order with ``external_id = "<source id>:<order id>"``, which the
   target keeps as its reference and looks up before creating (so a retry or a rerun never makes a copy);
3. the row becomes ``created`` / ``found`` with the target's id, or ``quarantined`` with the reason when the
   target refuses this one order (unknown SKUs...), or ``failed`` on a transient error. Both are tried again on
   the next run; a fatal error (bad credentials) stops the step.

``sync`` runs the step after the connectors it synced (``forward_after_sync``); ``storesync orders forward``
runs it alone. The step holds the target connector's lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from .connector import Connector
from .errors import (
    ConfigError,
    ConfigIssue,
    LockedError,
    RetriableSyncError,
    SkippableRecordError,
    SyncError,
    did_you_mean,
    known,
)
from .forwarded import DONE_STATES, ForwardedOrderRow
from .lock import connector_lock
from .models import Order, OrderLine
from .plugins import PluginHost
from .report import RunReport, StreamReport
from .store import Store, now
from .tables import CHILD_TABLES, ENTITY_TABLES

__all__ = ["BATCH", "config_issues", "forward_after_sync", "forward_orders", "forwarders", "forwarded_rows"]

BATCH = 200
_ORDER_FIELDS = [f for f in Order.model_fields if f != "lines"]
_LINE_FIELDS = list(OrderLine.model_fields)


def forwarders(host: PluginHost, connector_ids: list[str] | None = None) -> list[str]:
    """Connector ids (default: every enabled one) whose settings name connectors to forward orders from."""
    ids = connector_ids or host.enabled_connectors()
    return [cid for cid in ids if getattr(host.connector(cid).settings, "forward_orders_from", None)]


def forward_after_sync(host: PluginHost, store: Store, reports: list[RunReport]) -> None:
    """Run the forwarding step of each synced connector that has one; its counts join that run's report."""
    for report in reports:
        if report.status in ("failed", "locked") or not forwarders(host, [report.connector_id]):
            continue
        try:
            report.streams.extend(forward_orders(host, store, report.connector_id))
        except (SyncError, LockedError) as exc:  # the synced records stay; the run reports the failure
            report.error, report.exception = f"order forwarding: {exc}", exc
        report.finish()
        if report.run_id is not None:  # the run log row gets the step's counts and outcome too
            store.finish_run(report.run_id, report.status, report.counts(), report.error)


def forward_orders(host: PluginHost, store: Store, connector_id: str) -> list[StreamReport]:
    """Forward the pending orders of every source of ``connector_id``; one report per source (``orders<-src``)."""
    target = host.connector(connector_id)
    sources = _sources(host, target)
    reports = []
    with connector_lock(store, connector_id):
        for source in sources:
            rep = StreamReport(stream=f"orders<-{source}", target="forwarded_order")
            start = time.perf_counter()
            for order in _pending(store, connector_id, source):
                _forward_one(store, target, source, order, rep)
            rep.seconds = round(time.perf_counter() - start, 3)
            reports.append(rep)
    return reports


def _sources(host: PluginHost, target: Connector) -> list[str]:
    issues = _source_issues(host, target)
    if issues:
        raise ConfigError(issues)
    return list(getattr(target.settings, "forward_orders_from", None) or [])


def _source_issues(host: PluginHost, target: Connector) -> list[ConfigIssue]:
    sources = list(getattr(target.settings, "forward_orders_from", None) or [])
    file, where = host.config.file_label, f"connectors.{target.id}.forward_orders_from"
    if sources and not callable(getattr(target, "create_order", None)):
        return [ConfigIssue(file, where, f"connector {target.id!r} ({target.name}) cannot create orders, so it "
                                         "cannot take forwarded orders")]
    issues = []
    for source in sources:
        if source not in host.config.connectors:
            issues.append(ConfigIssue(file, where, f"unknown connector {source!r}"
                                                   f"{did_you_mean(source, host.config.connectors)};"
                                                   f"{known(host.config.connectors)}"))
        elif source == target.id:
            issues.append(ConfigIssue(file, where, f"connector {target.id!r} cannot forward its own orders to itself"))
    return issues


def config_issues(host: PluginHost) -> list[ConfigIssue]:
    """Problems with ``forward_orders_from`` of every configured connector (for ``config check``)."""
    issues: list[ConfigIssue] = []
    for cid in host.config.connectors:
        issues.extend(_source_issues(host, host.connector(cid)))
    return issues


def _forward_one(store: Store, target: Connector, source: str, order: Order, rep: StreamReport) -> None:
    rep.read += 1
    reference = f"{source}:{order.external_id}"
    _mark(store, target.id, source, order.external_id, reference, "pending", attempt=True)
    try:
        receipt = target.create_order(order.model_copy(update={"external_id": reference}))  # type: ignore[attr-defined]
    except SkippableRecordError as exc:
        rep.quarantined += 1
        _mark(store, target.id, source, order.external_id, reference, "quarantined", detail=str(exc))
        return
    except RetriableSyncError as exc:
        rep.error = f"{reference}: {exc} (tried again on the next run)"
        _mark(store, target.id, source, order.external_id, reference, "failed", detail=str(exc))
        return
    if receipt.created:
        rep.inserted += 1
    else:
        rep.unchanged += 1
    _mark(store, target.id, source, order.external_id, reference, "created" if receipt.created else "found",
          target_id=receipt.external_id, detail=receipt.detail or None)


def _mark(store: Store, connector_id: str, source: str, external_id: str, reference: str, state: str, *,
          target_id: str | None = None, detail: str | None = None, attempt: bool = False) -> None:
    table = ForwardedOrderRow.__table__  # type: ignore[attr-defined]
    key = sa.and_(table.c.connector_id == connector_id, table.c.source_connector_id == source,
                  table.c.source_external_id == external_id)
    stamp = now()
    with store.engine.begin() as conn:
        found = conn.execute(sa.select(table.c.id, table.c.attempts).where(key)).first()
        values: dict[str, Any] = {"state": state, "updated_at": stamp, "detail": detail, "reference": reference}
        if target_id is not None:
            values["target_id"] = target_id
        if found is None:
            conn.execute(sa.insert(table).values(connector_id=connector_id, source_connector_id=source,
                                                 source_external_id=external_id, first_seen=stamp,
                                                 attempts=1 if attempt else 0, **values))
        else:
            conn.execute(sa.update(table).where(table.c.id == found.id).values(
                attempts=found.attempts + (1 if attempt else 0), **values))


def _pending(store: Store, connector_id: str, source: str) -> Iterator[Order]:
    """Stored orders of ``source`` not yet created or found in ``connector_id``, in batches by row id."""
    orders, fwd = ENTITY_TABLES["order"], ForwardedOrderRow.__table__  # type: ignore[attr-defined]
    done = sa.exists().where(fwd.c.connector_id == connector_id, fwd.c.source_connector_id == orders.c.connector_id,
                             fwd.c.source_external_id == orders.c.external_id, fwd.c.state.in_(DONE_STATES))
    last = 0
    while True:
        stmt = (sa.select(orders.c.id, *(orders.c[f] for f in _ORDER_FIELDS))
                .where(orders.c.connector_id == source, orders.c.id > last, ~done,
                       sa.or_(orders.c.deleted.is_(None), orders.c.deleted.is_(False)),
                       sa.or_(orders.c.status.is_(None), orders.c.status != "cancelled"))
                .order_by(orders.c.id).limit(BATCH))
        with store.read() as conn:
            rows = conn.execute(stmt).mappings().all()
            lines = _lines(conn, [r["id"] for r in rows])
        if not rows:
            return
        last = rows[-1]["id"]
        for row in rows:
            yield Order.model_validate({**{f: row[f] for f in _ORDER_FIELDS}, "lines": lines.get(row["id"], [])})


def _lines(conn: Any, order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    _, table, parent = CHILD_TABLES["order"]
    out: dict[int, list[dict[str, Any]]] = {}
    if not order_ids:
        return out
    stmt = (sa.select(table.c[parent], *(table.c[f] for f in _LINE_FIELDS)).where(table.c[parent].in_(order_ids))
            .order_by(table.c[parent], table.c.position))
    for row in conn.execute(stmt).mappings():
        out.setdefault(row[parent], []).append({f: row[f] for f in _LINE_FIELDS})
    return out


def forwarded_rows(store: Store, connector_id: str | None = None, state: str | None = None,
                   limit: int = 50) -> list[dict[str, Any]]:
    """Rows of ``forwarded_order`` (newest change first) as plain data."""
    table = ForwardedOrderRow.__table__  # type: ignore[attr-defined]
    stmt = sa.select(table).order_by(table.c.updated_at.desc(), table.c.id.desc()).limit(limit)
    if connector_id:
        stmt = stmt.where(table.c.connector_id == connector_id)
    if state:
        stmt = stmt.where(table.c.state == state)
    with store.read() as conn:
        return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(r).items()}
                for r in conn.execute(stmt).mappings()]
