"""Property tests: a compiled mapping never fails with anything but RecordMappingError, whatever JSON it gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shared_fixtures import fixture_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storesync.core.errors import RecordMappingError
from storesync.core.mapping import load_mapping
from storesync.core.models import Canonical
from storesync.core.transforms import TransformContext, builtin_transforms

MAPPINGS = Path(__file__).resolve().parents[1] / "fixtures" / "mappings"
CTX = TransformContext(timezone="Asia/Hong_Kong", default_region="HK")
ORDERS = load_mapping(MAPPINGS / "shopify_orders.toml", registry=builtin_transforms(), ctx=CTX)
CATALOG = load_mapping(MAPPINGS / "shopify_catalog.toml", registry=builtin_transforms(), ctx=CTX)
STREAMS = [ORDERS.stream("orders"), *CATALOG.streams.values()]

# values that look like what the transforms expect, so the property reaches deep into them
plausible = st.one_of(
    st.sampled_from(["", " ", "0", "1", "2.5", "-3", "NaN", "Infinity", "1e999999", "true", "no", "#1001",
                     "2024-07-01T10:00:00+08:00", "2024-13-01", "2024-07-01", "1700000000000", "99999999999999999999",
                     "+85291234567", "0085291234567", "12", "Bob@Example.COM", "x@", "a, b,,c", "HKD", "hkd"]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | plausible
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8) | st.sampled_from(["id", "sku", "quantity"]),
                                             inner, max_size=4), max_leaves=12)

ORDER_KEYS = ["id", "name", "email", "phone", "currency", "subtotal_price", "total_price", "cancelled_at",
              "financial_status", "fulfillment_status", "created_at", "updated_at", "location_id", "source_name",
              "note", "tags", "customer"]
LINE_KEYS = ["id", "sku", "variant_id", "title", "quantity", "price", "product_id"]
OTHER_KEYS = ["title", "vendor", "status", "handle", "images", "inventory_item_id", "location_id", "available",
              "first_name", "last_name", "addresses", "default_address", "accepts_marketing", "total_spent",
              "orders_count", "product_type"]
VARIANT_KEYS = ["id", "sku", "product_id", "title", "price", "inventory_item_id", "inventory_policy",
                "inventory_management", "option1", "grams"]


def shaped(keys: list[str], extra: dict | None = None) -> st.SearchStrategy[dict]:
    """Dicts whose keys the mappings read, each holding arbitrary JSON or a plausible value."""
    optional = {k: json_values | plausible for k in keys}
    return st.fixed_dictionaries({}, optional={**optional, **(extra or {})})


lines = st.lists(shaped(LINE_KEYS) | json_values, max_size=3) | json_values
variants = st.lists(shaped(VARIANT_KEYS) | json_values, max_size=3) | json_values
customer = shaped(["id", "email", "phone", "first_name", "last_name"]) | json_values
records = json_values | shaped(ORDER_KEYS + OTHER_KEYS, {"line_items": lines, "variants": variants,
                                                         "customer": customer})

BASES = {"orders": ("order", "line_items"), "products": ("product", "variants"),
         "inventory_levels": ("inventory_level", None), "customers": ("customer", "addresses")}


def _base(stream: str) -> tuple[dict, str | None]:
    name, nested = BASES[stream]
    return json.loads(fixture_path("shopify_python_api", f"{name}.json").read_text())[name], nested


def _patch(base: dict, nested: str | None, top: dict, item: dict) -> dict:
    raw = {**base, **top}
    if nested and isinstance(raw.get(nested), list) and raw[nested] and isinstance(raw[nested][0], dict):
        raw[nested] = [{**raw[nested][0], **item}, *raw[nested][1:]]
    return raw


def near_valid(stream: str) -> st.SearchStrategy[dict]:
    """A real Shopify payload with a few top-level and first-item values replaced by arbitrary JSON."""
    base, nested = _base(stream)
    item_keys = sorted(base[nested][0]) if nested else ["id"]
    patch = lambda keys: st.dictionaries(st.sampled_from(keys), json_values | plausible, max_size=2)  # noqa: E731
    return st.builds(_patch, st.just(base), st.just(nested), patch(sorted(base)), patch(item_keys))


def records_for(stream: str) -> st.SearchStrategy:
    return st.one_of(records, near_valid(stream))


SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("stream", STREAMS, ids=lambda s: s.name)
@SETTINGS
@given(data=st.data())
def test_call_returns_a_dict_or_raises_record_mapping_error(stream, data):
    raw = data.draw(records_for(stream.name))
    try:
        out = stream(raw)
    except RecordMappingError as exc:
        assert str(exc)
        return
    assert isinstance(out, dict) and isinstance(out["external_id"], str) and out["external_id"]
    assert isinstance(out["attributes"], dict)
    assert stream.key(raw) == out["external_id"]


@pytest.mark.parametrize("stream", STREAMS, ids=lambda s: s.name)
@SETTINGS
@given(data=st.data())
def test_to_model_returns_a_model_or_raises_record_mapping_error(stream, data):
    raw = data.draw(records_for(stream.name))
    try:
        model = stream.to_model(raw)
    except RecordMappingError as exc:
        assert exc.field or exc.record_key is None or "record object" in str(exc)
        return
    assert isinstance(model, stream.model) and isinstance(model, Canonical)


TRANSFORMS = [(name, params) for name in builtin_transforms().names() for params in [{}]] + [
    ("money", {"currency": "JPY"}), ("datetime", {"format": "odoo"}), ("datetime", {"format": "rfc2822"}),
    ("datetime", {"format": "%d/%m/%Y"}), ("date", {"format": "%d/%m/%Y"}), ("phone_e164", {"region": "US"})]


@pytest.mark.parametrize(("name", "params"), TRANSFORMS, ids=lambda x: str(x))
@settings(max_examples=150, deadline=None)
@given(value=json_values | plausible)
def test_transforms_raise_only_value_or_type_errors(name, params, value):
    fn = builtin_transforms().build(name, CTX, params, file="f", key="k")
    try:
        fn(value)
    except (ValueError, TypeError) as exc:
        assert str(exc)


@pytest.mark.parametrize("stream", STREAMS, ids=lambda s: s.name)
def test_the_unpatched_payloads_are_valid(stream):
    """Keeps ``near_valid`` honest: with no patch the base payload maps and validates."""
    base, nested = _base(stream.name)
    assert isinstance(stream.to_model(_patch(base, nested, {}, {})), stream.model)
