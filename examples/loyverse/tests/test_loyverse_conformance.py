"""The `loyverse` connector against its emulator: storesync's conformance suite, plus one incremental check.

The fixtures (`storesync_plugin_host`, `storesync_store`, `storesync_emulator`) and `ConnectorConformance` come
from storesync's pytest plugin (`storesync.core.testing`), active wherever storesync is installed.
"""

from __future__ import annotations

from storesync.core.engine import SyncEngine
from storesync.core.testing import ConnectorConformance

from storesync_loyverse.emulator import LoyverseEmulator

TOKEN = "loyverse_test_token"


class TestLoyverseConformance(ConnectorConformance):
    connector_type = "loyverse"

    def emulator(self) -> LoyverseEmulator:
        return LoyverseEmulator(customers=23, products=11, seed=1, token=TOKEN)

    def settings(self, emulator: LoyverseEmulator) -> dict:
        # small pages, so every stream spans several; quick retries, so the fault checks stay fast
        return {"access_token": TOKEN, "base_url": emulator.base_url, "page_size": 5,
                "http": {"backoff_base": 0.01, "backoff_max": 0.05}}

    def expected_counts(self, emulator: LoyverseEmulator) -> dict[str, int]:
        return {resource: len(records) for resource, records in emulator.records.items()}


def test_a_changed_record_is_read_again(storesync_plugin_host, storesync_store, storesync_emulator) -> None:
    api = storesync_emulator(LoyverseEmulator(customers=12, products=4, seed=2, token=TOKEN))
    host = storesync_plugin_host({"storesync": {"workers": 0}, "connectors": {"api": {
        "type": "loyverse", "access_token": TOKEN, "base_url": api.base_url, "page_size": 5}}})
    engine = SyncEngine(host, storesync_store)
    (first,) = engine.sync(["api"])
    assert first.status == "ok", first.as_dict()
    changed = sorted(api.records["customers"])[3]
    api.touch("customers", changed, name="Renamed Customer")
    (second,) = engine.sync(["api"])
    customers = {s.stream: s for s in second.streams}["customers"]
    assert (customers.inserted, customers.updated) == (0, 1), second.as_dict()
