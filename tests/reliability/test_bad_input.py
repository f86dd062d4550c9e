"""Bad input, fuzzed with hypothesis: mapping files, plugins.toml and raw records (deep nesting, huge strings, wrong
types, invalid UTF-8 and Big5 in CSV, NaN and 1e309 in JSON numbers). Every case ends in a clear error (a
StoresyncError naming the file, exit 2 through the CLI) or a quarantine entry: never another exception, never a
traceback, never a good record lost. (Raw records through a compiled mapping alone are fuzzed in
tests/core/test_mapping_properties.py; here they go through the files connector and the whole sync.)
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from campaign_jobs import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storesync.core import operations as ops
from storesync.core.errors import StoresyncError
from storesync.core.mapping import compile_mapping, load_mapping
from storesync.core.transforms import TransformContext, builtin_transforms

CTX = TransformContext(timezone="Asia/Hong_Kong", default_region="HK")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- a tiny TOML writer (tomllib only reads), so generated documents really go through the TOML parser -----------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string (a lone surrogate makes invalid TOML)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(doc: dict[str, Any], prefix: str = "") -> str:
    scalars = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    out = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    for key, value in doc.items():
        if isinstance(value, dict):
            out.append(to_toml(value, f"{prefix}.{json.dumps(key)}" if prefix else json.dumps(key)))
    return "\n".join(out) + "\n"


def nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"a": leaf}
    return leaf


HOSTILE_STRINGS = st.sampled_from([
    "", " ", "x" * 100_000, "../../etc/passwd", "/etc/passwd", "~/.ssh/id_rsa", "a.b[999999999999].c", "[*][*][*][*]",
    "${NOT_SET_ANYWHERE}", "${SECRET", "\x00", "é", "陳大文", "\ud800", "a..b", "a.[0]", "[", "]", "*", "nan", "1e309",
    "phone_e164", "decimal", "datetime", "upper", "customer", "order", "variant", "files", "shopify", "square",
    "odoo", "twilio", "sqlite:///x.db", "postgresql://u:p@127.0.0.1:1/db", "http://127.0.0.1:1", "1", "-1"])
SCALARS = (st.none().map(lambda _: "") | st.booleans() | st.integers(min_value=-2**63, max_value=2**63 - 1)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12) | HOSTILE_STRINGS)


def values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(keys, inner, max_size=4), max_leaves=10)


# -- mapping files --------------------------------------------------------------------------------------------

MAPPING_KEYS = st.sampled_from(["target", "key", "fields", "attributes", "each", "path", "paths", "transform",
                                "map", "default", "required", "value", "name", "email", "phone", "lines", "sku",
                                "quantity", "external_id", "*", "orders", "customers", "x"]) | st.text(max_size=6)


def _compiles_or_says_why(doc: dict[str, Any], tmp: Path) -> None:
    try:
        compile_mapping(doc, file="fuzz.toml", registry=builtin_transforms(), ctx=CTX)
    except StoresyncError as exc:
        assert str(exc).strip()
    path = tmp / "fuzz.toml"
    path.write_text(to_toml(doc), encoding="utf-8", errors="surrogatepass")
    try:
        load_mapping(path, registry=builtin_transforms(), ctx=CTX)
    except StoresyncError as exc:
        assert "fuzz.toml" in str(exc)  # the error names the file


@FUZZ
@given(st.dictionaries(MAPPING_KEYS, values(MAPPING_KEYS), max_size=4))
def test_any_mapping_document_compiles_or_raises_a_mapping_error(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _compiles_or_says_why(doc, Path(tmp))


@FUZZ
@given(st.sampled_from(["orders", "customers"]), st.dictionaries(MAPPING_KEYS, values(MAPPING_KEYS), max_size=6),
       st.sampled_from(["order", "customer", "variant", "nope", 5]), values(MAPPING_KEYS))
def test_near_valid_stream_tables_compile_or_raise_a_mapping_error(stream: str, fields: dict[str, Any], target: Any,
                                                                   key: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _compiles_or_says_why({stream: {"target": target, "key": key, "fields": fields}}, Path(tmp))


@pytest.mark.parametrize("doc", [
    {"orders": {"target": "order", "key": "id", "fields": nested(400, "x")}},
    {"orders": {"target": "order", "key": "id", "fields": {"name": {"path": "a." * 5000 + "b"}}}},
    {"orders": {"target": "order", "key": "x" * 1_000_000, "fields": {}}},
    {"orders": {"target": "order", "key": "id", "fields": {"name": {"map": {str(i): i for i in range(50_000)}}}}},
])
def test_extreme_mapping_documents_raise_a_mapping_error_or_compile(doc: dict[str, Any], tmp_path: Path) -> None:
    _compiles_or_says_why(doc, tmp_path)


def test_mapping_paths_cannot_reach_outside_the_record() -> None:
    """A source path is read inside the raw record only: no attribute access, no parent, no globals."""
    doc = {"orders": {"target": "order", "key": "id", "fields": {
        "note": {"paths": ["__class__.__init__.__globals__", "..", "../..", "__dict__", "id.__class__"]}}}}
    try:
        mapping = compile_mapping(doc, file="escape.toml", registry=builtin_transforms(), ctx=CTX)
    except StoresyncError:
        return  # refused outright: fine
    record = {"id": 1, "currency": "HKD", "total_price": "1", "created_at": "2024-01-01T00:00:00Z", "line_items": []}
    mapped = mapping.stream("orders")(record)
    assert mapped.get("note") in (None, "")


# -- plugins.toml ---------------------------------------------------------------------------------------------

CONFIG_KEYS = st.sampled_from(["storesync", "plugins", "connectors", "database", "timezone", "batch_size", "workers",
                               "type", "directory", "files", "pattern", "format", "encoding", "mapping", "streams",
                               "enabled", "shop", "access_token", "base_url", "http", "max_retries", "retry_budget",
                               "disable", "modules", "notifications", "inventory", "url", "api_key",
                               "account_sid", "auth_token", "from_number"]) | st.text(max_size=6)
CONNECTOR = st.fixed_dictionaries({"type": st.sampled_from(["files", "shopify", "square", "odoo", "twilio", "nope"])},
                                  optional={k: values(CONFIG_KEYS) for k in
                                            ["directory", "files", "mapping", "shop", "access_token", "base_url",
                                             "http", "url", "api_key", "streams", "enabled"]})


def _load_everything(path: Path) -> None:
    """What `storesync config check` does: load, build the plugin host, validate settings and mappings."""
    try:
        ops.Session.open(str(path)).check_config()
    except StoresyncError as exc:
        assert str(exc).strip()


@FUZZ
@given(st.fixed_dictionaries({}, optional={"storesync": st.dictionaries(CONFIG_KEYS, values(CONFIG_KEYS), max_size=4),
                                           "plugins": st.dictionaries(CONFIG_KEYS, values(CONFIG_KEYS), max_size=3),
                                           "connectors": st.dictionaries(st.sampled_from(["a", "b", "shop"]),
                                                                         CONNECTOR, max_size=2)}))
def test_any_plugins_toml_loads_or_raises_a_config_error(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plugins.toml"
        path.write_text(to_toml(doc), encoding="utf-8", errors="surrogatepass")
        _load_everything(path)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_as_plugins_toml_load_or_raise_a_config_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plugins.toml"
        path.write_bytes(data)
        _load_everything(path)


BAD_CONFIGS = {
    "invalid UTF-8": b'[storesync]\ndatabase = "sqlite:///\xff\xfe.db"\n',
    "Big5": '[connectors.till]\ntype = "files"\ndirectory = "匯出"\n'.encode("big5"),
    "deep nesting": ("[connectors.till]\ntype = \"files\"\ndirectory = " + "[" * 5000 + "]" * 5000 + "\n").encode(),
    "wrong types": b'[storesync]\nbatch_size = "many"\nworkers = [1]\n[connectors.till]\ntype = 5\n',
    "huge string": b'[connectors.till]\ntype = "files"\ndirectory = "' + b"d" * 2_000_000 + b'"\n',
    "nan and 1e309": b'[storesync]\nbatch_size = nan\n[connectors.s]\ntype = "shopify"\nshop = 1e309\n',
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_plugins_toml_through_the_cli_is_exit_2_with_one_clear_error(name: str, tmp_path: Path) -> None:
    (tmp_path / "plugins.toml").write_bytes(BAD_CONFIGS[name])
    proc = run_cli(tmp_path, "config", "check")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")
    assert "plugins.toml" in proc.stderr


# -- raw records through the files connector and the whole sync ------------------------------------------------

def good_order(i: int) -> bytes:
    return json.dumps({"id": i, "name": f"#{i}", "currency": "HKD", "total_price": f"{i}.00",
                       "created_at": "2024-01-01T00:00:00Z", "line_items": [
                           {"id": i, "sku": "TEA-1", "title": "Tea", "quantity": 1, "price": f"{i}.00"}]}).encode()


BAD_LINES = st.sampled_from([
    b'{"id": 900001, "total_price": NaN}', b'{"id": 900002, "total_price": 1e309}',
    b'{"id": 900003, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}", b'{"id": 900004, "name": "\xff\xfe\xfd"}',
    '{"id": 900005, "name": "陳大文"}'.encode("big5"), b"not json at all", b'{"id": 900006', b"[1, 2, 3]",
    b'"just a string"', b"\x00\x01\x02"])
#: wrong types in every field; ``{n}`` becomes a unique id per line
ODD_RECORDS = st.builds(lambda v: json.dumps({"id": "{n}", "currency": v, "total_price": v, "created_at": v,
                                              "line_items": v, "customer": v}).encode(),
                        st.sampled_from([None, 5, [1], {"a": 1}, "HUGE", True, -1e308, "", "NaN"])
                        .map(lambda v: "x" * 200_000 if v == "HUGE" else v))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), BAD_LINES | ODD_RECORDS), min_size=1, max_size=12, unique_by=lambda t: t[1]),
       st.binary(max_size=40).map(lambda b: b.replace(b'"', b"'")))  # an open quote swallows later rows (CSV)
def test_raw_records_are_stored_or_quarantined_and_no_good_record_is_lost(lines: list[tuple[bool, bytes]],
                                                                         csv_noise: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "exports").mkdir()
        body, good_ids = [], []
        for n, (good_first, bad) in enumerate(lines):
            bad = bad.replace(b'"{n}"', str(800_000 + n).encode())
            pair = [good_order(n + 1), bad] if good_first else [bad, good_order(n + 1)]
            body += pair
            good_ids.append(str(n + 1))
        (root / "exports" / "orders.jsonl").write_bytes(b"\n".join(body) + b"\n")
        csv = (b"id,email,phone,first_name,last_name,updated_at\nC1,a@example.com,,Ann,Lee,2024-05-01 10:00:00\n"
               b"C2,b@example.com,," + csv_noise.replace(b"\n", b" ").replace(b"\r", b" ") + b",Lee,2024-05-01\n"
               + "C3,c@example.com,,大文,陳,2024-05-01 10:00:00\n".encode("big5")
               + b"C4,d@example.com,,Dee,Ho,2024-05-01 10:00:00\n")
        (root / "exports" / "customers.csv").write_bytes(csv)
        (root / "plugins.toml").write_text(
            f'[storesync]\ndatabase = "sqlite:///{root / "store.db"}"\nbatch_size = 4\n[connectors.till]\n'
            'type = "files"\ndirectory = "exports"\n[connectors.till.files.orders]\npattern = "orders.jsonl"\n'
            '[connectors.till.files.customers]\npattern = "customers.csv"\n', encoding="utf-8")
        session = ops.Session.open(str(root / "plugins.toml"))
        (report,) = session.sync(None, streams=None, full_refresh=False, dry_run=False, remap=False, progress=False)
        assert report.error is None and all(s.error is None for s in report.streams), report
        engine = sa.create_engine(f"sqlite:///{root / 'store.db'}")
        with engine.connect() as conn:
            stored = {r[0] for r in conn.execute(sa.text("SELECT external_id FROM orders"))}
            customers = {r[0] for r in conn.execute(sa.text("SELECT external_id FROM customer"))}
            quarantined = conn.execute(sa.text("SELECT count(*) FROM quarantine")).scalar_one()
        engine.dispose()
        session.store.close()
        assert set(good_ids) <= stored  # no good record lost
        assert {"C1", "C4"} <= customers
        by_stream = {s.stream: s for s in report.streams}
        # every line read is either stored or quarantined
        assert by_stream["orders"].read == len(body)
        assert len(stored) + by_stream["orders"].quarantined == len(body)
        assert quarantined == sum(s.quarantined for s in report.streams)


def test_big5_csv_maps_with_its_encoding_set_and_is_quarantined_naming_the_encoding_without(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "customers.csv").write_bytes(
        "id,email,phone,first_name,last_name,updated_at\nC1,a@example.com,,大文,陳,2024-05-01 10:00:00\n"
        "C2,b@example.com,,Ann,Lee,2024-05-01 10:00:00\n".encode("big5"))
    base = (f'[storesync]\ndatabase = "sqlite:///{tmp_path / "store.db"}"\n[connectors.till]\ntype = "files"\n'
            'directory = "exports"\n[connectors.till.files.customers]\npattern = "customers.csv"\n')
    (tmp_path / "plugins.toml").write_text(base, encoding="utf-8")
    proc = run_cli(tmp_path, "sync", "--json", "--no-progress")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (quarantined,) = json.loads(run_cli(tmp_path, "quarantine", "list", "--json").stdout)
    assert "customers.csv line 2" in quarantined["reason"] and "utf-8" in quarantined["reason"]
    (tmp_path / "plugins.toml").write_text(base + 'encoding = "big5"\n', encoding="utf-8")
    proc = run_cli(tmp_path, "sync", "--json", "--no-progress", "--full-refresh")
    assert proc.returncode == 0, proc.stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.connect() as conn:
        names = dict(conn.execute(sa.text("SELECT external_id, first_name FROM customer")).all())
        left = conn.execute(sa.text("SELECT count(*) FROM quarantine")).scalar_one()
    engine.dispose()
    assert names == {"C1": "大文", "C2": "Ann"} and left == 0
