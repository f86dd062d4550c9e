"""The storesync error hierarchy, grouped by what the caller should do.

::

    StoresyncError                      base; carries context and a hint; exit code 1
    ├── ConfigError                     plugins.toml or a connector's settings are wrong (exit 2)
    │   ├── MappingError                a mapping file is wrong (names file and TOML key path)
    │   └── PluginError                 a plugin failed to load or clashed with another
    ├── StoreError                      the database cannot be opened or written (exit 2)
    ├── LockedError                     another run holds the connector's lock (exit 4)
    └── SyncError                       something went wrong while syncing
        ├── FatalSyncError              the connector cannot go on: auth, schema, outage (exit 3)
        ├── RetriableSyncError          transient: timeouts, 429, 5xx; retry later (exit 3 if it escapes)
        └── SkippableRecordError        one record is bad; quarantine it and go on
            └── RecordMappingError      a record failed its mapping (names record key and field)

Every message says what is wrong and, where it can, how to fix it, listing valid values.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "FatalSyncError",
    "LockedError",
    "MappingError",
    "PluginError",
    "RecordMappingError",
    "RetriableSyncError",
    "SkippableRecordError",
    "StoreError",
    "StoresyncError",
    "SyncError",
    "did_you_mean",
]

EXIT_OK = 0
EXIT_QUARANTINED = 1
EXIT_CONFIG = 2
EXIT_CONNECTOR = 3
EXIT_LOCKED = 4


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for a near miss, else ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def known(choices: Iterable[str]) -> str:
    """Return ``" known: a, b, c"`` listing valid values, sorted."""
    return " known: " + ", ".join(sorted(choices))


class StoresyncError(Exception):
    """Base of every error storesync raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.context = context

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigIssue:
    """One problem in a configuration or mapping file: ``file: key: message``."""

    __slots__ = ("file", "key", "message")

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file, self.key, self.message = file, key, message

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.key, self.message) if part)

    def __repr__(self) -> str:
        return f"ConfigIssue({str(self)!r})"


class ConfigError(StoresyncError):
    """The configuration is invalid; ``issues`` lists each problem as ``file: key: message``."""

    exit_code = EXIT_CONFIG

    def __init__(self, issues: list[ConfigIssue] | str, *, hint: str | None = None, **context: Any) -> None:
        if isinstance(issues, str):
            issues = [ConfigIssue(context.get("file", ""), context.get("key", ""), issues)]
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues), hint=hint, **context)


class MappingError(ConfigError):
    """A mapping file is invalid: names the file, the TOML key path and what was expected."""


class PluginError(ConfigError):
    """A plugin could not be loaded, or two plugins claim the same name."""


class StoreError(StoresyncError):
    """The store cannot be opened or used (bad URL, unreachable server, missing driver)."""

    exit_code = EXIT_CONFIG


class LockedError(StoresyncError):
    """Another run holds the lock of this connector instance."""

    exit_code = EXIT_LOCKED


class SyncError(StoresyncError):
    """Base of errors raised while syncing."""

    exit_code = EXIT_CONNECTOR


class FatalSyncError(SyncError):
    """The connector cannot continue (bad credentials, outage past the retry budget)."""


class RetriableSyncError(SyncError):
    """A transient failure; the same call may succeed later."""


class SkippableRecordError(SyncError):
    """One record is bad; it is quarantined and the run goes on."""

    def __init__(self, message: str, *, record_key: str | None = None, field: str | None = None,
                 hint: str | None = None, **context: Any) -> None:
        super().__init__(message, hint=hint, **context)
        self.record_key = record_key
        self.field = field


class RecordMappingError(SkippableRecordError):
    """A record failed its mapping: carries the record's key and the canonical field that failed."""

    def __str__(self) -> str:
        where = f"record {self.record_key!r}" if self.record_key is not None else "record"
        if self.field:
            where += f" field {self.field!r}"
        return f"{where}: {super().__str__()}"
