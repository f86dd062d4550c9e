"""One stream of the ``files`` connector: which files changed since the cursor, and the CSV and JSON Lines readers.

The cursor a stream hands the engine (in every ``Checkpoint``) is a JSON-serialisable dict::

    {"files":   {name: {"size": int, "mtime_ns": int, "tail": sha1 hex, "rows": int (CSV only)}},
     "max":     the cursor column's maximum so far, or None,
     "partial": {"file": name, "offset": int, "size": int, "tail": sha1 hex} or None}

``name`` is the file's path relative to the directory. ``size`` is how many bytes were read, ``tail`` the SHA-1 of
the last (up to) 4096 bytes before ``size``: a file that grew and still has that tail was appended to, so only the
new part is read (JSON Lines: from byte ``size``; CSV: after the first ``rows`` rows). ``partial`` marks a file
interrupted mid-way: ``offset`` is a byte offset (JSON Lines) or a row count (CSV), and ``tail`` hashes the bytes
before ``size``, the part of the file already read. While a run is under way with a cursor column, checkpoints
also carry ``pending_max`` (the maximum seen so far) so that rows are compared against the maximum saved when the
run started, as they would be had the run not been interrupted.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import stat
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ...core.connector import Checkpoint, Invalid, Stream
from ...core.errors import FatalSyncError

if TYPE_CHECKING:
    from . import FileSpec

__all__ = ["FilesStream", "format_for", "require_directory", "tail_hash"]

TAIL_BYTES = 4096
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_BOM = codecs.BOM_UTF8

Item = dict[str, Any] | Checkpoint | Invalid
Mark = Callable[[int, int], Checkpoint]  # (offset, bytes read so far) -> a mid-file checkpoint


def format_for(pattern: str) -> str | None:
    """Return the format a file pattern implies by its extension, or ``None``."""
    return SUFFIX_FORMATS.get(Path(pattern).suffix.lower())


def tail_hash(path: Path, end: int) -> str:
    """SHA-1 (hex) of the last up-to-4096 bytes of ``path`` before byte ``end``."""
    start = max(0, end - TAIL_BYTES)
    with open(path, "rb") as fh:
        fh.seek(start)
        return hashlib.sha1(fh.read(end - start)).hexdigest()


def require_directory(connector_id: str, directory: Path) -> None:
    """Raise ``FatalSyncError`` with a fix-it hint unless ``directory`` is a readable directory."""
    where = f"files connector {connector_id!r}: directory {directory}"
    if not directory.exists():
        raise FatalSyncError(f"{where} does not exist", hint="create it or fix `directory` in plugins.toml")
    if not directory.is_dir():
        raise FatalSyncError(f"{where} is not a directory", hint="point `directory` in plugins.toml at a folder")
    if not os.access(directory, os.R_OK | os.X_OK):
        raise FatalSyncError(f"{where} is not readable",
                             hint="give the user running storesync read permission on it")


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def _escape(value: str) -> str:
    """Show undecodable bytes (surrogate escapes) as ``\\xNN`` so the payload can be stored as JSON."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class CursorFilter:
    """Keeps rows whose cursor column is >= the maximum saved when the run started; tracks the new maximum."""

    def __init__(self, column: str, numeric: bool, floor: Any, running: Any) -> None:
        if floor is not None and isinstance(floor, str) == numeric:  # cursor_type changed since the state was saved: start over
            floor = running = None
        self.column, self.numeric, self.floor, self.max = column, numeric, floor, running

    def __call__(self, record: dict[str, Any]) -> bool:
        """Return whether to yield ``record``; raise ``ValueError`` when a numeric cursor is not a number."""
        value = record.get(self.column)
        if value is None or value == "":
            return False
        if self.numeric:
            value = self._number(value)
        elif not isinstance(value, str):
            value = str(value)
        if self.max is None or value > self.max:
            self.max = value
        return self.floor is None or value >= self.floor

    def _number(self, value: Any) -> int | float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"cursor column {self.column!r} is not a number: {value!r}") from None


class _Progress:
    """The mutable cursor of one read, turned into a fresh ``Checkpoint`` state on demand."""

    def __init__(self, cursor: Any | None, tracks_max: bool) -> None:
        cursor = cursor if isinstance(cursor, dict) else {}
        self.files: dict[str, dict[str, Any]] = dict(cursor.get("files") or {})
        self.partial: dict[str, Any] | None = cursor.get("partial")
        self.floor = cursor.get("max")
        self.max = cursor.get("pending_max", self.floor)
        self.tracks_max = tracks_max
        self.last: dict[str, Any] | None = None  # the state of the last checkpoint made

    def state(self, partial: dict[str, Any] | None = None, *, final: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = {"files": dict(self.files), "max": self.floor, "partial": partial or self.partial}
        if final:
            state["max"], state["partial"] = self.max, None
        elif self.tracks_max and self.max != self.floor:
            state["pending_max"] = self.max
        self.last = state
        return state


class FilesStream(Stream):
    """All files matching one pattern, read in sorted name order, new or changed files only."""

    def __init__(self, name: str, spec: FileSpec, directory: Path, *, connector_id: str,
                 checkpoint_every: int = 5000) -> None:
        super().__init__(name, None, primary_key=spec.primary_key)
        self.spec, self.directory = spec, directory
        self.connector_id, self.checkpoint_every = connector_id, checkpoint_every

    def matching_files(self) -> list[tuple[str, Path]]:
        """Regular files matching the pattern as ``(name relative to the directory, path)``, sorted by name."""
        require_directory(self.connector_id, self.directory)
        try:
            found = [(p.relative_to(self.directory).as_posix(), p) for p in self.directory.glob(self.spec.pattern)]
        except OSError as exc:
            raise FatalSyncError(f"files connector {self.connector_id!r}: cannot list {self.directory}: {exc}",
                                 hint="check the directory's permissions") from exc
        return sorted((name, p) for name, p in found if _regular(p))

    def read(self, cursor: Any | None) -> Iterator[Item]:
        """Yield the rows of new and changed files, a ``Checkpoint`` after each file and every N rows."""
        progress = _Progress(cursor, self.spec.cursor_column is not None)
        files = self.matching_files()
        names = {name for name, _ in files}
        changed = any(name not in names for name in progress.files)
        progress.files = {k: v for k, v in progress.files.items() if k in names}
        for name, path in files:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            prev = progress.files.get(name)
            if prev and prev["size"] == st.st_size and prev["mtime_ns"] == st.st_mtime_ns:
                continue
            changed = True
            yield from self._read_file(name, path, st.st_size, prev, progress)
        last = progress.last
        final = progress.state(final=True)
        if (changed or progress.partial is not None) and final != last:
            yield Checkpoint(final)

    def _read_file(self, name: str, path: Path, size: int, prev: dict[str, Any] | None,
                   progress: _Progress) -> Iterator[Item]:
        start = self._start(name, path, size, prev, progress.partial)
        keep = None
        if self.spec.cursor_column:
            keep = CursorFilter(self.spec.cursor_column, self.spec.cursor_type == "number",
                                progress.floor, progress.max)

        def mark(offset: int, read_to: int) -> Checkpoint:
            if keep is not None:
                progress.max = keep.max
            tail = tail_hash(path, read_to)
            return Checkpoint(progress.state({"file": name, "offset": offset, "size": read_to, "tail": tail}))

        try:
            if self.spec.format == "csv":
                entry = yield from self._csv(name, path, start, mark, keep)
            else:
                entry = yield from self._jsonl(name, path, start, mark, keep)
        except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            yield Invalid({"file": name}, f"{name}: cannot read the file: {exc}")
            return
        if keep is not None:
            progress.max = keep.max
        progress.files[name] = entry
        if progress.partial and progress.partial.get("file") == name:
            progress.partial = None
        yield Checkpoint(progress.state())

    def _start(self, name: str, path: Path, size: int, prev: dict[str, Any] | None,
               partial: dict[str, Any] | None) -> int:
        """Where to start reading: a byte offset (JSON Lines) or a row count to skip (CSV)."""
        if partial and partial.get("file") == name and _still(path, size, partial["size"], partial["tail"]):
            return int(partial["offset"])
        if prev and size > prev["size"] and _still(path, size, prev["size"], prev["tail"]):
            return int(prev["size"] if self.spec.format == "jsonl" else prev.get("rows", 0))
        return 0

    def _jsonl(self, name: str, path: Path, start: int, mark: Mark,
               keep: CursorFilter | None) -> Generator[Item, None, dict[str, Any]]:
        decode = None if _is_utf8(self.spec.encoding) else self.spec.encoding
        loads, every, since = orjson.loads, self.checkpoint_every, 0
        with open(path, "rb") as fh:
            pos = start
            if start == 0 and fh.read(3) == _BOM:
                pos = 3
            fh.seek(pos)
            lines = _LineNumbers(path, pos)
            for n, line in enumerate(fh, 1):
                pos += len(line)
                try:
                    record = loads(line if decode is None else line.decode(decode))
                except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                    if line.strip():
                        yield Invalid(_escape(line.decode("utf-8", "surrogateescape").rstrip("\r\n")),
                                      f"{name} line {lines(n)}: invalid JSON: {exc}")
                    continue
                if type(record) is not dict:
                    yield Invalid(record, f"{name} line {lines(n)}: expected a JSON object, got "
                                          f"{type(record).__name__}")
                elif keep is None:
                    yield record
                else:
                    yield from _filtered(record, keep, f"{name} line {lines(n)}")
                since += 1
                if since >= every:
                    since = 0
                    yield mark(pos, pos)
            return _entry(path, fh.fileno(), pos)

    def _csv(self, name: str, path: Path, skip: int, mark: Mark,
             keep: CursorFilter | None) -> Generator[Item, None, dict[str, Any]]:
        spec, every = self.spec, self.checkpoint_every
        with open(path, "rb") as raw:
            text = io.TextIOWrapper(raw, encoding=spec.encoding, errors="surrogateescape", newline="")
            reader = csv.DictReader(text, delimiter=spec.delimiter, quotechar=spec.quotechar)
            header = _clean_header(reader.fieldnames or [])
            reader.fieldnames = header
            rows = 0
            while header:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    row = exc
                rows += 1
                if rows <= skip:
                    continue
                where = f"{name} line {reader.line_num}"
                if isinstance(row, csv.Error):
                    yield Invalid({}, f"{where}: unreadable CSV: {row}")
                else:
                    yield from _csv_row(row, len(header), where, spec.encoding, keep)
                if rows % every == 0:
                    yield mark(rows, raw.tell())
            return {**_entry(path, raw.fileno(), raw.tell()), "rows": rows}


class _LineNumbers:
    """Line numbers for error messages when reading from a byte offset: counts earlier lines only on demand."""

    def __init__(self, path: Path, start: int) -> None:
        self.path, self.start, self.base = path, start, None if start > 3 else 0

    def __call__(self, n: int) -> int:
        if self.base is None:
            self.base, left = 0, self.start
            with open(self.path, "rb") as fh:
                while left > 0:
                    chunk = fh.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    self.base, left = self.base + chunk.count(b"\n"), left - len(chunk)
        return self.base + n


def _csv_row(row: dict[Any, Any], width: int, where: str, encoding: str,
             keep: CursorFilter | None) -> Iterator[dict[str, Any] | Invalid]:
    """Yield one CSV row, or an ``Invalid`` for a wrong field count or undecodable bytes."""
    extra = row.pop(None, None)
    if extra is not None or None in row.values():
        got = width + len(extra) if extra is not None else sum(v is not None for v in row.values())
        payload = {k: _escape(v) for k, v in row.items() if v is not None}
        if extra is not None:
            payload["_extra_fields"] = [_escape(v) for v in extra]
        yield Invalid(payload, f"{where}: expected {width} fields, got {got}")
        return
    joined = "".join(row.values())
    if not joined.isascii() and not _encodable(joined):
        bad = [k for k, v in row.items() if not _encodable(v)]
        payload = {k: (_escape(v) if k in bad else v) for k, v in row.items()}
        columns = ", ".join(repr(k) for k in bad)
        yield Invalid(payload, f"{where} column {columns}: bytes not valid in encoding {encoding!r}")
        return
    if keep is None:
        yield row
    else:
        yield from _filtered(row, keep, where)


def _filtered(record: dict[str, Any], keep: CursorFilter, where: str) -> Iterator[dict[str, Any] | Invalid]:
    try:
        if keep(record):
            yield record
    except ValueError as exc:
        yield Invalid(record, f"{where}: {exc}")


def _clean_header(fields: list[str]) -> list[str]:
    """Strip a UTF-8 BOM from the first header (Excel exports) and escape undecodable bytes."""
    fields = [f if _encodable(f) else _escape(f) for f in fields]
    if fields and fields[0].startswith("\ufeff"):
        fields[0] = fields[0][1:]
    return fields


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _entry(path: Path, fd: int, size: int) -> dict[str, Any]:
    """The state of a file read up to byte ``size``."""
    return {"size": size, "mtime_ns": os.fstat(fd).st_mtime_ns, "tail": tail_hash(path, size)}


def _still(path: Path, size: int, old_size: int, old_tail: str) -> bool:
    """Whether the first ``old_size`` bytes of a file now ``size`` long still end with ``old_tail``."""
    return size >= old_size and tail_hash(path, old_size) == old_tail


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False
