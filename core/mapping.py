"""TOML mappings from source records to canonical dicts, compiled once into plain Python functions.

``load_mapping`` reads one mapping file (a top-level table per stream), checks all of it and reports every
problem at once as a ``MappingError`` naming the file and TOML key path. Each stream is then compiled into
straight-line Python source (``StreamMapping.source``) that is ``exec``-ed once. No TOML text is ever
interpolated into that source: keys, paths, constants and transform callables reach the generated code
through a constants tuple, so a hostile mapping cannot inject code. At run time any failure inside a
compiled mapping surfaces as ``RecordMappingError`` carrying the record key and the canonical field.

A value is *empty* when it is ``None`` or ``""`` (CSV exports write blanks as ``""``). Field spec order:
path / paths / value (fallback paths: the first non-empty wins) -> transform pipeline (empty values pass
through untouched) -> map (empty values are not mapped) -> default (when empty) -> required check (fails
when empty). Fields whose value ends up empty are left out of the canonical dict, so model defaults apply.
Ids (``key``, nested ``key`` and fields named ``*_external_id``) are strings: integers are stringified,
other types fail.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ConfigIssue, MappingError, RecordMappingError
from .mapping_codegen import _expected, _failer, _generate, _keypart, _mkey, _not_a_record
from .mapping_spec import STAR as STAR
from .mapping_spec import Path_ as Path_
from .mapping_spec import _Checker, _q, _Stream, _tname, _unknown
from .mapping_spec import parse_path as parse_path
from .models import Canonical
from .transforms import TransformContext, TransformRegistry

__all__ = ["MappingFile", "StreamMapping", "compile_mapping", "load_mapping"]


# -- public API -----------------------------------------------------------------------------------------------

class StreamMapping:
    """The compiled mapping of one stream: call it on a raw record to get the canonical dict."""

    def __init__(self, stream: _Stream, file: str) -> None:
        self.name, self.target, self.model, self.file = stream.name, stream.target, stream.model, file
        self.source, consts, table = _generate(stream, file)
        namespace = {"_keypart": _keypart, "_mkey": _mkey, "_deepcopy": copy.deepcopy, "_expected": _expected,
                     "_not_a_record": _not_a_record, "_RME": RecordMappingError, "_fail": _failer(file, table),
                     "__builtins__": __builtins__}
        try:
            code = compile(self.source, f"<mapping {file}: {stream.name}>", "exec")
        except (SyntaxError, RecursionError, MemoryError) as exc:  # only a pathologically large mapping
            raise MappingError([ConfigIssue(file, _q(stream.name), f"too large to compile: {exc}")]) from None
        exec(code, namespace)  # noqa: S102 - generated from validated structure, never from TOML text
        self._key, self.fn = namespace["_make"](consts)

    def __repr__(self) -> str:
        return f"<StreamMapping {self.name!r} -> {self.target!r} from {self.file}>"

    def key(self, raw: dict) -> str:
        """The record's external id; a missing or empty one raises ``RecordMappingError``."""
        return self._key(raw)

    def __call__(self, raw: dict) -> dict:
        """The canonical dict of ``raw``; any failure raises ``RecordMappingError``."""
        return self.fn(raw)

    def to_model(self, raw: dict) -> Canonical:
        """Map ``raw`` and validate it into the target model; failures raise ``RecordMappingError``."""
        data = self.fn(raw)
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            name = ".".join(str(p) for p in err["loc"])
            raise RecordMappingError(f"{err['msg']} (target '{self.target}', got {_short(err.get('input'))})",
                                     record_key=data.get("external_id"), field=name) from None
        except Exception as exc:  # a validator that broke in an unexpected way
            raise RecordMappingError(f"{type(exc).__name__}: {exc}", record_key=data.get("external_id")) from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class MappingFile:
    """All stream mappings of one mapping file."""

    def __init__(self, file: str, streams: dict[str, StreamMapping]) -> None:
        self.file, self.streams = file, streams

    def __repr__(self) -> str:
        return f"<MappingFile {self.file} streams={sorted(self.streams)}>"

    def stream(self, name: str) -> StreamMapping:
        """The mapping of stream ``name``; an unknown name raises ``MappingError``."""
        if name not in self.streams:
            msg = _unknown("stream", name, self.streams).replace("unknown stream", "no mapping for stream", 1)
            raise MappingError([ConfigIssue(self.file, _q(name), msg)])
        return self.streams[name]

    def check_streams(self, names: Iterable[str]) -> list[ConfigIssue]:
        """Issues for streams this file maps that the connector (offering ``names``) does not have."""
        names = list(names)
        return [ConfigIssue(self.file, _q(s), _unknown("stream", s, names) + " (the connector has no such stream)")
                for s in self.streams if s not in names]


def compile_mapping(doc: dict, *, file: str, registry: TransformRegistry, ctx: TransformContext) -> MappingFile:
    """Check ``doc`` (a parsed mapping file) and compile each stream; all problems raise one ``MappingError``."""
    checker = _Checker(file, registry, ctx)
    if not isinstance(doc, dict):
        raise MappingError([ConfigIssue(file, "", f"expected a table of streams, got {_tname(doc)}")])
    streams = {name: checker.stream(name, table) for name, table in doc.items()}
    if not doc:
        checker.issue("", "the mapping has no streams: add a table like [orders] with target, key and fields")
    if checker.issues:
        raise MappingError(checker.issues)
    return MappingFile(file, {name: StreamMapping(s, file) for name, s in streams.items() if s is not None})


def load_mapping(path: Path, *, registry: TransformRegistry, ctx: TransformContext) -> MappingFile:
    """Read and compile the mapping file at ``path``; unreadable or invalid TOML raises ``MappingError``."""
    file = str(path)
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError([ConfigIssue(file, "", f"cannot read mapping file: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise MappingError([ConfigIssue(file, "", f"not UTF-8 text: {exc.reason} at byte {exc.start}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError([ConfigIssue(file, "", f"invalid TOML: {exc}")]) from None
    except RecursionError:  # tomllib recurses per nested array or inline table
        raise MappingError([ConfigIssue(file, "", "invalid TOML: arrays or tables nested too deeply")]) from None
    return compile_mapping(doc, file=file, registry=registry, ctx=ctx)
