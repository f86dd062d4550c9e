"""Reading and validating mapping files: TOML stream tables into the internal spec objects.

``_Checker`` turns a parsed mapping document (a top-level table per stream) into ``_Stream``, ``_Nested`` and
``_Field`` objects, collecting every problem as a ``ConfigIssue`` (TOML key path, did-you-mean for unknown
names) instead of stopping at the first; ``parse_path`` parses source paths like ``"a.b[0].c[*]"``. No code is
generated here: ``mapping_codegen`` compiles the spec objects and the public API lives in ``mapping``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from .errors import ConfigIssue, MappingError, did_you_mean, known
from .models import ENTITIES, Canonical
from .transforms import TransformContext, TransformRegistry

_SPEC_KEYS = ("default", "map", "path", "paths", "required", "transform", "value")
_STREAM_KEYS = ("attributes", "fields", "key", "target")
_NESTED_KEYS = ("attributes", "each", "fields", "key")
_RESERVED = ("attributes", "external_id")
_MAX_STARS = 3


class _Star:
    def __repr__(self) -> str:
        return "[*]"


STAR = _Star()
Path_ = list[str | int | _Star]
_PART = re.compile(r"([^\[\]]+)((?:\[(?:-?\d+|\*)\])*)")
_INDEX = re.compile(r"\[(-?\d+|\*)\]")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MISSING = object()


# -- the parsed form ------------------------------------------------------------------------------------------

@dataclass
class _Field:
    name: str
    label: str  # the field name reported in record errors, e.g. "total" or "attributes.note"
    where: str  # the TOML key path
    fallbacks: list[Path_] = field(default_factory=list)
    every: list[Path_] | None = None
    value: Any = _MISSING
    transforms: list[Callable[[Any], Any]] = field(default_factory=list)
    mapping: dict[str, Any] | None = None
    map_default: Any = _MISSING
    default: Any = _MISSING
    required: bool = False


@dataclass
class _Nested:
    name: str
    where: str
    each: Path_
    key: Path_ | None
    fields: list[_Field]
    attributes: list[_Field]


@dataclass
class _Stream:
    name: str
    target: str
    model: type[Canonical]
    key: list[Path_]
    fields: list[_Field]
    attributes: list[_Field]
    nested: list[_Nested]


def _q(part: str) -> str:
    """One TOML key, quoted unless it is a bare key."""
    return part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)


def _kp(where: str, *parts: str) -> str:
    """The key path ``where`` (already formatted) extended by ``parts``."""
    return ".".join([where, *map(_q, parts)] if where else map(_q, parts))


def _unknown(what: str, name: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    return f"unknown {what} '{name}'{did_you_mean(name, choices) or ';'}{known(choices)}"


def _tname(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a float", list: "an array",
             dict: "a table"}
    return names.get(type(value), type(value).__name__)


def parse_path(text: Any) -> Path_:
    """Parse ``"a.b[0].c[*]"`` into segments: dict keys (str), list indices (int) and ``STAR``."""
    if not isinstance(text, str) or not text:
        got = "an empty string" if text == "" else _tname(text)
        raise ValueError(f"expected a source path like 'customer.email', got {got}")
    segments: Path_ = []
    for part in text.split("."):
        match = _PART.fullmatch(part)
        if not match:
            raise ValueError(f"bad source path {text!r}: expected keys joined by '.', with optional [0] or [*]")
        segments.append(match[1])
        segments.extend(STAR if i == "*" else int(i) for i in _INDEX.findall(match[2]))
    if sum(s is STAR for s in segments) > _MAX_STARS:
        raise ValueError(f"bad source path {text!r}: at most {_MAX_STARS} [*] per path")
    return segments


# -- checking a mapping file ----------------------------------------------------------------------------------

class _Checker:
    """Parses a mapping document, collecting every issue instead of stopping at the first."""

    def __init__(self, file: str, registry: TransformRegistry, ctx: TransformContext) -> None:
        self.file, self.registry, self.ctx = file, registry, ctx
        self.issues: list[ConfigIssue] = []

    def issue(self, key: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, key, message))

    def path(self, text: Any, where: str, *, star: bool = True) -> Path_ | None:
        try:
            segments = parse_path(text)
        except ValueError as exc:
            self.issue(where, str(exc))
            return None
        if not star and STAR in segments:
            self.issue(where, f"[*] is not allowed here: {text!r} must lead to one value")
            return None
        return segments

    def unknown_keys(self, table: dict, allowed: Iterable[str], where: str) -> None:
        allowed = list(allowed)
        for key in table:
            if key not in allowed:
                self.issue(_kp(where, key), _unknown("key", key, allowed))

    def transforms(self, spec: Any, where: str) -> list[Callable[[Any], Any]]:
        items = spec if isinstance(spec, list) else [spec]
        built = []
        for i, item in enumerate(items):
            at = f"{where}[{i}]" if isinstance(spec, list) else where
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                name, params = item["name"], {k: v for k, v in item.items() if k != "name"}
            elif isinstance(item, str):
                name, params = item, {}
            else:
                self.issue(at, f"expected a transform name, a table {{name = ..., param = ...}} or an array "
                               f"of them, got {_tname(item)}")
                continue
            try:
                built.append(self.registry.build(name, self.ctx, params, file=self.file, key=at))
            except MappingError as exc:
                self.issues.extend(exc.issues)
        return built

    def spec(self, name: str, spec: Any, where: str, label: str) -> _Field | None:
        out = _Field(name, label, where)
        if isinstance(spec, str):
            out.fallbacks = [p for p in [self.path(spec, where)] if p is not None]
            return out
        if not isinstance(spec, dict):
            self.issue(where, f"expected a source path string or an inline table {{path = ..., transform = ...}}, "
                              f"got {_tname(spec)}")
            return None
        self.unknown_keys(spec, _SPEC_KEYS, where)
        sources = [k for k in ("path", "paths", "value") if k in spec]
        if len(sources) != 1:
            self.issue(where, "expected exactly one of 'path', 'paths' or 'value'"
                              + (f", got {' and '.join(sources)}" if sources else ""))
        self.spec_source(out, spec, where)
        if "transform" in spec:
            out.transforms = self.transforms(spec["transform"], _kp(where, "transform"))
        if "map" in spec:
            self.spec_map(out, spec["map"], _kp(where, "map"))
        out.default = spec.get("default", _MISSING)
        out.required = spec.get("required", False)
        if not isinstance(out.required, bool):
            self.issue(_kp(where, "required"), f"expected true or false, got {_tname(out.required)}")
        return out

    def spec_source(self, out: _Field, spec: dict, where: str) -> None:
        if "path" in spec:
            paths = spec["path"] if isinstance(spec["path"], list) and spec["path"] else [spec["path"]]
            out.fallbacks = [p for t in paths if (p := self.path(t, _kp(where, "path"))) is not None]
        elif "paths" in spec:
            paths = spec["paths"]
            if not isinstance(paths, list) or not paths:
                self.issue(_kp(where, "paths"), f"expected a non-empty array of source paths, got {_tname(paths)}")
                return
            out.every = [p for t in paths if (p := self.path(t, _kp(where, "paths"))) is not None]
        elif "value" in spec:
            out.value = spec["value"]

    def spec_map(self, out: _Field, table: Any, where: str) -> None:
        if not isinstance(table, dict):
            self.issue(where, f"expected a table of source value = canonical value, got {_tname(table)}")
            return
        out.mapping = {k: v for k, v in table.items() if k != "*"}
        out.map_default = table.get("*", _MISSING)

    def fields(self, table: Any, where: str, allowed: list[str] | None, *,
               nested: Iterable[str] = (), attributes: bool = False) -> list[_Field]:
        if table is None:
            return []
        if not isinstance(table, dict):
            self.issue(where, f"expected a table, got {_tname(table)}")
            return []
        out = []
        for name, spec in table.items():
            at = _kp(where, name)
            if not attributes and allowed is not None and name not in allowed:
                self.issue(at, self.bad_field(name, where, allowed, nested))
            label = f"attributes.{name}" if attributes else name
            parsed = self.spec(name, spec, at, label)
            if parsed is not None:
                out.append(parsed)
        return out

    def bad_field(self, name: str, where: str, allowed: list[str], nested: Iterable[str]) -> str:
        parent = where.rsplit(".", 1)[0]
        if name == "external_id":
            return f"external_id comes from '{parent}.key'; set key = \"<source path>\" there"
        if name == "attributes":
            return f"extra source fields go in the table [{parent}.attributes]"
        if name in nested:
            return f"'{name}' is a nested list: describe it in the table [{parent}.{name}]"
        return _unknown("canonical field", name, allowed)

    def required_fields(self, model: type[BaseModel], mapped: list[_Field], where: str, what: str) -> None:
        names = {f.name for f in mapped}
        for name, info in model.model_fields.items():
            if info.is_required() and name not in _RESERVED and name not in names:
                self.issue(where, f"{what} requires field '{name}': map it (or give it a default)")

    def key(self, spec: Any, where: str) -> list[Path_]:
        parts = spec if isinstance(spec, list) and spec else [spec]
        if spec is None:
            self.issue(where, "missing: set key = \"<source path of the record's id>\" (or an array of paths)")
            return []
        return [p for t in parts if (p := self.path(t, where, star=False)) is not None]

    def nested(self, name: str, table: Any, where: str, item: type[BaseModel]) -> _Nested | None:
        if not isinstance(table, dict):
            self.issue(where, f"expected a table with each = \"<source path of the list>\", got {_tname(table)}")
            return None
        self.unknown_keys(table, _NESTED_KEYS, where)
        each = self.path(table.get("each"), _kp(where, "each")) if "each" in table else None
        if "each" not in table:
            self.issue(where, "missing 'each': the source path of the list, e.g. each = \"line_items\"")
        key = self.path(table["key"], _kp(where, "key"), star=False) if "key" in table else None
        if key is None and "key" not in table and item.model_fields["external_id"].is_required():
            self.issue(where, f"missing 'key': each {name} item needs an external id")
        allowed = [n for n in item.model_fields if n not in _RESERVED]
        fields = self.fields(table.get("fields"), _kp(where, "fields"), allowed)
        self.required_fields(item, fields, _kp(where, "fields"), f"each item of '{name}'")
        attributes = self.fields(table.get("attributes"), _kp(where, "attributes"), None, attributes=True)
        return _Nested(name, where, each or [], key, fields, attributes) if each is not None else None

    def stream(self, name: str, table: Any) -> _Stream | None:
        where = _q(name)
        if not isinstance(table, dict):
            self.issue(where, f"expected a table [{where}] describing a stream, got {_tname(table)}")
            return None
        target = table.get("target")
        model = ENTITIES.get(target) if isinstance(target, str) else None
        if model is None:
            shown = target if isinstance(target, str) else _tname(target) if target is not None else "nothing"
            self.issue(_kp(where, "target"), _unknown("target", shown, ENTITIES))
        nested = _nested_fields(model) if model else {}
        self.unknown_keys(table, [*_STREAM_KEYS, *nested], where)
        key = self.key(table.get("key"), _kp(where, "key"))
        allowed = [n for n in model.model_fields if n not in _RESERVED and n not in nested] if model else None
        fields = self.fields(table.get("fields"), _kp(where, "fields"), allowed, nested=nested)
        if model:
            self.required_fields(model, fields, _kp(where, "fields"), f"target '{target}'")
        attributes = self.fields(table.get("attributes"), _kp(where, "attributes"), None, attributes=True)
        subs = [self.nested(n, table[n], _kp(where, n), item) for n, item in nested.items() if n in table]
        if model is None:
            return None
        return _Stream(name, target, model, key, fields, attributes, [s for s in subs if s is not None])


def _nested_fields(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Fields of ``model`` that are lists of models (order lines, product variants), with the item model."""
    out = {}
    for name, info in model.model_fields.items():
        args = get_args(info.annotation)
        if get_origin(info.annotation) is list and args and isinstance(args[0], type) \
                and issubclass(args[0], BaseModel):
            out[name] = args[0]
    return out
