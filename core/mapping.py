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
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .errors import ConfigIssue, MappingError, RecordMappingError, did_you_mean, known
from .models import ENTITIES, Canonical
from .transforms import TransformContext, TransformRegistry

__all__ = ["MappingFile", "StreamMapping", "compile_mapping", "load_mapping"]

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


# -- code generation ------------------------------------------------------------------------------------------

class _Code:
    """Generated source lines plus the constants they reference by generated names only."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: list[Any] = []
        self.depth = 2
        self.count = 0

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    def const(self, value: Any) -> str:
        self.consts.append(value)
        return f"c{len(self.consts) - 1}"

    def copy_of(self, value: Any) -> str:
        name = self.const(value)
        return f"_deepcopy({name})" if isinstance(value, list | dict) else name

    def tmp(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def open(self, header: str) -> None:
        self.line(header)
        self.depth += 1

    def close(self, levels: int = 1) -> None:
        self.depth -= levels


def _emit_path(code: _Code, path: Path_, base: str, out: str) -> None:
    """Emit lines leaving the value at ``path`` under ``base`` (known to be a dict) in variable ``out``."""
    code.line(f"{out} = {base}.get({code.const(path[0])})")
    _emit_steps(code, path[1:], out, None)


def _emit_steps(code: _Code, path: Path_, var: str, acc: str | None) -> None:
    for i, seg in enumerate(path):
        if seg is STAR:
            _emit_star(code, path[i + 1:], var, acc)
            return
        if isinstance(seg, str):
            code.line(f"{var} = {var}.get({code.const(seg)}) if isinstance({var}, dict) else None")
        else:
            cond = f"len({var}) > {int(seg)}" if seg >= 0 else f"len({var}) >= {-int(seg)}"
            code.line(f"{var} = {var}[{int(seg)}] if isinstance({var}, list) and {cond} else None")
    if acc is not None:
        code.line(f"if {var} is not None: {acc}.append({var})")


def _emit_star(code: _Code, rest: Path_, var: str, acc: str | None) -> None:
    """``[*]``: apply ``rest`` to each item; nested stars flatten into the outermost list."""
    code.open(f"if isinstance({var}, list):")
    own = acc is None
    if own:
        acc = code.tmp("a")
        code.line(f"{acc} = []")
    item = code.tmp("i")
    code.open(f"for {item} in {var}:")
    _emit_steps(code, rest, item, acc)
    code.close()
    if own:
        code.line(f"{var} = {acc}")
        code.close()
        code.open("else:")
        code.line(f"{var} = None")
    code.close()


def _emit_field(code: _Code, spec: _Field, base: str, out: str, index: int) -> None:
    code.line(f"f = {index}")
    if spec.every is not None:
        parts = [code.tmp("p") for _ in spec.every]
        for part, path in zip(parts, spec.every):
            _emit_path(code, path, base, part)
        code.line(f"v = [{', '.join(parts)}]")
    elif spec.value is not _MISSING:
        code.line(f"v = {code.copy_of(spec.value)}")
    else:
        _emit_fallbacks(code, spec.fallbacks, base)
    for fn in spec.transforms:
        code.line(f"if v is not None and v != '': v = {code.const(fn)}(v)")
    if spec.mapping is not None:
        missing = "v" if spec.map_default is _MISSING else code.const(spec.map_default)
        code.line(f"if v is not None and v != '': v = {code.const(spec.mapping)}.get("
                  f"v if v.__class__ is str else _mkey(v), {missing})")
        if any(isinstance(x, list | dict) for x in [*spec.mapping.values(), spec.map_default]):
            code.line("v = _deepcopy(v)")
    if spec.default is not _MISSING:
        code.line(f"if v is None or v == '': v = {code.copy_of(spec.default)}")
    if spec.name.endswith("_external_id") and spec.label == spec.name:  # ids of canonical fields, not attributes
        code.line("if v is not None and v.__class__ is not str: v = str(v) if v.__class__ is int else _keypart(v)")
    if spec.required:
        code.line(f"if v is None or v == '': raise ValueError({code.const(_required_message(spec))})")
    code.line(f"if v is not None and v != '': {out}[{code.const(spec.name)}] = v")


def _emit_fallbacks(code: _Code, paths: list[Path_], base: str) -> None:
    if not paths:
        code.line("v = None")
        return
    _emit_path(code, paths[0], base, "v")
    for path in paths[1:]:  # sequential, not nested: a long fallback list must not nest deeply
        code.open("if v is None or v == '':")
        _emit_path(code, path, base, "v")
        code.close()


def _required_message(spec: _Field) -> str:
    paths = spec.every or spec.fallbacks
    shown = ", ".join(repr(_show_path(p)) for p in paths) or "its value"
    return f"required value is missing or empty (source: {shown})"


def _show_path(path: Path_) -> str:
    text = ""
    for seg in path:
        text += f"[{seg}]" if not isinstance(seg, str) else (f".{seg}" if text else seg)
    return text


def _emit_key(code: _Code, paths: list[Path_]) -> None:
    code.line("f = 0")
    parts = []
    for path in paths:
        part = code.tmp("k")
        _emit_path(code, path, "r", part)
        code.line(f"{part} = {part} if {part}.__class__ is str and {part} else "
                  f"str({part}) if {part}.__class__ is int else _keypart({part})")
        parts.append(part)
    code.line("key = " + f" + {code.const(':')} + ".join(parts) if parts else "key = None")


def _emit_nested(code: _Code, sub: _Nested, table: list[tuple[str, str | None, str]]) -> None:
    table.append((sub.name, None, sub.where))
    code.line(f"f = {len(table) - 1}")
    _emit_path(code, sub.each, "r", "s")
    code.line("n_list = []")
    code.open("if s is not None:")
    code.line(f"if not isinstance(s, list): raise TypeError(_expected('an array', s, {code.const(sub.where)}))")
    code.open("for li, e in enumerate(s):")
    code.line(f"if not isinstance(e, dict): raise TypeError(_expected('an object', e, {code.const(sub.where)}))")
    code.line("n = {}")
    if sub.key is not None:
        table.append(("external_id", sub.name, _kp(sub.where, "key")))
        code.line(f"f = {len(table) - 1}")
        _emit_path(code, sub.key, "e", "v")
        code.line(f"if v is not None and v != '': n[{code.const('external_id')}] = "
                  "str(v) if v.__class__ is int else _keypart(v)")
    _emit_fields(code, sub.fields, sub.attributes, "e", "n", table, sub.name)
    code.line("n_list.append(n)")
    code.close()
    code.line("li = -1")
    code.close()
    code.line(f"o[{code.const(sub.name)}] = n_list")


def _emit_fields(code: _Code, fields: list[_Field], attributes: list[_Field], base: str, out: str,
                 table: list[tuple[str, str | None, str]], nested: str | None) -> None:
    for spec in fields:
        table.append((spec.label, nested, spec.where))
        _emit_field(code, spec, base, out, len(table) - 1)
    attrs = code.tmp("at")
    code.line(f"{attrs} = {{}}")
    for spec in attributes:
        table.append((spec.label, nested, spec.where))
        _emit_field(code, spec, base, attrs, len(table) - 1)
    code.line(f"{out}[{code.const('attributes')}] = {attrs}")


def _generate(stream: _Stream, file: str) -> tuple[str, tuple, list[tuple[str, str | None, str]]]:
    """Python source of ``_make(C) -> (_key, _map)`` for ``stream``, its constants and its field table."""
    code = _Code()
    table: list[tuple[str, str | None, str]] = [("external_id", None, _kp("", stream.name, "key"))]
    _emit_key(code, stream.key)
    key_lines, code.lines = code.lines, []
    code.line(f"o = {{{code.const('external_id')}: key}}")
    _emit_fields(code, stream.fields, stream.attributes, "r", "o", table, None)
    for sub in stream.nested:
        _emit_nested(code, sub, table)
    body = code.lines
    head = ["def _make(C):", *(f"    c{i} = C[{i}]" for i in range(len(code.consts)))]
    guard = ["        if not isinstance(r, dict): raise _not_a_record(r)",
             "        key = None; f = 0; li = -1", "        try:"]
    tail = ["        except _RME: raise", "        except Exception as exc: raise _fail(exc, key, f, li) from exc"]
    indent = lambda lines: ["    " + x for x in lines]  # noqa: E731
    src = [*head, "    def _key(r):", *guard, *indent(key_lines), "            return key", *tail,
           "    def _map(r):", *guard, *indent(key_lines), *indent(body), "            return o", *tail,
           "    return _key, _map"]
    return "\n".join(src) + "\n", tuple(code.consts), table


def _keypart(value: Any) -> str:
    if isinstance(value, str):
        if value:
            return value
        raise ValueError("external id is empty")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None:
        raise ValueError("external id is missing")
    raise TypeError(f"external id must be a string or an integer, got {_tname(value)}")


def _mkey(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _expected(what: str, value: Any, where: str) -> str:
    return f"expected {what} for {where}, got {_tname(value)}"


def _not_a_record(value: Any) -> RecordMappingError:
    return RecordMappingError(f"expected a record object (dict), got {_tname(value)}")


def _failer(file: str, table: list[tuple[str, str | None, str]]) -> Callable[..., RecordMappingError]:
    def fail(exc: Exception, key: str | None, index: int, line: int) -> RecordMappingError:
        label, nested, where = table[index]
        name = f"{nested}[{line}].{label}" if nested and line >= 0 else label
        text = str(exc) if isinstance(exc, ValueError | TypeError) and str(exc) else f"{type(exc).__name__}: {exc}"
        return RecordMappingError(f"{text} (mapping {file}: {where})", record_key=key, field=name)
    return fail


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
    return compile_mapping(doc, file=file, registry=registry, ctx=ctx)
