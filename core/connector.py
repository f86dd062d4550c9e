"""Base classes plugin authors subclass: ``Connector`` and ``Stream``.

A connector never touches the database. Its streams yield raw dicts (and, optionally, ``Checkpoint`` and
``Tombstone`` markers); the engine maps, validates, stores and commits cursors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CAPABILITIES",
    "Checkpoint",
    "Connector",
    "ConnectorContext",
    "EmptySettings",
    "Invalid",
    "RawPage",
    "Stream",
    "Tombstone",
]

#: optional methods a connector may define; their presence declares the capability
CAPABILITIES = ("push_inventory", "send_message", "create_order")


class EmptySettings(BaseModel):
    """Settings of a connector that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Yielded by a stream: everything yielded before it is covered by ``state``.

    The engine saves ``state`` as the stream's cursor in the same transaction as the batch holding the
    records before it, and hands it back to ``Stream.read`` on the next run.
    """

    state: Any


@dataclass(frozen=True, slots=True)
class Tombstone:
    """Yielded by a stream: the source deleted the record with this external id."""

    external_id: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """Yielded by a stream: a source record that could not even be read (bad JSON, bad encoding).

    The engine quarantines ``payload`` with ``reason``; the run goes on.
    """

    payload: Any
    reason: str
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class RawPage:
    """Yielded by a stream: one downloaded page of records, not decoded yet.

    Decoding a large JSON page, then mapping and hashing its records, is most of a sync's CPU. A stream that
    yields ``RawPage`` lets the engine do that work in worker processes, several pages at once, while this
    process keeps downloading and writing. ``decode(body)`` returns the page's raw records (dicts, or
    ``Invalid``) and raises ``ValueError`` when the body is not a whole, well-formed page (a truncated
    download); it must be picklable: a module-level function or a ``functools.partial`` of one.
    ``refetch()`` downloads the same page again; the engine calls it (on this process) when ``decode``
    fails, as an HTTP client retries a truncated body. Without it a body that does not decode fails the stream.
    """

    body: bytes
    decode: Callable[[bytes], list[Any]]
    refetch: Callable[[], bytes] | None = None


@dataclass(frozen=True)
class ConnectorContext:
    """What core hands a connector instance: where it lives and the merchant's locale."""

    base_dir: Path = field(default_factory=Path.cwd)
    timezone: str = "UTC"
    default_region: str | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("storesync.connector"))

    def resolve(self, path: str | Path) -> Path:
        """Resolve ``path`` relative to the configuration file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


class Stream:
    """One readable collection of a connector, mapped to one canonical target.

    Subclass and override ``read``, or pass ``reader``. ``cursor_field`` names the raw field the engine
    tracks for incremental reads (``>=`` plus primary-key de-duplication); a stream that manages its own
    position yields ``Checkpoint`` objects instead and leaves ``cursor_field`` unset. ``target`` may be
    left ``None`` when the mapping decides it (the ``files`` connector).
    """

    def __init__(self, name: str, target: str | None = None, *, primary_key: str = "id", cursor_field: str | None = None,
                 reader: Callable[[Any], Iterator[Any]] | None = None) -> None:
        self.name = name
        self.target = target
        self.primary_key = primary_key
        self.cursor_field = cursor_field
        self._reader = reader

    def read(self, cursor: Any | None) -> Iterator[dict[str, Any] | RawPage | Checkpoint | Tombstone | Invalid]:
        """Yield raw records changed at or after ``cursor`` (``None``: everything)."""
        if self._reader is None:
            raise NotImplementedError(f"stream {self.name!r} defines no reader")
        return self._reader(cursor)

    def __repr__(self) -> str:
        return f"Stream({self.name!r} -> {self.target!r})"


class Connector:
    """A connector type. Subclass it, set ``name`` and ``Settings``, implement ``streams`` and ``check``.

    Optional capabilities are declared by defining methods: ``push_inventory(updates)``,
    ``send_message(message)``, ``create_order(order)``; ``core/capabilities.py`` gives their shapes.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]] = EmptySettings
    #: mapping file in ``storesync/mappings`` used when an instance names none
    default_mapping: ClassVar[str | None] = None
    #: True if streams yield ``RawPage``s: the engine then starts its page workers when a sync begins
    raw_pages: ClassVar[bool] = False
    #: True if each instance names its own streams in plugins.toml (``files``): a shared mapping file may then
    #: hold streams one instance does not configure, and ``config check`` does not call them unknown
    configured_streams: ClassVar[bool] = False

    def __init__(self, instance_id: str, settings: BaseModel, context: ConnectorContext) -> None:
        self.id = instance_id
        self.settings = settings
        self.context = context

    def streams(self) -> list[Stream]:
        """Return every stream this connector can read."""
        raise NotImplementedError

    def check(self) -> str:
        """Verify connectivity and credentials; return a one-line description or raise ``SyncError``."""
        raise NotImplementedError

    @classmethod
    def capabilities(cls) -> list[str]:
        """Names of the optional capabilities this connector type implements."""
        return [c for c in CAPABILITIES if callable(getattr(cls, c, None))]

    def stream(self, name: str) -> Stream:
        """Return the stream called ``name`` or raise ``ConfigError`` listing the known ones."""
        from .errors import ConfigError, did_you_mean, known

        by_name = {s.name: s for s in self.streams()}
        if name not in by_name:
            raise ConfigError(f"connector {self.id!r} has no stream {name!r}"
                              f"{did_you_mean(name, by_name)};{known(by_name)}")
        return by_name[name]
