"""Canonical pydantic models: the contract between mappings and the rest of storesync.

Every source record keeps its origin through ``external_id`` (plus the connector instance and stream the
engine knows). Money is ``Decimal`` with an ISO currency, datetimes are timezone-aware, phones are E.164,
emails lower-case. ``attributes`` keeps whatever extra source fields a merchant's mapping names.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "ENTITIES",
    "Canonical",
    "Customer",
    "Event",
    "InventoryLevel",
    "Location",
    "Message",
    "Order",
    "OrderLine",
    "Person",
    "Product",
    "Variant",
]

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _check_phone(value: str) -> str:
    if not _E164.match(value):
        raise ValueError(f"phone must be E.164 like +85291234567, got {value!r} (use transform 'phone_e164')")
    return value


def _check_email(value: str) -> str:
    if (value != value.lower() or "@" not in value):
        raise ValueError(f"email must be lower-case with an '@', got {value!r} (use transform 'email')")
    return value


def _check_currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise ValueError(f"currency must be an ISO 4217 code like 'HKD', got {value!r}")
    return value


Phone = Annotated[str, AfterValidator(_check_phone)]
Email = Annotated[str, AfterValidator(_check_email)]
Currency = Annotated[str, AfterValidator(_check_currency)]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Canonical(_Base):
    """Fields every per-source canonical record has."""

    external_id: str = Field(min_length=1, description="the record's id in its source system")
    deleted: bool = False
    updated_at: AwareDatetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Customer(Canonical):
    """A customer as one source system knows it; identity resolution links it to a Person."""

    email: Email | None = None
    phone: Phone | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    member_id: str | None = None
    birth_date: date | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    language: str | None = None
    tags: list[str] = Field(default_factory=list)
    email_consent: bool | None = None
    sms_consent: bool | None = None
    created_at: AwareDatetime | None = None



class Person(_Base):
    """The golden customer: one real person behind several source customers."""

    id: int | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    member_id: str | None = None
    birth_date: date | None = None
    language: str | None = None
    sms_consent: bool | None = None
    email_consent: bool | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    # identity resolution: the golden address and how many source records the person joins
    address_line1: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    records: int | None = None


class Variant(Canonical):
    """A sellable unit; products meet across systems by SKU."""

    sku: str | None = None
    product_external_id: str | None = None
    title: str | None = None
    barcode: str | None = None
    price: Decimal | None = None
    currency: Currency | None = None
    inventory_item_id: str | None = None
    inventory_policy: Literal["deny", "continue"] | None = None
    tracked: bool | None = None



class Product(Canonical):
    """A product with its variants (stored as rows of their own)."""

    title: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    status: str | None = None
    tags: list[str] = Field(default_factory=list)
    created_at: AwareDatetime | None = None
    variants: list[Variant] = Field(default_factory=list)


class Location(Canonical):
    """A place stock lives or sales happen: a shop floor, a warehouse, the web shop."""

    name: str | None = None
    code: str | None = None
    address_line1: str | None = None
    city: str | None = None
    country_code: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    active: bool = True


class InventoryLevel(Canonical):
    """One report of stock of one SKU at one source location, by one connector, as of a moment."""

    sku: str | None = None
    variant_external_id: str | None = None
    location_external_id: str
    on_hand: int | None = None
    available: int | None = None
    committed: int | None = None
    incoming: int | None = None
    as_of: AwareDatetime | None = None


class OrderLine(_Base):
    """One line of an order."""

    external_id: str | None = None
    sku: str | None = None
    variant_external_id: str | None = None
    title: str | None = None
    quantity: int
    unit_price: Decimal | None = None
    total: Decimal | None = None
    fulfilled_quantity: int | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Order(Canonical):
    """A web order, a till receipt or an ERP sales order."""

    number: str | None = None
    customer_external_id: str | None = None
    email: Email | None = None
    phone: Phone | None = None
    currency: Currency
    subtotal: Decimal | None = None
    total: Decimal | None = None
    status: Literal["open", "closed", "cancelled"] = "open"
    financial_status: str | None = None
    fulfillment_status: str | None = None
    cancelled_at: AwareDatetime | None = None
    created_at: AwareDatetime
    location_external_id: str | None = None
    source_name: str | None = None
    lines: list[OrderLine] = Field(default_factory=list)



class Message(_Base):
    """An outbound message to a customer (SMS and other channels)."""

    id: int | None = None
    idempotency_key: str
    person_id: int | None = None
    to: Phone
    body: str
    purpose: Literal["transactional", "marketing"] = "transactional"
    language: str | None = None
    status: str = "pending"



class Event(_Base):
    """A domain event fanned out through ``storesync_event``."""

    type: str
    id: str
    occurred_at: AwareDatetime
    data: dict[str, Any] = Field(default_factory=dict)


#: canonical targets a stream may name, by the name used in mappings
ENTITIES: dict[str, type[Canonical]] = {
    "customer": Customer,
    "product": Product,
    "variant": Variant,
    "location": Location,
    "inventory_level": InventoryLevel,
    "order": Order,
}
