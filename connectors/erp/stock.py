"""Setting stock in Odoo: ``inventory_quantity`` on ``stock.quant`` in inventory mode, then applied.

For each update the current quantity of the (product, location) is read first: with ``expected`` set and a
different quantity in Odoo the outcome is ``conflict`` and nothing is written (compare-and-set done by reading,
as Odoo offers no conditional write). Otherwise a quant is created or updated with ``inventory_quantity`` under
``{"inventory_mode": True}`` and ``action_apply_inventory`` moves the difference through the inventory
adjustment location. Setting an absolute quantity twice lands on the same quantity, so a retry is harmless.
"""

from __future__ import annotations

from ...core.capabilities import PushOutcome, StockUpdate
from .client import OdooClient, OdooRecordError

__all__ = ["push_inventory"]


def push_inventory(client: OdooClient, updates: list[StockUpdate]) -> list[PushOutcome]:
    """One outcome per update, in order; an update Odoo refuses is ``failed`` with Odoo's message."""
    return [_push_one(client, update) for update in updates]


def _push_one(client: OdooClient, update: StockUpdate) -> PushOutcome:
    try:
        product, location = int(update.item_id), int(update.location_id)
    except ValueError:
        return PushOutcome(update, "failed", detail=f"Odoo ids are integers: item {update.item_id!r}, "
                                                    f"location {update.location_id!r}")
    try:
        quants = client.call("stock.quant", "search_read", domain=[("product_id", "=", product),
                                                                    ("location_id", "=", location)],
                             fields=["quantity"], order="id asc")
        current = round(sum(float(q["quantity"] or 0) for q in quants))
        if update.expected is not None and current != update.expected:
            return PushOutcome(update, "conflict", actual=current,
                               detail=f"Odoo holds {current}, expected {update.expected}")
        quant_id = client.call("stock.quant", "create", vals_list=[{
            "product_id": product, "location_id": location, "inventory_quantity": update.quantity}],
            context={"inventory_mode": True})[0]
        client.call("stock.quant", "action_apply_inventory", [quant_id], context={"inventory_mode": True})
    except OdooRecordError as exc:
        return PushOutcome(update, "failed", detail=exc.message)
    return PushOutcome(update, "applied", actual=update.quantity)
