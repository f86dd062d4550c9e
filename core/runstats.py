"""The run report of each sync: duration, records, HTTP requests and retries, the last error.

The run log (``run`` table) says when a run started, how it ended and its counts per stream. What an operator
also needs after a bad night, how hard the run had to fight (requests, retries against the budget) and the last
error it saw even when it recovered, lives in ``run_report``, one row per run, written when the run ends.

HTTP work is counted by :data:`HTTP`, a process-wide tally every :class:`~storesync.core.http.HttpClient` adds
to (connectors create their clients themselves, so the engine cannot hand one in). The engine takes a snapshot
when a run starts and stores the difference when it ends; runs of one process are sequential, so the
difference is that run's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Text
from sqlmodel import Field, SQLModel

__all__ = ["HTTP", "HttpTally", "RetryBudget", "RunReportRow", "run_reports", "save_run_report"]


@dataclass(frozen=True)
class HttpSnapshot:
    requests: int
    retries: int
    last_retry_error: str | None


class RetryBudget:
    """Retries used against one ``http.retry_budget``: shared by every client of one connector during a run."""

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = 0


class HttpTally:
    """Requests sent and retries made by every HTTP client of this process, and the reason of the last retry.

    It also hands out retry budgets. Connectors open a client per stream (or per call), so a budget per client
    would allow ``retry_budget`` retries per stream; while the engine runs a connector (``open_run``), every
    client of the same name shares one :class:`RetryBudget`, making the budget per run as documented. Outside a
    run (tests, one-off calls) each client has its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = self.retries = 0
        self.last_retry_error: str | None = None
        self._budgets: dict[str, RetryBudget] | None = None

    def request(self) -> None:
        with self._lock:
            self.requests += 1

    def retry(self, reason: str, budget: RetryBudget | None = None) -> None:
        with self._lock:
            self.retries += 1
            self.last_retry_error = reason
            if budget is not None:
                budget.used += 1

    def budget(self, client_name: str) -> RetryBudget:
        """The budget a new client named ``client_name`` counts its retries against."""
        with self._lock:
            if self._budgets is None:
                return RetryBudget()
            return self._budgets.setdefault(client_name, RetryBudget())

    def open_run(self) -> None:
        """A run starts: clients created from now on share one budget per client name."""
        with self._lock:
            self._budgets = {}

    def close_run(self) -> None:
        with self._lock:
            self._budgets = None

    def snapshot(self) -> HttpSnapshot:
        with self._lock:
            return HttpSnapshot(self.requests, self.retries, self.last_retry_error)

    def since(self, before: HttpSnapshot) -> HttpSnapshot:
        """The work done since ``before`` (the last retry's reason only if a retry happened since)."""
        now = self.snapshot()
        retries = now.retries - before.retries
        return HttpSnapshot(now.requests - before.requests, retries, now.last_retry_error if retries else None)


HTTP = HttpTally()


class RunReportRow(SQLModel, table=True):
    """What one run did, beyond its status: written when the run ends (a killed run has none)."""

    __tablename__ = "run_report"
    run_id: int = Field(primary_key=True)
    connector_id: str = Field(max_length=64, index=True)
    seconds: float = 0.0
    records_read: int = 0
    records_written: int = Field(default=0, description="inserted + updated + deleted")
    quarantined: int = 0
    http_requests: int = 0
    http_retries: int = 0
    last_retry_error: str | None = Field(default=None, sa_type=Text)
    last_error: str | None = Field(default=None, sa_type=Text)


def save_run_report(engine: sa.Engine, run_id: int, connector_id: str, totals: dict[str, Any]) -> None:
    """Insert the report of run ``run_id``; ``totals`` holds the column values (see :class:`RunReportRow`)."""
    with engine.begin() as conn:
        conn.execute(sa.insert(RunReportRow).values(run_id=run_id, connector_id=connector_id, **totals))


def run_reports(engine: sa.Engine, connector_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs, newest first, each with its report's columns (None for runs that never finished)."""
    from .tables import RunRow

    stmt = (sa.select(RunRow.id, RunRow.connector_id, RunRow.status, RunRow.started_at, RunRow.finished_at,
                      RunRow.error, *(c for c in RunReportRow.__table__.c if c.name not in ("run_id", "connector_id")))
            .join_from(RunRow, RunReportRow, RunReportRow.run_id == RunRow.id, isouter=True)
            .order_by(RunRow.id.desc()).limit(limit))
    if connector_id:
        stmt = stmt.where(RunRow.connector_id == connector_id)
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()} for row in rows]
