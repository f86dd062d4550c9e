"""Progress of a long sync: a live line on a terminal, plain log lines otherwise (cron, CI, pipes)."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["SyncProgress"]

log = logging.getLogger("storesync.sync")


class SyncProgress:
    """A ``ProgressFn`` for the engine: ``progress(connector_id, stream, records_read)``."""

    def __init__(self, *, enabled: bool = True, interval: float = 5.0) -> None:
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.interval = interval
        self._started: dict[tuple[str, str], float] = {}
        self._last_log = 0.0
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> SyncProgress:
        if self.live:
            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("starting", total=None)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, connector_id: str, stream: str, read: int) -> None:
        now = time.monotonic()
        started = self._started.setdefault((connector_id, stream), now)
        rate = read / (now - started) if now > started else 0.0
        text = f"{connector_id}/{stream}: {read:,} records read ({rate:,.0f}/s)"
        if self._progress is not None:
            self._progress.update(self._task, description=text)
        elif now - self._last_log >= self.interval:
            self._last_log = now
            log.info(text)
            if not logging.getLogger().handlers:
                print(text, file=sys.stderr, flush=True)
