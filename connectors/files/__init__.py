"""The ``files`` connector: reads CSV and JSON Lines exports that a till or ERP drops into a directory.

One stream per configured file pattern; incremental by file (new, appended or rewritten files only) and, when
``cursor_column`` is set, by a column within each changed file. See ``reader`` for the cursor format.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...core.connector import Connector, Stream
from ...core.hookspecs import hookimpl
from .reader import SUFFIX_FORMATS, FilesStream, format_for, require_directory

__all__ = ["FileSpec", "FilesConnector", "FilesSettings", "storesync_register_connectors"]

COMMON_ENCODINGS = "utf-8, utf-8-sig, big5"


class FileSpec(BaseModel):
    """One stream: the files matching ``pattern`` inside the connector's directory, and how to parse them."""

    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(min_length=1)
    format: Literal["auto", "csv", "jsonl"] = "auto"
    encoding: str = "utf-8"
    delimiter: str | None = None  # "," ("\t" when the pattern ends in .tsv)
    quotechar: str = '"'
    primary_key: str = "id"
    cursor_column: str | None = None
    cursor_type: Literal["string", "number"] = "string"

    @field_validator("pattern")
    @classmethod
    def _relative(cls, value: str) -> str:
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError(f"pattern {value!r} must be a glob inside `directory`, e.g. 'orders-*.csv'")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; use one Python knows, e.g. {COMMON_ENCODINGS}") from None
        return value

    @field_validator("delimiter", "quotechar")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value == "\\t":  # a TOML literal string '\t'
            return "\t"
        if value is not None and len(value) != 1:
            raise ValueError(f"must be a single character, got {value!r} (write a tab as \"\\t\")")
        return value

    @model_validator(mode="after")
    def _resolve_format(self) -> FileSpec:
        if self.format == "auto":
            found = format_for(self.pattern)
            if found is None:
                raise ValueError(f"cannot tell the format of {self.pattern!r} from its extension "
                                 f"(known: {', '.join(SUFFIX_FORMATS)}); set format = \"csv\" or \"jsonl\"")
            self.format = found  # type: ignore[assignment]
        if self.delimiter is None:
            self.delimiter = "\t" if self.pattern.lower().endswith(".tsv") else ","
        return self


class FilesSettings(BaseModel):
    """The ``[connectors.<id>]`` table of a ``files`` connector."""

    model_config = ConfigDict(extra="forbid")

    directory: str = Field(min_length=1)
    files: dict[str, FileSpec] = Field(min_length=1)
    checkpoint_every: int = Field(5000, gt=0)


class FilesConnector(Connector):
    """Reads one directory of exported files; one stream per entry of ``files``."""

    name = "files"
    configured_streams = True  # one stream per `files` entry; the default mapping covers four
    Settings = FilesSettings
    default_mapping = "files.toml"
    settings: FilesSettings

    @property
    def directory(self) -> Path:
        """The directory, resolved relative to plugins.toml's folder."""
        return self.context.resolve(self.settings.directory)

    def streams(self) -> list[Stream]:
        """One ``FilesStream`` per configured file spec, in configuration order."""
        return [FilesStream(name, spec, self.directory, connector_id=self.id,
                            checkpoint_every=self.settings.checkpoint_every)
                for name, spec in self.settings.files.items()]

    def check(self) -> str:
        """Verify the directory is readable; return e.g. ``"3 streams, 5 matching files in /path"``."""
        require_directory(self.id, self.directory)
        streams = self.streams()
        count = sum(len(s.matching_files()) for s in streams if isinstance(s, FilesStream))
        return f"{_plural(len(streams), 'stream')}, {_plural(count, 'matching file')} in {self.directory}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@hookimpl
def storesync_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Contribute the ``files`` connector type."""
    register(FilesConnector)
