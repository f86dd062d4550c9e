"""The ``shopify`` connector passes the conformance suite every connector passes (``storesync.core.testing``)."""

from __future__ import annotations

from storesync.connectors.shopify.emulator import ShopifyEmulator
from storesync.core.capabilities import StockUpdate
from storesync.core.testing import ConnectorConformance

TOKEN = "shpat_conformance_0123456789"


class TestShopifyConformance(ConnectorConformance):
    connector_type = "shopify"

    def emulator(self) -> ShopifyEmulator:
        return ShopifyEmulator(orders=30, seed=3, token=TOKEN, rate_limit=None)

    def settings(self, emulator: ShopifyEmulator) -> dict:
        # 2026-04: pushes carry an @idempotent key, so a repeated push replays Shopify's first answer
        return {"shop": "harbour-goods-hk.myshopify.com", "base_url": emulator.base_url, "access_token": TOKEN,
                "api_version": "2026-04", "page_size": 7, "http": {"backoff_base": 0.01, "backoff_max": 0.05}}

    def expected_counts(self, emulator: ShopifyEmulator) -> dict[str, int]:
        s = emulator.store
        return {"customers": len(s.customers), "products": len(s.products), "orders": len(s.orders),
                "locations": len(s.locations), "inventory_levels": len(s.inventory_levels)}

    def sample_stock_update(self, emulator: ShopifyEmulator) -> StockUpdate:
        item, location = sorted(emulator.store.inventory_levels.keys)[0]
        held = emulator.available(item, location)
        return StockUpdate(str(item), str(location), held + 4, "conformance-1", expected=held)

    def push_state(self, emulator: ShopifyEmulator, capability: str) -> tuple[int, int]:
        item, location = sorted(emulator.store.inventory_levels.keys)[0]
        return emulator.adjustment_groups, emulator.available(item, location)
