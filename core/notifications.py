"""``storesync notify``: read consent changes, turn new events into outbox messages, deliver them, read statuses.

One run, under a lock of its own (``notify-<connector>``), in this order:

1. STOP/START replies since the last run are read from the gateway (``consent_changes``) and recorded;
2. ``order.created`` events are derived from the orders the syncs stored (``core/events.py``);
3. every event not fanned out yet goes through the ``storesync_event`` hook, where ``RulePlanner`` listens; the
   messages it plans and the events' dispatched mark commit in one transaction (no event is planned twice);
4. the outbox delivers (``core/outbox.py``): in-doubt messages settled first, then every due message, paced;
5. statuses of messages sent by earlier runs and still in flight are read back from the gateway.

``dry_run`` does steps 2 and 3 in a transaction it rolls back, calls no gateway and tells what would be sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pluggy

from .capabilities import ConsentChange
from .connector import Connector
from .consent import apply_consent
from .errors import EXIT_CONNECTOR, ConfigError, ConfigIssue, SyncError
from .events import derive_order_events, mark_dispatched, record_events, undispatched
from .lock import connector_lock
from .outbox import (
    DeliveryReport,
    RulePlanner,
    deliver,
    insert_messages,
    refresh_statuses,
    upgrade_schema,
    utcnow,
)
from .plugins import PluginHost
from .rules import NotificationSettings, load_rules
from .store import Store

__all__ = ["NotifyReport", "run_notify", "sending_connector"]

CONSENT_STREAM = "consent"


@dataclass
class NotifyReport:
    """What one ``storesync notify`` did."""

    connector_id: str
    dry_run: bool = False
    consent_changes: int = 0
    events_new: int = 0
    events_dispatched: int = 0
    planned: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    would_send: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        if self.error:
            return EXIT_CONNECTOR
        return 1 if self.delivery.failed else 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data


def sending_connector(host: PluginHost, settings: NotificationSettings) -> Connector:
    """The connector instance that sends: ``[notifications] connector``, else the only one that can."""
    file = host.config.file_label
    if settings.connector:
        connector = host.connector(settings.connector)
        if not callable(getattr(connector, "send_message", None)):
            raise ConfigError([ConfigIssue(file, "notifications.connector",
                                           f"connector {connector.id!r} cannot send messages (no send_message)")])
        return connector
    able = [cid for cid, sec in host.config.connectors.items() if sec.enabled
            and callable(getattr(host.connector_class(sec.type), "send_message", None))]
    if len(able) != 1:
        found = f"found {', '.join(able)}" if able else "none is configured"
        raise ConfigError([ConfigIssue(file, "notifications.connector",
                                       f"name the connector that sends messages ({found})")],
                          hint='e.g. a [connectors.sms] table with type = "twilio"')
    return host.connector(able[0])


def run_notify(host: PluginHost, store: Store, *, dry_run: bool = False,
               sleep: Callable[[float], None] = time.sleep) -> NotifyReport:
    """One notify run (see the module docstring)."""
    settings = load_rules(host.config)
    connector = sending_connector(host, settings)
    upgrade_schema(store)
    report = NotifyReport(connector_id=connector.id, dry_run=dry_run)
    try:
        _run(host, store, connector, settings, report, sleep)
    finally:
        close = getattr(connector, "close", None)
        if callable(close):
            close()
    return report


def _run(host: PluginHost, store: Store, connector: Connector, settings: NotificationSettings,
         report: NotifyReport, sleep: Callable[[float], None]) -> None:
    dry_run = report.dry_run
    with connector_lock(store, f"notify-{connector.id}"):
        now = utcnow()
        since = now - timedelta(hours=settings.max_age_hours)
        try:
            if not dry_run:
                report.consent_changes = _read_consent(store, connector, since)
            _plan(host, store, connector, settings, report, now, since)
            if not dry_run:
                deliver(store, connector, settings, report=report.delivery, sleep=sleep)
                report.delivery.statuses_updated = refresh_statuses(store, connector, since, now)
        except SyncError as exc:
            report.error = str(exc)


def _plan(host: PluginHost, store: Store, connector: Connector, settings: NotificationSettings,
          report: NotifyReport, now: datetime, since: datetime) -> None:
    with store.write(rollback=report.dry_run) as w:
        report.events_new = record_events(w.conn, derive_order_events(w.conn, since), now)
        events = undispatched(w.conn, since)
        planner = RulePlanner(w.conn, settings, connector_id=connector.id, timezone=host.config.storesync.timezone,
                              now=now)
        if report.dry_run:  # plugins are not told about events that will be rolled back
            for event in events:
                planner.storesync_event(event=event)
        else:
            with _listening(host.pm, planner):
                for event in events:
                    host.hook.storesync_event(event=event)
        report.planned = insert_messages(w.conn, planner.planned)
        mark_dispatched(w.conn, [e.id for e in events], now)
        report.events_dispatched = len(events)
        if report.dry_run:
            report.would_send = [{k: p[k] for k in ("idempotency_key", "to", "language", "purpose", "status",
                                                     "detail", "body", "encoding", "segments")}
                                 for p in planner.planned]


def _read_consent(store: Store, connector: Connector, since: datetime) -> int:
    reader = getattr(connector, "consent_changes", None)
    if reader is None:
        return 0
    saved = store.get_cursor(connector.id, CONSENT_STREAM)
    start = datetime.fromisoformat(saved) if isinstance(saved, str) else since
    checked = utcnow() - timedelta(minutes=2)  # a reply still being stored at the gateway is read next time
    changes: list[ConsentChange] = reader(start)
    with store.write() as w:
        for change in changes:
            apply_consent(w.conn, change)
        w.save_cursor(connector.id, CONSENT_STREAM, max(checked, start).isoformat())
    return len(changes)


@contextmanager
def _listening(pm: pluggy.PluginManager, planner: RulePlanner) -> Iterator[None]:
    name = "storesync.rules"
    pm.register(planner, name=name)
    try:
        yield
    finally:
        pm.unregister(name=name)
