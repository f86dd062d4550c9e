"""Writing one canonical order into Odoo as a ``sale.order``, exactly once.

The order's ``external_id`` (the forwarding step makes it ``<source connector>:<source order id>``) goes into
``client_order_ref``. Every attempt looks the reference up first and creates only when it is absent, so a
retried call, a lost reply or a crash between the create and the caller's commit never makes a second order.
Lines are resolved by SKU (``product.product.default_code``); an unknown or missing SKU makes the order a
skippable record error naming the SKUs. The partner is found by email, then by phone, else created; an order
with neither uses the ``walk_in_partner``.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from ...core.capabilities import OrderReceipt
from ...core.errors import RetriableSyncError, SkippableRecordError
from ...core.models import Order
from .client import OdooClient

__all__ = ["ATTEMPTS", "create_order", "order_values"]

#: lookups and creates per order before a transient failure is given up (the next run tries again)
ATTEMPTS = 3


def create_order(client: OdooClient, order: Order, settings: Any) -> OrderReceipt:
    """Find the sale order whose ``client_order_ref`` is ``order.external_id``, or create (and confirm) it."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _find_or_create(client, order, settings)
        except RetriableSyncError:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _find_or_create(client: OdooClient, order: Order, settings: Any) -> OrderReceipt:
    found = client.call("sale.order", "search_read", domain=[("client_order_ref", "=", order.external_id)],
                        fields=["name", "state"], limit=1, order="id asc")
    if found:
        existing = found[0]
        if settings.confirm_orders and existing["state"] in ("draft", "sent"):
            client.call("sale.order", "action_confirm", [existing["id"]])  # created, but the confirm was lost
        return OrderReceipt(str(existing["id"]), created=False, detail=str(existing["name"]))
    vals = order_values(client, order, settings)
    (new_id,) = client.call("sale.order", "create", vals_list=[vals])
    if settings.confirm_orders:
        client.call("sale.order", "action_confirm", [new_id])
    return OrderReceipt(str(new_id), created=True, detail=f"sale.order {new_id}")


def order_values(client: OdooClient, order: Order, settings: Any) -> dict[str, Any]:
    """The ``sale.order`` values of ``order``: partner, reference, date and one line per order line."""
    products = _products(client, order)
    lines = []
    for line in order.lines:
        values: dict[str, Any] = {"product_id": products[line.sku or ""], "product_uom_qty": line.quantity,
                                  "name": line.title or line.sku}
        if line.unit_price is not None:
            values["price_unit"] = float(line.unit_price)
        lines.append([0, 0, values])
    return {"partner_id": _partner(client, order, settings), "client_order_ref": order.external_id,
            "origin": f"storesync {order.source_name or ''} {order.number or ''}".strip(),
            "date_order": order.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), "order_line": lines}


def _products(client: OdooClient, order: Order) -> dict[str, int]:
    if not order.lines:
        raise SkippableRecordError(f"order {order.external_id!r} has no lines", record_key=order.external_id,
                                   field="lines")
    for number, line in enumerate(order.lines, 1):
        if not line.sku:
            raise SkippableRecordError(f"order {order.external_id!r} line {number} has no SKU, so it cannot be "
                                       "matched to an Odoo product", record_key=order.external_id, field="lines.sku")
        if line.quantity <= 0:
            raise SkippableRecordError(f"order {order.external_id!r} line {number} ({line.sku}) has quantity "
                                       f"{line.quantity}", record_key=order.external_id, field="lines.quantity")
    skus = sorted({line.sku for line in order.lines if line.sku})
    found = client.call("product.product", "search_read", domain=[("default_code", "in", skus)],
                        fields=["default_code"], order="id asc")
    by_sku: dict[str, int] = {}
    for record in found:
        by_sku.setdefault(record["default_code"], record["id"])
    unknown = [s for s in skus if s not in by_sku]
    if unknown:
        raise SkippableRecordError(f"order {order.external_id!r}: unknown SKU(s) in Odoo: {', '.join(unknown)} "
                                   "(no active product.product has that default_code)", record_key=order.external_id,
                                   field="lines.sku", hint="create the products in Odoo or fix the SKUs, then run "
                                                           "`storesync orders forward` again")
    return by_sku


def _partner(client: OdooClient, order: Order, settings: Any) -> int:
    searches = []
    if order.email:
        searches.append(([("email", "=ilike", order.email)], {"name": order.email, "email": order.email}))
    if order.phone:
        searches.append((["|", ("phone", "=", order.phone), ("mobile", "=", order.phone)],
                         {"name": order.phone, "phone": order.phone}))
    if not searches:
        searches.append(([("name", "=", settings.walk_in_partner)], {"name": settings.walk_in_partner}))
    for domain, _ in searches:
        found = client.call("res.partner", "search", domain=domain, limit=1, order="id asc")
        if found:
            return int(found[0])
    values = dict(searches[0][1])
    if order.phone and order.email:
        values["phone"] = order.phone
    (new_id,) = client.call("res.partner", "create", vals_list=[values])
    return int(new_id)
