"""What a sync run reports: counts per stream and how the run ended."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import EXIT_CONNECTOR, EXIT_LOCKED, EXIT_OK, EXIT_QUARANTINED

__all__ = ["RunReport", "StreamReport"]


@dataclass
class StreamReport:
    """Counts for one stream of one run."""

    stream: str
    target: str | None = None
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    vetoed: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class RunReport:
    """One run of one connector instance. ``status``: ok, quarantined, failed, locked or dry-run."""

    connector_id: str
    run_id: int | None = None
    status: str = "running"
    streams: list[StreamReport] = field(default_factory=list)
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    # the run report (core/runstats.py): wall time and the HTTP work of this run
    seconds: float = 0.0
    http_requests: int = 0
    http_retries: int = 0
    last_retry_error: str | None = None

    @property
    def exit_code(self) -> int:
        """The process exit code this run alone would give (see README, "Exit codes")."""
        return {"failed": EXIT_CONNECTOR, "locked": EXIT_LOCKED, "quarantined": EXIT_QUARANTINED}.get(
            self.status, EXIT_OK)

    def finish(self) -> None:
        """Derive the final status from the stream reports."""
        if self.status in ("locked", "dry-run"):
            return
        if self.error or any(s.error for s in self.streams):
            self.status = "failed"
        elif any(s.quarantined for s in self.streams):
            self.status = "quarantined"
        else:
            self.status = "ok"

    def counts(self) -> dict[str, Any]:
        return {s.stream: {k: v for k, v in asdict(s).items() if k != "stream"} for s in self.streams}

    def as_dict(self) -> dict[str, Any]:
        return {"connector_id": self.connector_id, "run_id": self.run_id, "status": self.status,
                "error": self.error, "streams": [asdict(s) for s in self.streams], "seconds": self.seconds,
                "http_requests": self.http_requests, "http_retries": self.http_retries,
                "last_retry_error": self.last_retry_error}

    def totals(self) -> dict[str, Any]:
        """The columns of this run's ``run_report`` row (see core/runstats.py)."""
        return {"seconds": self.seconds, "records_read": sum(s.read for s in self.streams),
                "records_written": sum(s.inserted + s.updated + s.deleted for s in self.streams),
                "quarantined": sum(s.quarantined for s in self.streams), "http_requests": self.http_requests,
                "http_retries": self.http_retries, "last_retry_error": self.last_retry_error,
                "last_error": self.error or next((s.error for s in self.streams if s.error), None)}
