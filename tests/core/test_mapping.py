"""TOML mappings: file checking, compiled behaviour, record errors, real Shopify payloads."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from shared_fixtures import fixture_path

from storesync.core.errors import MappingError, PluginError, RecordMappingError
from storesync.core.mapping import MappingFile, compile_mapping, load_mapping
from storesync.core.models import Customer, InventoryLevel, Order, Product
from storesync.core.transforms import TransformContext, builtin_transforms

MAPPINGS = Path(__file__).resolve().parents[1] / "fixtures" / "mappings"
CTX = TransformContext(timezone="Asia/Hong_Kong", default_region="HK")

MINIMAL = """
[orders]
target = "order"
key = "id"
[orders.fields]
currency = { path = "currency", default = "HKD" }
created_at = { path = "created_at", transform = "datetime", required = true }
"""


def compile_toml(text: str, *, registry=None, ctx: TransformContext = CTX) -> MappingFile:
    return compile_mapping(tomllib.loads(text), file="test.toml", registry=registry or builtin_transforms(), ctx=ctx)


def issues_of(text: str) -> list[str]:
    with pytest.raises(MappingError) as info:
        compile_toml(text)
    return [f"{i.key}: {i.message}" for i in info.value.issues]


def field(spec: str, raw: dict, *, name: str = "x", target: str = "customer", **kw):
    """Map ``raw`` through one attribute spec ``spec`` and return the attribute (``None`` if left out)."""
    mapping = compile_toml(f'[s]\ntarget = "{target}"\nkey = "id"\n[s.attributes]\n"{name}" = {spec}\n', **kw)
    return mapping.stream("s")({"id": 1, **raw})["attributes"].get(name)


def shopify(name: str) -> dict:
    doc = json.loads(fixture_path("shopify_python_api", f"{name}.json").read_text())
    return next(iter(doc.values()))


@pytest.fixture(scope="module")
def orders():
    return load_mapping(MAPPINGS / "shopify_orders.toml", registry=builtin_transforms(), ctx=CTX).stream("orders")


@pytest.fixture(scope="module")
def catalog() -> MappingFile:
    return load_mapping(MAPPINGS / "shopify_catalog.toml", registry=builtin_transforms(), ctx=CTX)


# -- real Shopify payloads ----------------------------------------------------------------------------------

def test_real_shopify_order_maps_and_validates(orders):
    raw = shopify("order")
    order = orders.to_model(raw)
    assert isinstance(order, Order)
    assert order.external_id == "450789469" and order.number == "#1001"
    assert order.email == "bob.norman@hostmail.com" and order.customer_external_id == "207119551"
    assert order.currency == "USD" and order.total == Decimal("409.94") and order.subtotal == Decimal("398.00")
    assert order.status == "open" and order.financial_status == "authorized"
    assert order.created_at == datetime(2008, 1, 10, 11, tzinfo=timezone(timedelta(hours=-5)))
    assert [line.sku for line in order.lines] == ["IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK"]
    assert order.lines[0].external_id == "466157049" and order.lines[0].variant_external_id == "39072856"
    assert order.lines[0].quantity == 1 and order.lines[0].unit_price == Decimal("199.00")
    assert order.lines[0].attributes == {"product_id": 632910392}
    assert order.attributes == {}  # no note, no tags in this payload
    assert orders.key(raw) == "450789469"


def test_real_shopify_orders_list_maps(orders):
    for raw in json.loads(fixture_path("shopify_python_api", "orders.json").read_text())["orders"]:
        order = orders.to_model(raw)
        assert order.phone == "+557734881234" and order.total == Decimal("598.94")


def test_real_shopify_product_with_variants(catalog):
    product = catalog.stream("products").to_model(shopify("product"))
    assert isinstance(product, Product)
    assert product.tags == ["Emotive", "Flash Memory", "MP3", "Music"]
    assert product.status == "active"  # absent in the payload: the default applies
    assert product.attributes["handle"] == "ipod-nano" and len(product.attributes["image_ids"]) >= 1
    variant = product.variants[0]
    assert variant.external_id == "808950810" and variant.sku == "IPOD2008PINK" and variant.price == Decimal("199.00")
    assert variant.product_external_id == "632910392" and variant.currency == "USD"
    assert variant.inventory_item_id == "808950810"  # fallback to the variant id, stringified by 'str'
    assert variant.tracked is True and variant.attributes == {"option1": "Pink", "grams": 200}


def test_real_shopify_inventory_level_composite_key(catalog):
    stream = catalog.stream("inventory_levels")
    level = stream.to_model(shopify("inventory_level"))
    assert isinstance(level, InventoryLevel)
    assert level.external_id == "808950810:905684977" == stream.key(shopify("inventory_level"))
    assert level.location_external_id == "905684977" and level.available == 6


def test_real_shopify_customer(catalog):
    customer = catalog.stream("customers").to_model(shopify("customer"))
    assert isinstance(customer, Customer)
    assert customer.full_name == "Bob Norman" and customer.city == "Louisville"
    assert customer.phone == "+15556251199"  # from default_address.phone, region param US
    assert customer.tags == [] and customer.email_consent is False and customer.country_code == "US"
    assert customer.attributes == {"total_spent": Decimal("41.94"), "orders count": 1}


# -- file errors --------------------------------------------------------------------------------------------

def test_bad_file_reports_every_issue_at_once():
    with pytest.raises(MappingError) as info:
        load_mapping(MAPPINGS / "bad_many.toml", registry=builtin_transforms(), ctx=CTX)
    issues = {i.key: i.message for i in info.value.issues}
    assert all(i.file.endswith("bad_many.toml") for i in info.value.issues)
    assert issues["orders.feilds"].startswith("unknown key 'feilds'; did you mean 'fields'?")
    assert "did you mean 'lines'?" in issues["orders.line"]
    assert issues["orders.fields.currency.trasform"].startswith("unknown key 'trasform'; did you mean 'transform'?")
    assert issues["orders.fields.created_at.transform"].startswith(
        "unknown transform 'datetme'; did you mean 'datetime'? known: bool, concat,")
    assert issues["orders.fields.created_at.required"] == "expected true or false, got a string"
    assert "unknown canonical field 'totl'; did you mean 'total'? known: cancelled_at," in issues["orders.fields.totl"]
    assert "did you mean 'sep'? accepted: sep" in issues["orders.fields.email.transform[1]"]
    assert "expected a table" in issues["orders.fields.status.map"]
    assert "got an integer" in issues["orders.fields.number"]
    assert "exactly one of 'path', 'paths' or 'value'" in issues["orders.fields.phone"]
    assert "[orders.lines]" in issues["orders.fields.lines"]
    assert "orders.key" in issues["orders.fields.external_id"]
    assert "unknown canonical field 'qty'; known: fulfilled_quantity, quantity," in issues["orders.lines.fields.qty"]
    assert "requires field 'quantity'" in issues["orders.lines.fields"]
    assert issues["customers.target"].startswith("unknown target 'custmer'; did you mean 'customer'? known: customer,")
    assert "[*] is not allowed" in issues["customers.key"]
    assert len(info.value.issues) == 16
    assert str(info.value).splitlines()[0].endswith(
        "bad_many.toml: orders.feilds: unknown key 'feilds'; did you mean 'fields'? "
        "known: attributes, fields, key, lines, target")


def test_toml_syntax_error_names_file_line_and_column():
    with pytest.raises(MappingError) as info:
        load_mapping(MAPPINGS / "bad_syntax.toml", registry=builtin_transforms(), ctx=CTX)
    assert info.value.issues[0].file.endswith("bad_syntax.toml")
    assert "invalid TOML" in str(info.value) and "line 6, column 15" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(MappingError, match="nope.toml: cannot read mapping file"):
        load_mapping(tmp_path / "nope.toml", registry=builtin_transforms(), ctx=CTX)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[s]\ntarget = "caf\xe9"\n')
    with pytest.raises(MappingError, match="not UTF-8"):
        load_mapping(path, registry=builtin_transforms(), ctx=CTX)


@pytest.mark.parametrize(("text", "key", "message"), [
    ('[s]\ntarget = "order"\n', "s.key", "missing: set key"),
    ('[s]\nkey = "id"\n', "s.target", "unknown target 'nothing'"),
    ('[s]\ntarget = 3\nkey = "id"\n', "s.target", "unknown target 'an integer'"),
    ('version = 1\n', "version", "expected a table [version] describing a stream, got an integer"),
    ('[s]\ntarget = "customer"\nkey = "id"\nfields = "email"\n', "s.fields", "expected a table, got a string"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\nemail = { paths = "a" }\n', "s.fields.email.paths",
     "expected a non-empty array of source paths"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\nemail = { path = 42 }\n', "s.fields.email.path",
     "expected a source path like 'customer.email', got an integer"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\nemail = { path = "a", value = "b" }\n', "s.fields.email",
     "got path and value"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\nemail = { path = "a", transform = 5 }\n',
     "s.fields.email.transform", "expected a transform name, a table {name = ..., param = ...} or an array"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\nemail = { path = "a", transform = "emial" }\n',
     "s.fields.email.transform", "unknown transform 'emial'; did you mean 'email'?"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\nemail = "a..b"\n', "s.fields.email", "bad source path 'a..b'"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\nemail = "[0]"\n', "s.fields.email", "bad source path"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\nemail = "a[x]"\n', "s.fields.email", "bad source path"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\nemail = "a[*].b[*].c[*].d[*]"\n', "s.fields.email",
     "at most 3 [*]"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\nattributes = "a"\n', "s.fields.attributes",
     "extra source fields go in the table [s.attributes]"),
    ('[s]\ntarget = "customer"\nkey = "id"\n[s.lines]\neach = "x"\n', "s.lines",
     "unknown key 'lines'; known: attributes, fields, key, target"),
    ('[s]\ntarget = "product"\nkey = "id"\n[s.variant]\neach = "variants"\n', "s.variant",
     "unknown key 'variant'; did you mean 'variants'?"),
    ('[s]\ntarget = "product"\nkey = "id"\n[s.variants]\nkey = "id"\n', "s.variants", "missing 'each'"),
    ('[s]\ntarget = "product"\nkey = "id"\n[s.variants]\neach = "v"\n', "s.variants",
     "missing 'key': each variants item needs an external id"),
    ('[s]\ntarget = "product"\nkey = "id"\nvariants = 3\n', "s.variants", "expected a table with each ="),
    ('[s]\ntarget = "order"\nkey = "id"\n', "s.fields", "target 'order' requires field 'currency'"),
    ('[s]\ntarget = "order"\nkey = "id"\n[s.lines]\neach = "l"\nkee = "id"\n', "s.lines.kee",
     "unknown key 'kee'; did you mean 'key'?"),
])
def test_file_errors(text, key, message):
    found = issues_of(text)
    assert any(i.startswith(f"{key}: ") and message in i for i in found), found


def test_empty_mapping_is_an_error():
    assert issues_of("") == [": the mapping has no streams: add a table like [orders] with target, key and fields"]


def test_unknown_stream_and_check_streams(orders):
    mapping = compile_toml(MINIMAL)
    with pytest.raises(MappingError, match="no mapping for stream 'order'; did you mean 'orders'\\? known: orders"):
        mapping.stream("order")
    issues = mapping.check_streams(["order", "customers"])
    assert [(i.file, i.key) for i in issues] == [("test.toml", "orders")]
    assert "unknown stream 'orders'; did you mean 'order'?" in issues[0].message
    assert mapping.check_streams(["orders"]) == []


# -- field behaviour ----------------------------------------------------------------------------------------

def test_fallback_paths_first_non_empty_wins():
    spec = '{ path = ["a", "b.c", "d"] }'
    assert field(spec, {"a": "A", "b": {"c": "C"}}) == "A"
    assert field(spec, {"a": "", "b": {"c": "C"}}) == "C"
    assert field(spec, {"a": None, "b": {"c": None}, "d": 0}) == 0
    assert field(spec, {"b": "not a dict"}) is None


def test_many_fallbacks_and_fields_compile():
    paths = ", ".join(f'"p{i}.q"' for i in range(150))
    assert field(f"{{ path = [{paths}] }}", {"p149": {"q": "last"}}) == "last"
    many = "\n".join(f'"a{i}" = "s{i}[0].t[*].u"' for i in range(300))
    stream = compile_toml(f'[s]\ntarget = "customer"\nkey = "id"\n[s.attributes]\n{many}\n').stream("s")
    assert stream({"id": 1, "s299": [{"t": [{"u": 1}, {"u": 2}]}]})["attributes"] == {"a299": [1, 2]}


def test_ids_are_stringified_only_for_canonical_id_fields():
    text = '[s]\ntarget = "order"\nkey = "id"\n[s.fields]\ncurrency = { value = "HKD" }\n' \
           'created_at = { value = 2024-07-01T00:00:00Z }\ncustomer_external_id = "c"\n' \
           '[s.attributes]\nlegacy_external_id = "c"\n'
    out = compile_toml(text).stream("s")({"id": 1, "c": 42})
    assert out["customer_external_id"] == "42" and out["attributes"] == {"legacy_external_id": 42}
    with pytest.raises(RecordMappingError, match="must be a string or an integer, got a float") as info:
        compile_toml(text).stream("s")({"id": 1, "c": 4.2})
    assert info.value.field == "customer_external_id"


def test_document_must_be_a_table():
    with pytest.raises(MappingError, match="expected a table of streams, got an array"):
        compile_mapping([], file="x.toml", registry=builtin_transforms(), ctx=CTX)  # type: ignore[arg-type]


def test_map_with_and_without_star():
    star = '{ path = "s", map = { paid = "closed", "1" = "one", true = "yes", "*" = "open" } }'
    assert field(star, {"s": "paid"}) == "closed"
    assert field(star, {"s": "weird"}) == "open"
    assert field(star, {"s": 1}) == "one"  # keys compare as strings
    assert field(star, {"s": True}) == "yes"  # booleans as TOML spells them
    assert field(star, {}) is None  # empty values are not mapped
    assert field(star, {"s": ""}) is None
    plain = '{ path = "s", map = { paid = "closed" } }'
    assert field(plain, {"s": "paid"}) == "closed"
    assert field(plain, {"s": "refunded"}) == "refunded"


def test_order_transform_map_default_required():
    spec = '{ path = "s", transform = ["strip", "lower"], map = { paid = "closed" }, default = "open" }'
    assert field(spec, {"s": "  PAID "}) == "closed"
    assert field(spec, {"s": ""}) == "open"
    assert field(spec, {}) == "open"
    assert field('{ path = "s", default = 0 }', {"s": None}) == 0


def test_blank_strings_are_empty_skip_transforms_and_are_left_out():
    text = """
[s]
target = "customer"
key = "id"
[s.fields]
email = { path = "email", transform = "email" }
birth_date = { path = "birth_date", transform = "date" }
email_consent = { path = "consent", transform = "bool", default = false }
tags = { path = "tags", transform = "split" }
"""
    stream = compile_toml(text).stream("s")
    out = stream({"id": "c1", "email": "", "birth_date": "", "consent": "", "tags": ""})
    assert out == {"external_id": "c1", "email_consent": False, "attributes": {}}
    assert stream.to_model({"id": "c1", "email": "", "birth_date": ""}).email is None
    assert stream({"id": "c1", "tags": "a,b", "consent": "yes"})["tags"] == ["a", "b"]


def test_value_constant_is_not_shared_between_records():
    mapping = compile_toml('[s]\ntarget = "customer"\nkey = "id"\n[s.fields]\ntags = { value = ["vip"] }\n')
    first = mapping.stream("s")({"id": 1})
    first["tags"].append("mutated")
    assert mapping.stream("s")({"id": 2})["tags"] == ["vip"]
    assert field('{ value = "web" }', {"x": "ignored"}) == "web"


def test_paths_concat_and_star_and_indexes():
    assert field('{ paths = ["f", "l"], transform = "concat" }', {"f": "Tai Man", "l": "Chan"}) == "Tai Man Chan"
    assert field('{ paths = ["f", "l"] }', {"f": "a"}) == ["a", None]
    items = {"items": [{"sku": "A", "p": [{"n": 1}, {"n": 2}]}, {"sku": None}, "junk", {"sku": "B", "p": [{"n": 3}]}]}
    assert field('"items[*].sku"', items) == ["A", "B"]
    assert field('"items[*].p[*].n"', items) == [1, 2, 3]
    assert field('"items[*].sku"', {"items": {"sku": "A"}}) is None
    assert field('"items[0].sku"', items) == "A"
    assert field('"items[-1].sku"', items) == "B"
    assert field('"items[9].sku"', items) is None
    assert field('"m[1][0]"', {"m": [[1], [2, 3]]}) == 2
    assert field('"items[*]"', {"items": [1, None, 2]}) == [1, 2]


def test_required_and_record_errors_carry_key_and_field():
    stream = compile_toml(MINIMAL).stream("orders")
    with pytest.raises(RecordMappingError) as info:
        stream({"id": 7, "created_at": None})
    err = info.value
    assert (err.record_key, err.field) == ("7", "created_at")
    assert "required value is missing or empty (source: 'created_at')" in str(err)
    assert "test.toml: orders.fields.created_at" in str(err)
    with pytest.raises(RecordMappingError, match="required value is missing or empty"):
        stream({"id": 7, "created_at": ""})  # "" is empty: it skips the transform, then fails the check
    with pytest.raises(RecordMappingError) as info:
        stream({"id": "A-1", "created_at": "2024-13-01"})
    assert (info.value.record_key, info.value.field) == ("A-1", "created_at")
    assert "not a valid ISO 8601 datetime: '2024-13-01'" in str(info.value)


@pytest.mark.parametrize(("raw", "message"), [
    ({}, "external id is missing"), ({"id": ""}, "external id is empty"), ({"id": None}, "external id is missing"),
    ({"id": {"a": 1}}, "must be a string or an integer, got a table"), ({"id": True}, "got a boolean"),
    ({"id": 1.5}, "got a float")])
def test_bad_keys(raw, message):
    stream = compile_toml(MINIMAL).stream("orders")
    for call in (stream, stream.key, stream.to_model):
        with pytest.raises(RecordMappingError) as info:
            call(raw)
        assert info.value.field == "external_id" and info.value.record_key is None
        assert message in str(info.value)


@pytest.mark.parametrize("raw", [None, [], "x", 5, [{"id": 1}]])
def test_non_dict_records(raw):
    stream = compile_toml(MINIMAL).stream("orders")
    for call in (stream, stream.key, stream.to_model):
        with pytest.raises(RecordMappingError, match="expected a record object"):
            call(raw)


def test_composite_key_with_nested_paths():
    text = '[s]\ntarget = "inventory_level"\nkey = ["item.id", "loc"]\n[s.fields]\nlocation_external_id = "loc"\n'
    stream = compile_toml(text).stream("s")
    assert stream.key({"item": {"id": 5}, "loc": "L1"}) == "5:L1"
    assert stream({"item": {"id": 5}, "loc": 9})["location_external_id"] == "9"
    with pytest.raises(RecordMappingError) as info:
        stream.key({"item": {"id": 5}})
    assert info.value.field == "external_id"


def test_nested_lines_with_attributes_and_errors(orders):
    raw = {"id": 1, "total_price": "10", "created_at": "2024-07-01T10:00:00+08:00", "note": "hi",
           "line_items": [{"id": 11, "sku": "A", "quantity": "2", "price": "5", "product_id": 9},
                          {"sku": "B", "quantity": 1}]}
    out = orders(raw)
    assert out["lines"] == [
        {"external_id": "11", "sku": "A", "quantity": 2, "unit_price": Decimal("5"), "attributes": {"product_id": 9}},
        {"sku": "B", "quantity": 1, "attributes": {}}]
    assert out["attributes"] == {"note": "hi"} and out["currency"] == "HKD" and out["status"] == "open"
    assert orders({**raw, "line_items": None})["lines"] == []
    bad = {**raw, "line_items": [raw["line_items"][0], {"sku": "B", "quantity": "two"}]}
    with pytest.raises(RecordMappingError) as info:
        orders(bad)
    assert (info.value.record_key, info.value.field) == ("1", "lines[1].quantity")
    assert "not an integer: 'two'" in str(info.value)
    with pytest.raises(RecordMappingError) as info:
        orders({**raw, "line_items": {"id": 1}})
    assert info.value.field == "lines" and "expected an array for orders.lines, got a table" in str(info.value)
    with pytest.raises(RecordMappingError) as info:
        orders({**raw, "line_items": ["x"]})
    assert info.value.field == "lines" and "expected an object" in str(info.value)
    with pytest.raises(RecordMappingError) as info:
        orders({**raw, "line_items": [{"sku": "A"}]})
    assert info.value.field == "lines[0].quantity" and "required value" in str(info.value)
    # after the loop a later error must not be attributed to a line
    with pytest.raises(RecordMappingError) as info:
        orders({**raw, "line_items": [], "total_price": "abc"})
    assert info.value.field == "total"


def test_none_fields_are_left_out_so_model_defaults_apply(orders):
    out = orders({"id": 1, "total_price": "1", "created_at": "2024-07-01T10:00:00Z", "cancelled_at": None})
    assert "cancelled_at" not in out and "email" not in out and out["status"] == "open"
    cancelled = orders({"id": 1, "total_price": "1", "created_at": "2024-07-01T10:00:00Z",
                        "cancelled_at": "2024-07-02T10:00:00Z"})
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] == datetime(2024, 7, 2, 10, tzinfo=UTC)


def test_to_model_reports_pydantic_field(orders):
    base = {"id": 3, "total_price": "1", "created_at": "2024-07-01T10:00:00Z"}
    with pytest.raises(RecordMappingError) as info:
        orders.to_model({**base, "currency": "hkd"})
    assert (info.value.record_key, info.value.field) == ("3", "currency")
    assert "currency must be an ISO 4217 code" in str(info.value)
    text = MINIMAL + '[orders.lines]\neach = "l"\n[orders.lines.fields]\nquantity = "q"\n'
    with pytest.raises(RecordMappingError) as info:
        compile_toml(text).stream("orders").to_model({**base, "l": [{"q": 1}, {"q": "many"}]})
    assert info.value.field == "lines.1.quantity" and "valid integer" in str(info.value)


def test_keyword_and_odd_names_work():
    text = """
[s]
target = "customer"
key = "class"
[s.fields]
email = { path = "def.import", transform = "email" }
[s.attributes]
class = "class"
"lambda" = "def.return"
"with space" = "with space"
"quote\\"s" = "x[0]"
"""
    out = compile_toml(text).stream("s")({"class": "c1", "def": {"import": "A@B.CO", "return": 5},
                                          "with space": True, "x": ["y"]})
    assert out == {"external_id": "c1", "email": "a@b.co",
                   "attributes": {"class": "c1", "lambda": 5, "with space": True, 'quote"s': "y"}}


def test_code_injection_is_inert(tmp_path):
    marker = tmp_path / "pwned"
    evil = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    sneaky = "k') or exec('import os') or ('"  # one dict key: no dots or brackets
    text = f"""
[s]
target = "customer"
key = "id"
[s.attributes]
{json.dumps('x"] = 1; ' + evil + '; o["')} = {json.dumps(sneaky)}
"__class__" = "__class__.__name__"
"{{evil}}" = {{ value = {json.dumps(evil)}, map = {{ {json.dumps(evil)} = {json.dumps(evil)} }} }}
"""
    stream = compile_toml(text).stream("s")
    out = stream({"id": 1, "__class__": {"__name__": "n"}})
    assert not marker.exists()
    assert out["attributes"] == {"__class__": "n", "{evil}": evil}
    assert evil not in stream.source and "__name__" not in stream.source and "pathlib" not in stream.source
    assert stream({"id": 1, sneaky: "v"})["attributes"]['x"] = 1; ' + evil + '; o["'] == "v"
    assert "exec" not in stream.source
    assert not marker.exists()


def test_plugin_transform_in_mapping_and_clash():
    registry = builtin_transforms()
    registry.register("cents", lambda ctx, factor=100: (lambda v: Decimal(v) / factor), source="acme")
    text = ('[s]\ntarget = "variant"\nkey = "id"\n[s.fields]\n'
            'price = { path = "p", transform = [{ name = "cents", factor = 1000 }] }\n')
    assert compile_toml(text, registry=registry).stream("s")({"id": 1, "p": 2500})["price"] == Decimal("2.5")
    with pytest.raises(PluginError, match="'decimal' from plugin 'acme' clashes with builtin"):
        registry.register("decimal", lambda ctx: str, source="acme")


def test_transform_exceptions_of_any_kind_become_record_errors():
    registry = builtin_transforms()
    registry.register("boom", lambda ctx: (lambda v: 1 / 0))
    registry.register("deep", lambda ctx: (lambda v: (_ for _ in ()).throw(RecursionError("too deep"))))
    text = '[s]\ntarget = "customer"\nkey = "id"\n[s.attributes]\na = { path = "a", transform = "boom" }\n' \
           'b = { path = "b", transform = "deep" }\n'
    stream = compile_toml(text, registry=registry).stream("s")
    with pytest.raises(RecordMappingError, match="ZeroDivisionError") as info:
        stream({"id": 1, "a": 1})
    assert info.value.field == "attributes.a"
    with pytest.raises(RecordMappingError, match="RecursionError: too deep"):
        stream({"id": 1, "b": 1})


def test_compiled_source_is_inspectable(orders):
    assert orders.source.startswith("def _make(C):") and "r.get(c" in orders.source
    assert orders.name == "orders" and orders.target == "order" and orders.model is Order
    assert orders.file.endswith("shopify_orders.toml") and "orders" in repr(orders)
