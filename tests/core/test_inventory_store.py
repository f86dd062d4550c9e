"""Reading the level reports and channel levels of some SKUs only (``core/inventory_store.py``), on SQLite and
PostgreSQL: every way a report names its SKU is found, in one chunk of SKUs or several, each row once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storesync.core import inventory_store
from storesync.core.inventory_store import channel_levels, load_reports
from storesync.core.models import InventoryLevel, Variant
from storesync.core.store import Store
from storesync.core.writer import Item

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def level(ext: str, location: str, **fields) -> list[Item]:
    return [Item(ext, InventoryLevel(external_id=ext, location_external_id=location, as_of=T0, **fields), None)]


@pytest.fixture
def store(store_url: str) -> Store:
    store = Store(store_url)
    with store.write() as w:
        for sku, n in (("VASE", 1), ("TEAPOT", 2)):
            w.upsert("shop", "products", "variant", [Item(f"v{n}", Variant(external_id=f"v{n}", sku=sku, currency="HKD",
                                                                          inventory_item_id=f"77{n}"), None)])
            w.upsert("tills", "catalog", "variant", [Item(f"sq{n}", Variant(external_id=f"sq{n}", sku=sku,
                                                                            currency="HKD"), None)])
            # Shopify names the SKU by its inventory item, Square by its variation, the ERP directly
            w.upsert("shop", "levels", "inventory_level", level(f"s{n}", "7", available=n,
                                                                attributes={"inventory_item_id": f"77{n}"}))
            w.upsert("tills", "counts", "inventory_level", level(f"t{n}", "L1", variant_external_id=f"sq{n}",
                                                                 on_hand=10 + n))
            w.upsert("erp", "quants", "inventory_level", level(f"e{n}", "WH", sku=sku, on_hand=20 + n))
    return store


@pytest.mark.parametrize("chunk", [1, 2000])
def test_the_reports_of_some_skus_are_found_whichever_way_they_name_them(store: Store, chunk: int,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory_store, "CHUNK_SKUS", chunk)
    every = {(r.connector_id, r.sku, r.on_hand) for r in load_reports(store)}
    vase = sorted((r.connector_id, r.sku, r.on_hand) for r in load_reports(store, "VASE"))
    assert vase == [("erp", "VASE", 21), ("shop", "VASE", 1), ("tills", "VASE", 11)]
    both = [(r.connector_id, r.sku, r.on_hand) for r in load_reports(store, {"VASE", "TEAPOT"})]
    assert len(both) == 6 and set(both) == every

    levels = channel_levels(store, ["shop", "tills"], {"TEAPOT"})
    assert {key: quantity for key, (quantity, _at) in levels.items()} == {("shop", "7", "772"): 2,
                                                                         ("tills", "L1", "sq2"): 12}
    assert set(channel_levels(store, ["shop", "tills"])) >= set(levels)
