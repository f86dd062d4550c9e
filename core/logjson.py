"""Structured logs: ``storesync --log-format json`` writes one JSON object per line on stderr.

Each object has ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the ``connector`` and ``run_id`` of the
run in progress (when there is one) and any ``extra=`` fields the caller attached (the HTTP client's retries add
``http_method``, ``http_path``, ``http_error``, ``attempt``, ``sleep_seconds``). A log shipper can then count
retries per connector or find every line of one run without parsing prose.

The current run is process-wide, not a context variable: a sync's HTTP calls happen on read-ahead threads that
do not inherit context, and runs of one process are sequential. Messages were already redacted by the HTTP
client's filter; nothing here adds secret material (settings are never logged).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "current_run", "json_logging_enabled", "log_error", "setup_logging"]

_RUN: dict[str, Any] = {}
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_state = {"json": False}


@contextmanager
def current_run(connector_id: str, run_id: int | None) -> Iterator[None]:
    """Tag every log record emitted while the block runs with this connector and run id."""
    previous = dict(_RUN)
    _RUN.clear()
    _RUN.update(connector=connector_id, run_id=run_id)
    try:
        yield
    finally:
        _RUN.clear()
        _RUN.update(previous)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: the fixed keys, the current run, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        data.update(_RUN)
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info and record.exc_info[0] is not None:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def setup_logging(log_format: str, verbose: int) -> None:
    """Configure the root logger on stderr: ``text`` (the default) or ``json``."""
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    _state["json"] = log_format == "json"


def json_logging_enabled() -> bool:
    return _state["json"]


def log_error(message: str, where: str = "") -> None:
    """An error the CLI reports, as one ``error`` JSON record (used instead of the coloured line in JSON mode)."""
    logging.getLogger("storesync.cli").error(message, extra={"where": where} if where else {})
