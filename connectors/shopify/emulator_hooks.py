"""Scenario hooks of the Shopify emulator: put a product with a chosen SKU in the shop and place web orders now.

Inventory scenarios need one SKU shared by every system and sales that happen "now"; the seed catalogue has
SKUs of its own. These functions change a :class:`~.emulator_data.Store` the way Shopify would, under its lock,
and stamp everything with ``Store.tick()`` so an incremental sync (``updated_at_min``) picks the change up.
``ShopifyEmulator.add_product``/``place_order``/``available`` call them; they are never faulted.

The emulator tracks only ``available`` (see ``DEVIATIONS``): placing an order takes the ordered units out of
``available`` at the order's location, as Shopify does when it commits stock at order time; ``committed`` is
not served.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from .emulator_data import SHOP_ID, Store, _embed, _money, gid, level_gid, money_set, ts

__all__ = ["DEFAULT_CUSTOMER", "add_product", "available", "place_order"]

#: who places an order when the scenario names no one
DEFAULT_CUSTOMER = {"first_name": "Tai Man", "last_name": "Chan", "phone": "+85291234567",
                    "email": "taiman.chan@example.com.hk"}

# id ranges above anything the seed generator reaches (it starts lower and adds at most 97 per record)
_LINE_IDS, _ADDRESS_IDS = 15_900_000_000_000, 9_900_000_000_000


def _next_id(table: Any, floor: int) -> int:
    """An id above every key of ``table`` (and at least ``floor``), so id-ordered paging finds it last."""
    return max(table.keys[-1] + 1 if table.keys else floor, floor)


def _cents(price: str) -> int:
    units, _, fraction = f"{price}".partition(".")
    return int(units) * 100 + int((fraction + "00")[:2])


def add_product(store: Store, sku: str, title: str, *, price: str = "88.00",
                stock: dict[int, int] | None = None) -> dict[str, int]:
    """A new active product with one variant ``sku`` and a level per location of ``stock`` (location -> available).

    Returns ``{"product_id", "variant_id", "inventory_item_id"}``. A duplicate SKU or an unknown location is a
    ``ValueError``/``KeyError`` naming it, and nothing is added.
    """
    sku, stock = sku.strip(), dict(stock or {})
    if not sku:
        raise ValueError("add_product: sku must not be empty")
    cents = _cents(price)
    with store.lock:
        if _variant_of(store, sku) is not None:
            raise ValueError(f"add_product: the shop already has a variant with sku {sku!r}")
        for location in stock:
            if location not in store.locations:
                raise KeyError(f"add_product: no location {location!r}; the shop's are {list(store.locations.keys)}")
        pid = _next_id(store.products, 8_104_000_000_000)
        vid = _next_id(store.variants, 44_210_000_000_000)
        item = max(max(store.item_variant, default=0) + 1, 46_305_000_000_000)
        stamp = ts(store.tick())
        variant = {
            "id": vid, "product_id": pid, "title": "Default Title", "price": _money(cents), "sku": sku,
            "position": 1, "inventory_policy": "deny", "compare_at_price": None, "fulfillment_service": "manual",
            "inventory_management": "shopify", "option1": "Default Title", "option2": None, "option3": None,
            "created_at": stamp, "updated_at": stamp, "taxable": False, "barcode": None, "grams": 200,
            "image_id": None, "weight": 0.2, "weight_unit": "kg", "inventory_item_id": item,
            "inventory_quantity": sum(stock.values()), "old_inventory_quantity": sum(stock.values()),
            "presentment_prices": [{"price": {"amount": _money(cents), "currency_code": "HKD"},
                                    "compare_at_price": None}],
            "requires_shipping": True, "admin_graphql_api_id": gid("ProductVariant", vid)}
        store.variants[vid] = variant
        store.item_variant[item] = vid
        store.products[pid] = {
            "id": pid, "title": title, "body_html": f"<p>{title}</p>", "vendor": "Harbour Goods",
            "product_type": "Scenario", "created_at": stamp, "handle": f"{sku.lower()}-{pid}", "updated_at": stamp,
            "published_at": stamp, "template_suffix": None, "published_scope": "web", "tags": "",
            "status": "active", "admin_graphql_api_id": gid("Product", pid), "variants": [variant],
            "options": [{"id": pid + 1, "product_id": pid, "name": "Title", "position": 1,
                         "values": ["Default Title"]}],
            "images": [], "image": None}
        for location in sorted(stock):
            store.inventory_levels[(item, location)] = {
                "inventory_item_id": item, "location_id": location, "available": int(stock[location]),
                "updated_at": stamp, "admin_graphql_api_id": level_gid(item, location)}
        return {"product_id": pid, "variant_id": vid, "inventory_item_id": item}


def available(store: Store, inventory_item_id: int, location_id: int) -> int:
    """The level's ``available`` (``KeyError`` when the item is not stocked at the location)."""
    with store.lock:
        return int(store.inventory_levels[(inventory_item_id, location_id)]["available"])


def place_order(store: Store, lines: list[tuple[str, int]], *, customer: dict | None = None,
                location_id: int | None = None) -> int:
    """A new open, paid, unfulfilled web order created now; stock leaves ``available`` at once. Returns its id.

    Each line's units come out of the level at ``location_id`` if given, else at the first location (in id
    order) where the item has units available, else the first where it is stocked at all; ``available`` may go
    negative (the hook places the order whatever the variant's ``inventory_policy``). ``customer`` (first_name,
    last_name, phone, email) is matched to a shop customer by e-mail or phone, or created; it defaults to
    :data:`DEFAULT_CUSTOMER`. An unknown SKU, a non-positive quantity or an unstocked location is an error
    raised before anything changes.
    """
    if not lines:
        raise ValueError("place_order: an order needs at least one (sku, quantity) line")
    person = {**DEFAULT_CUSTOMER, **(customer or {})}
    with store.lock:
        picked = []
        for sku, quantity in lines:
            if int(quantity) <= 0:
                raise ValueError(f"place_order: quantity of {sku!r} must be positive, got {quantity!r}")
            variant = _variant_of(store, sku)
            if variant is None:
                raise KeyError(f"place_order: no variant with sku {sku!r}")
            picked.append((variant, int(quantity), _source_location(store, variant, location_id)))
        now = store.tick()
        stamp = ts(now)
        buyer = _customer(store, person, stamp)
        oid = _next_id(store.orders, 5_912_000_000_000)
        number = len(store.orders) + 1001
        line_items, subtotal, weight = [], 0, 0
        for variant, quantity, _location in picked:
            product = store.products[variant["product_id"]]
            cents = _cents(variant["price"])
            subtotal += cents * quantity
            weight += variant["grams"] * quantity
            line_id = store.hook_line_id = max(getattr(store, "hook_line_id", _LINE_IDS), _LINE_IDS) + 1
            line_items.append({
                "id": line_id, "admin_graphql_api_id": gid("LineItem", line_id), "current_quantity": quantity,
                "fulfillable_quantity": quantity, "fulfillment_service": "manual", "fulfillment_status": None,
                "gift_card": False, "grams": variant["grams"], "name": product["title"],
                "price": variant["price"], "price_set": money_set(variant["price"]), "product_exists": True,
                "product_id": product["id"], "properties": [], "quantity": quantity, "requires_shipping": True,
                "sku": variant["sku"], "taxable": False, "title": product["title"], "total_discount": "0.00",
                "total_discount_set": money_set("0.00"), "variant_id": variant["id"],
                "variant_inventory_management": "shopify",
                "variant_title": None if variant["title"] == "Default Title" else variant["title"],
                "vendor": product["vendor"], "tax_lines": [], "duties": [], "discount_allocations": []})
        store.orders[oid] = _order(oid, number, stamp, buyer, line_items, subtotal, weight, location_id,
                                   store.shop.get("domain", ""))
        for variant, quantity, location in picked:
            item = variant["inventory_item_id"]
            store.set_available(item, location, available(store, item, location) - quantity)
        return oid


def _variant_of(store: Store, sku: str) -> dict | None:
    needle = orjson.dumps(sku.strip())
    for key in store.variants.keys:
        raw = store.variants.raw[key]
        if b'"sku":' + needle in raw:
            variant = orjson.loads(raw)
            if variant["sku"] == sku.strip():
                return variant
    return None


def _source_location(store: Store, variant: dict, location_id: int | None) -> int:
    item = variant["inventory_item_id"]
    if location_id is not None:
        if (item, location_id) not in store.inventory_levels:
            raise KeyError(f"place_order: sku {variant['sku']!r} is not stocked at location {location_id}")
        return location_id
    stocked = [loc for loc in store.locations.keys if (item, loc) in store.inventory_levels]
    if not stocked:
        raise KeyError(f"place_order: sku {variant['sku']!r} is not stocked at any location")
    return next((loc for loc in stocked if available(store, item, loc) > 0), stocked[0])


def _customer(store: Store, person: dict, stamp: str) -> dict:
    """The shop customer with this e-mail or phone (touched: ordering updates a customer), or a new one."""
    email, phone = person.get("email"), person.get("phone")
    for key in store.customers.keys:
        record = store.customers[key]
        if (email and record.get("email") == email) or (phone and record.get("phone") == phone):
            record["orders_count"] = record.get("orders_count", 0) + 1
            record["updated_at"] = stamp
            store.customers[key] = record
            return record
    cid = _next_id(store.customers, 7_312_000_000_000)
    first, last = person.get("first_name"), person.get("last_name")
    address = {"id": max(_ADDRESS_IDS, cid), "customer_id": cid, "first_name": first, "last_name": last,
               "company": None, "address1": person.get("address1", "Flat A, 12/F, Sino Centre"),
               "address2": person.get("address2", "582 Nathan Road"), "city": person.get("city", "Mong Kok"),
               "province": "Kowloon", "country": "Hong Kong", "zip": "", "phone": phone,
               "name": f"{first} {last}", "province_code": "KL", "country_code": "HK", "country_name": "Hong Kong",
               "default": True}
    record = {
        "id": cid, "email": email, "created_at": stamp, "updated_at": stamp, "first_name": first,
        "last_name": last, "orders_count": 1, "state": "enabled", "total_spent": "0.00", "last_order_id": None,
        "note": None, "verified_email": email is not None, "multipass_identifier": None, "tax_exempt": False,
        "tags": "", "last_order_name": None, "currency": "HKD", "phone": phone, "addresses": [address],
        "tax_exemptions": [], "email_marketing_consent": None, "sms_marketing_consent": None,
        "admin_graphql_api_id": gid("Customer", cid), "default_address": address}
    store.customers[cid] = record
    return record


def _order(oid: int, number: int, stamp: str, buyer: dict, line_items: list[dict], subtotal: int, weight: int,
           location_id: int | None, domain: str) -> dict:
    """The order as the seed's web orders look (REST 2024-07), paid and unfulfilled."""
    token = secrets.token_hex(16)
    total = _money(subtotal)
    embed = _embed(buyer)
    a = buyer["default_address"]
    address = {k: a.get(k) for k in ("first_name", "address1", "phone", "city", "zip", "province", "country",
                                      "last_name", "address2", "company", "name", "country_code", "province_code")}
    zero = money_set("0.00")
    return {
        "id": oid, "admin_graphql_api_id": gid("Order", oid), "app_id": 580_111, "browser_ip": "203.198.23.10",
        "buyer_accepts_marketing": False, "cancel_reason": None, "cancelled_at": None, "cart_token": token,
        "checkout_id": oid + 1, "checkout_token": token, "client_details": None, "closed_at": None,
        "confirmation_number": token[:9].upper(), "confirmed": True, "contact_email": buyer["email"],
        "created_at": stamp, "currency": "HKD", "current_subtotal_price": total,
        "current_subtotal_price_set": money_set(total), "current_total_additional_fees_set": None,
        "current_total_discounts": "0.00", "current_total_discounts_set": zero, "current_total_duties_set": None,
        "current_total_price": total, "current_total_price_set": money_set(total), "current_total_tax": "0.00",
        "current_total_tax_set": zero, "customer_locale": "zh-TW", "device_id": None, "discount_applications": [],
        "discount_codes": [], "email": buyer["email"] or "", "estimated_taxes": False, "financial_status": "paid",
        "fulfillment_status": None, "landing_site": "/", "landing_site_ref": None, "location_id": location_id,
        "merchant_of_record_app_id": None, "name": f"#{number}", "note": None, "note_attributes": [],
        "number": number - 1000, "order_number": number,
        "order_status_url": f"https://{domain}/{SHOP_ID}/orders/{token}/authenticate?key={token[::-1]}",
        "original_total_additional_fees_set": None, "original_total_duties_set": None,
        "payment_gateway_names": ["shopify_payments"], "payment_terms": None, "phone": buyer["phone"],
        "po_number": None, "presentment_currency": "HKD", "processed_at": stamp, "reference": None,
        "referring_site": None, "refunds": [], "source_identifier": None, "source_name": "web", "source_url": None,
        "subtotal_price": total, "subtotal_price_set": money_set(total), "tags": "", "tax_exempt": False,
        "tax_lines": [], "taxes_included": True, "test": False, "token": token, "total_discounts": "0.00",
        "total_discounts_set": zero, "total_line_items_price": total, "total_line_items_price_set": money_set(total),
        "total_outstanding": "0.00", "total_price": total, "total_price_set": money_set(total),
        "total_shipping_price_set": zero, "total_tax": "0.00", "total_tax_set": zero, "total_tip_received": "0.00",
        "total_weight": weight, "updated_at": stamp, "user_id": None, "billing_address": address,
        "customer": embed, "fulfillments": [], "line_items": line_items, "shipping_address": address,
        "shipping_lines": []}
