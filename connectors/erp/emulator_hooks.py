"""Scenario hooks of the Odoo emulator: a product with a chosen SKU, and stock arriving or counted now.

Inventory scenarios need one SKU shared by every system; the seed catalogue has SKUs of its own. These functions
change an :class:`~.emulator_db.OdooDB` under its lock through its own ``create``/``write``, so ``write_date``
moves to the clock and the connector's incremental ``products`` and ``quants`` reads pick the change up.
The emulator has no pickings or ``stock.move`` (see ``DEVIATIONS``): a receipt raises the quant's ``quantity``
directly, as a done incoming move would. ``OdooEmulator.add_product``/``receive``/``set_on_hand`` call them.
"""

from __future__ import annotations

from collections.abc import Callable

from .emulator_db import OdooDB

__all__ = ["add_product", "receive", "set_on_hand"]


def add_product(db: OdooDB, sku: str, name: str, *, price: float = 88.0) -> int:
    """A storable, active ``product.product`` (with its template) whose ``default_code`` is ``sku``; its id."""
    sku = sku.strip()
    if not sku:
        raise ValueError("add_product: sku must not be empty")
    with db.lock:
        if _product_id(db, sku, missing_ok=True) is not None:
            raise ValueError(f"add_product: a product already has default_code {sku!r}")
        template = db.create("product.template", {"name": name, "list_price": float(price), "is_storable": True,
                                                   "active": True})
        return db.create("product.product", {"name": name, "product_tmpl_id": template, "default_code": sku,
                                             "list_price": float(price), "is_storable": True, "active": True})


def receive(db: OdooDB, sku: str, quantity: float, *, location: str = "WH/Stock") -> None:
    """``quantity`` units of ``sku`` arrive at the internal ``location`` now: its quant's on hand goes up."""
    if quantity <= 0:
        raise ValueError(f"receive: quantity must be positive, got {quantity!r}")
    _set(db, sku, location, lambda current: current + quantity)


def set_on_hand(db: OdooDB, sku: str, quantity: float, *, location: str = "WH/Stock") -> None:
    """The on-hand quantity of ``sku`` at the internal ``location`` becomes ``quantity`` now (a stock count)."""
    _set(db, sku, location, lambda current: quantity)


def _set(db: OdooDB, sku: str, location: str, new_total: Callable[[float], float]) -> None:
    with db.lock:
        product, place = _product_id(db, sku), _location_id(db, location)
        quants = sorted(q["id"] for q in db.tables["stock.quant"].values()
                        if q["product_id"] == product and q["location_id"] == place)
        current = sum(db.tables["stock.quant"][q]["quantity"] or 0.0 for q in quants)
        target = float(new_total(current))
        if not quants:
            db.create("stock.quant", {"product_id": product, "location_id": place, "quantity": target,
                                      "in_date": db.clock()})
            return
        first = db.tables["stock.quant"][quants[0]]
        # the pair's other quants (lots, packages) keep theirs; the first takes the difference
        db.write("stock.quant", quants[:1], {"quantity": (first["quantity"] or 0.0) + target - current,
                                             "in_date": db.clock()})


def _product_id(db: OdooDB, sku: str, *, missing_ok: bool = False) -> int | None:
    for record in db.tables["product.product"].values():
        if record.get("default_code") == sku.strip():
            return record["id"]
    if missing_ok:
        return None
    raise KeyError(f"no product.product with default_code {sku!r}")


def _location_id(db: OdooDB, location: str) -> int:
    """The internal location whose full name (``WH/Stock``) or short name is ``location``."""
    table = db.tables["stock.location"]
    found = [i for i, r in table.items() if db.computed("stock.location", r, "complete_name") == location] or \
        [i for i, r in table.items() if r["name"] == location]
    if len(found) != 1:
        names = sorted(db.computed("stock.location", r, "complete_name") for r in table.values()
                       if r["usage"] == "internal")
        raise KeyError(f"no single stock.location named {location!r}; the internal ones are {names}")
    if table[found[0]]["usage"] != "internal":
        raise ValueError(f"stock.location {location!r} is not internal (usage {table[found[0]]['usage']!r})")
    return found[0]
