"""Generating and compiling Python source for one stream mapping, plus the helpers that source calls.

``_generate`` turns a checked ``_Stream`` (from ``mapping_spec``) into straight-line source for
``_make(C) -> (_key, _map)``; the ``_emit_*`` functions write it line by line through ``_Code``, which hands
every key, path, constant and transform callable to the generated code through a constants tuple, so no TOML
text is ever interpolated into the source. ``_keypart``, ``_mkey``, ``_expected``, ``_not_a_record`` and
``_failer`` are the run-time helpers the generated code calls; ``StreamMapping`` in ``mapping`` places them in
the namespace it ``exec``-s the source in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import RecordMappingError
from .mapping_spec import _MISSING, STAR, Path_, _Field, _Nested, _Stream, _kp, _tname

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
