"""Scenario hooks of the Square emulator: a catalog item with a chosen SKU, and till sales completed now.

Inventory scenarios need one SKU shared by every system and sales that happen "now"; the seed catalog has SKUs
of its own. These functions change a :class:`~.emulator_data.SquareStore` under its lock the way Square would,
stamped with ``SquareStore.now_ms()`` (the wall clock, strictly increasing) so the connector's incremental
catalog (``begin_time``), inventory (``updated_after``) and order (``updated_at``) reads pick the change up.
``SquareEmulator.add_item``/``till_sale`` call them; they are never faulted.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from .emulator_data import _ID, SquareStore, _money, stamp

__all__ = ["add_item", "till_sale"]

def _new_id(length: int, taken: Any) -> str:
    while True:
        value = "".join(secrets.choice(_ID) for _ in range(length))
        if value not in taken:
            return value


def add_item(store: SquareStore, sku: str, name: str, *, price: int = 8800,
             counts: dict[str, int] | None = None) -> str:
    """A new ITEM with one ITEM_VARIATION ``sku`` (``price`` in HKD cents) and an opening IN_STOCK physical count
    per location of ``counts`` (location id -> quantity). Returns the variation id.

    A duplicate SKU or an unknown location is an error raised before anything is added.
    """
    sku, counts = sku.strip(), dict(counts or {})
    if not sku:
        raise ValueError("add_item: sku must not be empty")
    with store.lock:
        for item in store.items.values():
            for variation in item["item_data"]["variations"]:
                if variation["item_variation_data"].get("sku") == sku:
                    raise ValueError(f"add_item: variation {variation['id']} already has sku {sku!r}")
        for location in counts:
            if location not in store.location_ids:
                raise KeyError(f"add_item: no location {location!r}; the seller's are {store.location_ids}")
        now = store.now_ms()
        when = stamp(now)
        item_id = _new_id(24, store.items)
        variation_id = _new_id(24, {*store.variation_item, item_id})
        variation = {
            "type": "ITEM_VARIATION", "id": variation_id, "updated_at": when, "version": now, "is_deleted": False,
            "present_at_all_locations": True,
            "item_variation_data": {"item_id": item_id, "name": "Regular", "sku": sku, "ordinal": 1,
                                    "pricing_type": "FIXED_PRICING", "price_money": _money(int(price)),
                                    "track_inventory": True}}
        store.items[item_id] = {
            "type": "ITEM", "id": item_id, "updated_at": when, "version": now, "is_deleted": False,
            "present_at_all_locations": True,
            "item_data": {"name": name, "description": name, "product_type": "REGULAR", "visibility": "PRIVATE",
                          "variations": [variation]}}
        store.variation_item[variation_id] = item_id
        for location, quantity in counts.items():
            store.ledger.physical_count((variation_id, location, "IN_STOCK"), Decimal(int(quantity)), when, now,
                                        f"OPEN{variation_id[:6]}{location}")
        return variation_id


def till_sale(store: SquareStore, variation_id: str, location_id: str, quantity: int = 1, *,
              customer_id: str | None = None) -> str:
    """A COMPLETED till order now at ``location_id`` with one line, and its IN_STOCK -> SOLD in the ledger.

    IN_STOCK may go below zero, as Square allows. Returns the order id. An unknown variation, location or
    customer, or a non-positive quantity, is an error raised before anything changes.
    """
    if int(quantity) <= 0:
        raise ValueError(f"till_sale: quantity must be positive, got {quantity!r}")
    with store.lock:
        item_id = store.variation_item.get(variation_id)
        if item_id is None:
            raise KeyError(f"till_sale: no catalog variation {variation_id!r}")
        if location_id not in store.location_ids:
            raise KeyError(f"till_sale: no location {location_id!r}; the seller's are {store.location_ids}")
        if customer_id is not None and customer_id not in store.customers:
            raise KeyError(f"till_sale: no customer {customer_id!r}")
        item = store.items[item_id]
        variation = next(v for v in item["item_data"]["variations"] if v["id"] == variation_id)
        data, quantity = variation["item_variation_data"], int(quantity)
        price = int(data["price_money"]["amount"])
        total = _money(quantity * price)
        now = store.now_ms()
        when = stamp(now)
        order_id = _new_id(27, store.orders)
        order: dict[str, Any] = {
            "id": order_id, "location_id": location_id, "reference_id": f"T{len(store.orders) + 1:07d}",
            "state": "COMPLETED", "source": {"name": "Square Point of Sale"},
            "line_items": [{"uid": _new_id(22, ()), "catalog_object_id": variation_id,
                            "catalog_version": variation["version"], "name": item["item_data"]["name"],
                            "variation_name": data["name"], "quantity": str(quantity), "item_type": "ITEM",
                            "base_price_money": _money(price), "gross_sales_money": total,
                            "total_tax_money": _money(0), "total_discount_money": _money(0), "total_money": total}],
            "created_at": when, "updated_at": when, "closed_at": when, "version": 4, "total_money": total,
            "total_tax_money": _money(0), "total_discount_money": _money(0), "total_tip_money": _money(0),
            "total_service_charge_money": _money(0),
            "net_amounts": {"total_money": total, "tax_money": _money(0), "discount_money": _money(0),
                            "tip_money": _money(0), "service_charge_money": _money(0)}}
        if customer_id is not None:
            order["customer_id"] = customer_id
        store.put_order(order)
        store.ledger.adjustment(variation_id, location_id, "IN_STOCK", "SOLD", Decimal(quantity), when, now,
                                f"SOLD{order_id}")
        return order_id

