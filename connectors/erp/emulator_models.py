"""The models the Odoo emulator serves, their fields, and a deterministic seed database.

Field kinds: ``char``, ``int``, ``float``, ``bool``, ``datetime`` (stored with microseconds, read back as Odoo
does, ``"YYYY-MM-DD HH:MM:SS"`` UTC without the fraction), ``m2o:<comodel>`` (stored as an id, read as
``[id, display_name]`` or ``False``), ``o2m:<comodel>:<inverse field>`` (computed from the comodel).
``available_quantity`` (quants), ``price_subtotal`` (lines) and the order amounts are computed.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

__all__ = ["BASE_TIME", "DATAGEN_SKUS", "MODELS", "SEEDED", "seed"]

_STAMPS = {"write_date": "datetime", "create_date": "datetime"}

MODELS: dict[str, dict[str, str]] = {
    "res.currency": {"name": "char", **_STAMPS},
    "res.users": {"name": "char", "login": "char", **_STAMPS},
    "res.partner": {"name": "char", "email": "char", "phone": "char", "mobile": "char", "is_company": "bool",
                    "parent_id": "m2o:res.partner", "ref": "char", "active": "bool", "street": "char",
                    "city": "char", "zip": "char", "country_code": "char", "lang": "char", **_STAMPS},
    "product.template": {"name": "char", "list_price": "float", "is_storable": "bool", "active": "bool",
                         **_STAMPS},
    "product.product": {"name": "char", "product_tmpl_id": "m2o:product.template", "default_code": "char",
                        "barcode": "char", "list_price": "float", "is_storable": "bool", "active": "bool",
                        **_STAMPS},
    "stock.warehouse": {"name": "char", "code": "char", "lot_stock_id": "m2o:stock.location", **_STAMPS},
    "stock.location": {"name": "char", "complete_name": "char", "usage": "char",
                       "location_id": "m2o:stock.location", "warehouse_id": "m2o:stock.warehouse",
                       "active": "bool", **_STAMPS},
    "stock.quant": {"product_id": "m2o:product.product", "location_id": "m2o:stock.location",
                    "lot_id": "int", "quantity": "float", "reserved_quantity": "float",
                    "available_quantity": "float", "inventory_quantity": "float",
                    "inventory_quantity_set": "bool", "in_date": "datetime", **_STAMPS},
    "sale.order": {"name": "char", "partner_id": "m2o:res.partner", "state": "char", "date_order": "datetime",
                   "client_order_ref": "char", "origin": "char", "amount_untaxed": "float",
                   "amount_total": "float", "currency_id": "m2o:res.currency",
                   "warehouse_id": "m2o:stock.warehouse", "order_line": "o2m:sale.order.line:order_id",
                   **_STAMPS},
    "sale.order.line": {"order_id": "m2o:sale.order", "product_id": "m2o:product.product", "name": "char",
                        "product_uom_qty": "float", "qty_delivered": "float", "price_unit": "float",
                        "price_subtotal": "float", **_STAMPS},
}

#: fields that are never written, only computed
COMPUTED = {("stock.quant", "available_quantity"), ("sale.order.line", "price_subtotal"),
            ("sale.order", "amount_total"), ("sale.order", "amount_untaxed"), ("stock.location", "complete_name")}

#: the hierarchy field of models that have one (for child_of / parent_of)
PARENT_FIELD = {"res.partner": "parent_id", "stock.location": "location_id"}

#: the SKUs bench/datagen.py puts on its Shopify-shaped orders, so forwarded test orders resolve
DATAGEN_SKUS = [("TEA-JAS-100", "Jasmine Tea 100g", 88.0), ("TEA-OOL-150", "Oolong Tea 150g", 128.5),
                ("SNK-EGG-TIN", "Egg Roll Tin", 168.0), ("SNK-ALM-200", "Almond Cookies", 59.9),
                ("HOM-CUP-WHT", "Porcelain Cup", 45.0), ("HOM-STM-08", "Bamboo Steamer", 219.0)]

BASE_TIME = datetime(2026, 1, 5, 8, 0, 0)
#: seeded records per second of write_date (each with its own microseconds), so pages end mid-second
SEEDED = 7

_NAMES = ["Chan Tai Man", "Wong Mei Ling", "Lee Ka Yan", "Cheung Wing", "Lau Chi Ming", "Ng Siu Fung",
          "Ho Hoi Lam", "Leung Tsz Ho"]


def stamp(i: int) -> datetime:
    """The write_date of the ``i``-th seeded record of a model."""
    return BASE_TIME + timedelta(seconds=i // SEEDED, microseconds=(i % SEEDED) * 1000 + 1)


def seed(partners: int = 40, products: int = 20, orders: int = 30, seed_value: int = 0) -> dict[str, list[dict]]:
    """Rows per model (without ids: the database numbers them from 1 in list order)."""
    rng = random.Random(seed_value)
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in MODELS}
    rows["res.currency"].append({"name": "HKD"})
    rows["res.users"].append({"name": "Administrator", "login": "admin"})
    rows["stock.warehouse"].append({"name": "Main Warehouse", "code": "WH", "lot_stock_id": 2})
    rows["stock.location"] += [
        {"name": "WH", "usage": "view", "warehouse_id": 1},
        {"name": "Stock", "usage": "internal", "location_id": 1, "warehouse_id": 1},
        {"name": "Shelf 1", "usage": "internal", "location_id": 2, "warehouse_id": 1},
        {"name": "Partners/Customers", "usage": "customer"},
        {"name": "Virtual Locations/Inventory adjustment", "usage": "inventory"},
    ]
    for i in range(partners):
        name = f"{_NAMES[i % len(_NAMES)]} {i}"
        rows["res.partner"].append({
            "name": name, "email": f"partner{i}@example.com.hk" if i % 5 else None,
            "phone": f"+852 9{i:07d}" if i % 3 else None, "is_company": i % 10 == 0, "active": i % 17 != 16,
            "ref": f"P{i:04d}", "city": "Hong Kong", "country_code": "HK", "lang": "en_US",
            "parent_id": 1 if i % 10 == 5 else None})
    catalog = DATAGEN_SKUS + [(f"SKU-{i:04d}", f"Product {i}", 10.0 + i) for i in range(len(DATAGEN_SKUS), products)]
    for i, (sku, name, price) in enumerate(catalog[:max(products, 0)]):
        rows["product.template"].append({"name": name, "list_price": price, "is_storable": True, "active": True})
        rows["product.product"].append({"name": name, "product_tmpl_id": i + 1, "default_code": sku,
                                        "barcode": f"489{i:010d}", "list_price": price, "is_storable": True,
                                        "active": True})
        rows["stock.quant"].append({"product_id": i + 1, "location_id": 2, "quantity": float(rng.randint(5, 60))})
        if i % 3 == 0:
            rows["stock.quant"].append({"product_id": i + 1, "location_id": 3,
                                        "quantity": float(rng.randint(0, 20))})
    for i in range(orders if products and partners else 0):
        picks = [rng.randint(1, len(rows["product.product"])) for _ in range(rng.randint(1, 3))]
        lines = [{"product_id": p, "product_uom_qty": float(rng.randint(1, 3)),
                  "price_unit": rows["product.product"][p - 1]["list_price"]} for p in picks]
        rows["sale.order"].append({"partner_id": 1 + i % partners, "client_order_ref": f"SEED-{i:05d}",
                                   "date_order": stamp(i), "lines": lines,
                                   "confirm": i % 3 != 2})
    return rows
