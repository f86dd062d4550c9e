"""The default ``pos.toml`` mapping on every real Square payload in the shared fixtures, with values spot-checked."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from shared_fixtures import fixture_path

from storesync.connectors.pos.records import level_records
from storesync.connectors.pos.webhooks import event_records
from storesync.core.errors import RecordMappingError
from storesync.core.mapping import load_mapping
from storesync.core.transforms import TransformContext, builtin_transforms

REPO = Path(__file__).resolve().parents[3]
SPEC = "square_connect-api-specification"


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(REPO / "mappings" / "pos.toml", registry=builtin_transforms(),
                        ctx=TransformContext(timezone="Asia/Hong_Kong", default_region="HK"))


def example(name: str) -> dict:
    return json.loads(fixture_path(SPEC, f"{name}.example.json").read_text(encoding="utf-8"))


def to_models(mapping, stream: str, records: list[dict]) -> list:
    assert records, stream
    out = []
    for raw in records:
        try:
            out.append(mapping.stream(stream).to_model(raw))
        except RecordMappingError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{stream}: {exc} (field {exc.field})")
    return out


#: every response example holding records, and the stream records it yields (as the connector would read them)
def stream_records() -> dict[str, list[dict]]:
    items = [o for o in example("SearchCatalogObjectsResponse")["objects"] if o["type"] == "ITEM"]
    counts = (example("BatchRetrieveInventoryCountsResponse")["counts"] + example("RetrieveInventoryCountResponse")
              ["counts"] + example("BatchChangeInventoryResponse")["counts"])
    events = [event_records(example(n)) for n in ("CustomerCreatedEvent", "CustomerUpdatedEvent")]
    webhook_counts = example("InventoryCountUpdatedEvent")["data"]["object"]["inventory_counts"]
    return {
        "locations": example("ListLocationsResponse")["locations"],
        "catalog": items,
        "inventory": level_records(counts) + level_records(webhook_counts),
        "orders": [example("RetrieveOrderResponse")["order"]],
        "customers": (example("SearchCustomersResponse")["customers"] + example("ListCustomersResponse")["customers"]
                      + [example("RetrieveCustomerResponse")["customer"]]
                      + [raw for e in events for _, raw in e.records]),
    }


def test_every_fixture_example_maps_without_quarantine(mapping) -> None:
    for stream, records in stream_records().items():
        assert len(to_models(mapping, stream, records)) == len(records)


def test_catalog_items_map_variations_with_minor_unit_prices(mapping) -> None:
    tea, green = to_models(mapping, "catalog", stream_records()["catalog"])
    assert (tea.external_id, tea.title, tea.deleted) == ("X5DZ5NWWAQ44CKBLKIFQGOWK", "Tea - Black", False)
    regular, large = tea.variants
    assert (regular.external_id, regular.title, regular.price, regular.currency) == (
        "5GSZPX6EU7MM75S57OONG3V5", "Regular", Decimal("1.50"), "USD")
    assert large.price == Decimal("2.25") and large.product_external_id == tea.external_id
    assert regular.inventory_item_id == regular.external_id  # what push_inventory sends back
    assert tea.updated_at == datetime(2017, 10, 26, 15, 41, 32, 337000, tzinfo=timezone.utc)
    assert tea.attributes["category_id"] == "E7CLE5RZZ744BHWVQQEAHI2C"
    assert len(green.variants) == 1


def test_deleted_catalog_objects_map_to_deleted_rows(mapping) -> None:
    item = dict(stream_records()["catalog"][0], is_deleted=True)
    model = mapping.stream("catalog").to_model(item)
    assert model.deleted and model.status == "deleted"


def test_inventory_counts_fold_into_one_level_per_variation_and_location(mapping) -> None:
    counts = example("BatchRetrieveInventoryCountsResponse")["counts"]
    reserved = dict(counts[0], state="RESERVED_FOR_SALE", quantity="4", calculated_at="2016-11-17T00:00:00.000Z")
    waste = dict(counts[0], state="WASTE", quantity="2.5")
    (record,) = level_records([counts[0], reserved, waste])
    level = mapping.stream("inventory").to_model(record)
    assert (level.variant_external_id, level.location_external_id) == ("W62UWFY35CWMYGVWK6TWJDNI", "59TNP9SA8VGDA")
    assert (level.on_hand, level.committed, level.available) == (79, 4, 79)
    assert level.attributes["states"] == {"IN_STOCK": "79", "RESERVED_FOR_SALE": "4", "WASTE": "2.5"}
    assert level.as_of == datetime(2016, 11, 17, tzinfo=timezone.utc)  # the latest state's calculated_at
    assert level.external_id == mapping.stream("inventory").key(record)


def test_orders_map_money_states_and_decimal_string_quantities(mapping) -> None:
    (order,) = to_models(mapping, "orders", stream_records()["orders"])
    assert (order.external_id, order.status, order.currency, order.total) == (
        "CAISENgvlJ6jLWAzERDzjyHVybY", "open", "USD", Decimal("5.50"))
    assert order.location_external_id == "D7AVYMEAPJ3A3"
    assert order.attributes["total_discount"] == Decimal("5.50")
    one, two = order.lines
    assert (one.external_id, one.title, one.quantity, one.unit_price, one.total) == (
        "ULkg0tQTRK2bkU9fNv3IJD", "Item 1", 1, Decimal("5.00"), Decimal("2.50"))
    assert (two.quantity, two.attributes["quantity"]) == (2, "2")
    for state, status in (("COMPLETED", "closed"), ("CANCELED", "cancelled"), ("DRAFT", "open")):
        raw = dict(stream_records()["orders"][0], state=state)
        assert mapping.stream("orders").to_model(raw).status == status


def test_customers_map_names_contacts_and_consent(mapping) -> None:
    models = to_models(mapping, "customers", stream_records()["customers"])
    bond = models[0]
    assert (bond.first_name, bond.last_name, bond.email, bond.phone) == (
        "James", "Bond", "james.bond@example.com", "+12125554250")
    assert (bond.member_id, bond.city, bond.region, bond.country_code, bond.email_consent) == (
        "YOUR_REFERENCE_ID_2", "New York", "NY", "US", True)
    amelia = models[2]
    assert amelia.email == "amelia.earhart@example.com"  # lower-cased from Amelia.Earhart@example.com
    created = models[-2]
    assert (created.external_id, created.birth_date.isoformat(), created.phone) == (
        "QPTXM8PQNX3Q726ZYHPMNP46XC", "1962-03-04", "+12126668929")


def test_locations_map_address_coordinates_and_status(mapping) -> None:
    grant, midtown = to_models(mapping, "locations", stream_records()["locations"])
    assert (grant.external_id, grant.name, grant.city, grant.country_code, grant.active) == (
        "18YC4JDH91E1H", "Grant Park", "San Francisco", "US", True)
    assert (midtown.latitude, midtown.longitude, midtown.country_code) == (33.7889, -84.3841, "US")
    inactive = dict(stream_records()["locations"][0], status="INACTIVE")
    assert mapping.stream("locations").to_model(inactive).active is False
