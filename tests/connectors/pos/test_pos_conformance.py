"""The ``square`` connector passes the conformance suite every connector passes (``storesync.core.testing``)."""

from __future__ import annotations

from storesync.connectors.pos.emulator import SquareEmulator
from storesync.core.capabilities import StockUpdate
from storesync.core.testing import ConnectorConformance

TOKEN = "sq_conformance_token_0123456789"


class TestSquareConformance(ConnectorConformance):
    connector_type = "square"

    def emulator(self) -> SquareEmulator:
        return SquareEmulator(orders=40, seed=4, token=TOKEN, customers=25, items=12)

    def settings(self, emulator: SquareEmulator) -> dict:
        return {"base_url": emulator.base_url, "access_token": TOKEN, "order_page_size": 9,
                "customer_page_size": 6, "catalog_page_size": 5, "count_page_size": 25,
                "http": {"backoff_base": 0.01, "backoff_max": 0.05}}

    def expected_counts(self, emulator: SquareEmulator) -> dict[str, int]:
        s = emulator.store
        return {"locations": len(s.locations), "catalog": len(s.items), "orders": len(s.orders),
                "inventory": len({(k[0], k[1]) for k in s.ledger.counts}), "customers": len(s.customers)}

    def _pair(self, emulator: SquareEmulator) -> tuple[str, str]:
        item = next(iter(emulator.store.items.values()))
        return item["item_data"]["variations"][0]["id"], emulator.store.location_ids[0]

    def sample_stock_update(self, emulator: SquareEmulator) -> StockUpdate:
        variation, location = self._pair(emulator)
        return StockUpdate(variation, location, emulator.in_stock(variation, location) + 6, "conformance-1")

    def push_state(self, emulator: SquareEmulator, capability: str) -> tuple[int, int]:
        variation, location = self._pair(emulator)
        return emulator.in_stock(variation, location), len(emulator.writes)
