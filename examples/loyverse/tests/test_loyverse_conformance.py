"""The ``loyverse`` connector against its emulator: storesync's conformance suite, plus Loyverse specifics."""

from __future__ import annotations

import pytest

from storesync.core.capabilities import StockUpdate
from storesync.core.engine import SyncEngine
from storesync.core.errors import ConfigError
from storesync.core.testing import ConnectorConformance

from storesync_loyverse.emulator import LoyverseEmulator

TOKEN = "loyverse_test_token_0123456789"
FAST = {"backoff_base": 0.01, "backoff_max": 0.05}


class TestLoyverseConformance(ConnectorConformance):
    connector_type = "loyverse"

    def emulator(self) -> LoyverseEmulator:
        return LoyverseEmulator(items=9, customers=17, receipts=23, seed=1, token=TOKEN)

    def settings(self, emulator: LoyverseEmulator) -> dict:
        # small pages, so every paged stream spans several; quick retries, so the fault checks stay fast
        return {"access_token": TOKEN, "base_url": f"{emulator.base_url}/v1.0", "page_size": 4, "http": FAST}

    def expected_counts(self, emulator: LoyverseEmulator) -> dict[str, int]:
        return {"stores": len(emulator.stores), "items": len(emulator.items), "inventory": len(emulator.levels),
                "receipts": len(emulator.receipts), "customers": len(emulator.customers)}

    def _pair(self, emulator: LoyverseEmulator) -> tuple[str, str]:
        return emulator.variants()[0]["variant_id"], next(iter(emulator.stores))

    def sample_stock_update(self, emulator: LoyverseEmulator) -> StockUpdate:
        variant, store = self._pair(emulator)
        held = round(emulator.in_stock(variant, store))
        return StockUpdate(variant, store, held + 5, "conformance-1", expected=held)

    def push_state(self, emulator: LoyverseEmulator, capability: str) -> tuple[float, int]:
        return emulator.in_stock(*self._pair(emulator)), emulator.stock_writes


def project(storesync_plugin_host, api: LoyverseEmulator, **settings):
    return storesync_plugin_host({"storesync": {"workers": 0}, "connectors": {"tills": {
        "type": "loyverse", "access_token": TOKEN, "base_url": f"{api.base_url}/v1.0", "page_size": 5,
        "http": FAST, **settings}}})


def streams(report) -> dict:
    assert report.status == "ok", report.as_dict()
    return {s.stream: s for s in report.streams}


def test_changes_at_the_till_are_read_incrementally(storesync_plugin_host, storesync_store, storesync_emulator):
    api = storesync_emulator(LoyverseEmulator(items=5, customers=8, receipts=12, seed=2, token=TOKEN))
    engine = SyncEngine(project(storesync_plugin_host, api), storesync_store)
    streams(engine.sync(["tills"])[0])
    variant, store = api.variants()[1]["variant_id"], list(api.stores)[2]
    api.sell(variant, store, 2)
    api.touch("customers", sorted(api.customers)[0], name="Chan Tai Man")
    api.touch("items", sorted(api.items)[0], deleted_at="2026-02-01T00:00:00.000Z")
    got = streams(engine.sync(["tills"])[0])
    assert (got["inventory"].updated, got["customers"].updated, got["items"].updated) == (1, 1, 1)
    assert sum(r.inserted for r in got.values()) == 0
    with storesync_store.engine.connect() as db:
        from sqlalchemy import text
        on_hand = db.execute(text("SELECT on_hand FROM inventory_level WHERE variant_external_id = :v AND "
                                  "location_external_id = :s"), {"v": variant, "s": store}).scalar_one()
        deleted = db.execute(text("SELECT deleted FROM product WHERE external_id = :i"),
                             {"i": sorted(api.items)[0]}).scalar_one()
    assert on_hand == round(api.in_stock(variant, store)) and deleted in (1, True)


def test_store_ids_limit_every_stream_to_those_stores(storesync_plugin_host, storesync_store, storesync_emulator):
    api = storesync_emulator(LoyverseEmulator(items=4, customers=5, receipts=15, seed=3, token=TOKEN))
    store = list(api.stores)[1]
    got = streams(SyncEngine(project(storesync_plugin_host, api, store_ids=[store]), storesync_store).sync(["tills"])[0])
    assert got["stores"].inserted == 1
    assert got["receipts"].inserted == sum(1 for r in api.receipts.values() if r["store_id"] == store)
    assert got["inventory"].inserted == sum(1 for (_v, s) in api.levels if s == store)


def test_a_stale_expected_count_is_a_conflict_and_nothing_is_written(storesync_plugin_host, storesync_emulator):
    api = storesync_emulator(LoyverseEmulator(items=3, customers=2, receipts=2, seed=4, token=TOKEN))
    connector = project(storesync_plugin_host, api).connector("tills")
    variant, store = api.variants()[0]["variant_id"], list(api.stores)[0]
    held = round(api.in_stock(variant, store))
    api.sell(variant, store, 1)  # a sale after storesync read the count
    (outcome,) = connector.push_inventory([StockUpdate(variant, store, held + 10, "k", expected=held)])
    assert (outcome.status, outcome.actual) == ("conflict", held - 1)
    assert api.in_stock(variant, store) == held - 1 and api.stock_writes == 0
    (unknown,) = connector.push_inventory([StockUpdate("no-such-variant", store, 1, "k2")])
    assert unknown.status == "failed" and "no-such-variant" in unknown.detail


def test_a_bad_token_stops_with_a_fix_it_hint_and_no_secret(storesync_plugin_host, storesync_emulator):
    api = storesync_emulator(LoyverseEmulator(items=1, customers=1, receipts=1, token=TOKEN))
    connector = project(storesync_plugin_host, api, access_token="wrong_token_abcdef").connector("tills")
    with pytest.raises(Exception) as caught:
        connector.check()
    assert "401" in str(caught.value) and "access_token" in str(caught.value)
    assert "wrong_token_abcdef" not in str(caught.value)


def test_page_size_beyond_loyverse_limit_and_a_bad_url_are_refused(storesync_plugin_host, storesync_emulator):
    api = storesync_emulator(LoyverseEmulator(items=1, customers=1, receipts=1, token=TOKEN))
    with pytest.raises(ConfigError) as caught:
        project(storesync_plugin_host, api, page_size=500).connector("tills")
    assert "connectors.tills.page_size" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        project(storesync_plugin_host, api, base_url="api.loyverse.com/v1.0").connector("tills")
    assert "connectors.tills.base_url: must start with https://" in str(caught.value)
