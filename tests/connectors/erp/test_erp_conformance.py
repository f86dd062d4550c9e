"""The ``odoo`` connector passes the conformance suite every connector passes (``storesync.core.testing``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from storesync.connectors.erp.emulator import OdooEmulator
from storesync.core.capabilities import StockUpdate
from storesync.core.models import Order, OrderLine
from storesync.core.testing import ConnectorConformance

KEY = "odoo_conformance_key_0123456789"


class TestOdooConformance(ConnectorConformance):
    connector_type = "odoo"

    def emulator(self) -> OdooEmulator:
        return OdooEmulator(api_key=KEY, partners=25, products=12, orders=15, seed_value=5)

    def settings(self, emulator: OdooEmulator) -> dict:
        return {"url": emulator.url, "database": emulator.database, "login": emulator.login, "api_key": KEY,
                "page_size": 4, "http": {"backoff_base": 0.01, "backoff_max": 0.05}}

    def expected_counts(self, emulator: OdooEmulator) -> dict[str, int]:
        tables = emulator.db.tables
        return {"partners": len(tables["res.partner"]), "products": len(tables["product.product"]),
                "quants": len({(q["product_id"], q["location_id"]) for q in tables["stock.quant"].values()}),
                "sale_orders": len(tables["sale.order"])}

    def _sku(self, emulator: OdooEmulator) -> str:
        return next(p["default_code"] for p in emulator.db.tables["product.product"].values() if p["default_code"])

    def sample_order(self, emulator: OdooEmulator) -> Order:
        return Order(external_id="conformance:1", currency="HKD", created_at=datetime(2026, 2, 1, 9, 30, tzinfo=UTC),
                     email="conformance@example.com", number="#C1", source_name="web",
                     lines=[OrderLine(sku=self._sku(emulator), quantity=2, unit_price=Decimal("12.5"))])

    def sample_stock_update(self, emulator: OdooEmulator) -> StockUpdate:
        quant = next(iter(emulator.db.tables["stock.quant"].values()))
        return StockUpdate(str(quant["product_id"]), str(quant["location_id"]), int(quant["quantity"]) + 7,
                           "conformance-1")

    def push_state(self, emulator: OdooEmulator, capability: str) -> object:
        if capability == "create_order":
            return len(emulator.sale_orders())
        quant = next(iter(emulator.db.tables["stock.quant"].values()))
        pair = (quant["product_id"], quant["location_id"])
        held = [q["quantity"] for q in emulator.db.tables["stock.quant"].values()
                if (q["product_id"], q["location_id"]) == pair]
        return sum(held), len(held)
