"""The ``shopify`` connector: reads customers, products, orders, locations and inventory levels (REST 2024-07),
and writes stock back through GraphQL ``inventorySetQuantities`` with compare-and-set (``push``).

::

    [connectors.web]
    type = "shopify"
    shop = "lamkee.myshopify.com"
    access_token = "${SHOPIFY_TOKEN}"
    # base_url = "http://127.0.0.1:8080"     # instead of https://{shop}: the local emulator
    # pacing = true, bucket_size = 40, leak_rate = 2.0   # the plan's REST leaky bucket
    # page_size = 250
    # push_quantity = "available"             # the quantity push_inventory sets ("available" or "on_hand")
    # webhook_secret = "${SHOPIFY_WEBHOOK_SECRET}"   # signs webhooks; `storesync serve` verifies them with it
    # [connectors.web.http]                  # timeouts and retries (core.http.HttpSettings)

Incremental streams read ``updated_at_min=<cursor>`` (inclusive; the engine drops the records it already stored
at the boundary). Shopify lists come back in id order, not ``updated_at`` order, so the engine advances each cursor
only once a stream has been read to the end. ``emulator`` holds a local fake of the Admin API for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ...core.capabilities import PushOutcome, StockUpdate
from ...core.connector import Connector, RawPage, Stream
from ...core.hookspecs import hookimpl
from ...core.http import HttpSettings
from ...core.prefetch import prefetch
from .client import ShopifyClient
from .push import InventoryPusher

__all__ = ["ShopifyConnector", "ShopifySettings", "storesync_register_connectors"]

#: inventory_levels.json takes at most this many location ids per request
LOCATION_BATCH = 50


class ShopifySettings(BaseModel):
    """The ``[connectors.<id>]`` table of a ``shopify`` connector."""

    model_config = ConfigDict(extra="forbid")

    shop: str = Field(min_length=1, description="e.g. lamkee.myshopify.com")
    base_url: str | None = Field(None, description="overrides https://{shop} (the emulator, a proxy)")
    access_token: SecretStr
    api_version: str = Field("2024-07", pattern=r"^(\d{4}-\d{2}|unstable)$")
    pacing: bool = True
    bucket_size: int = Field(40, ge=1)
    leak_rate: float = Field(2.0, gt=0)
    page_size: int = Field(250, ge=1, le=250)
    push_quantity: Literal["available", "on_hand"] = "available"
    # the app's client secret, which signs webhooks (X-Shopify-Hmac-Sha256); storesync serve needs it
    webhook_secret: SecretStr | None = None
    http: HttpSettings = Field(default_factory=HttpSettings)

    @field_validator("shop")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        value = value.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
        if not value or "/" in value:
            raise ValueError(f"shop must be the shop's host name like 'lamkee.myshopify.com', got {value!r}")
        return value


class ShopifyConnector(Connector):
    """One Shopify shop."""

    name = "shopify"
    Settings = ShopifySettings
    default_mapping = "shopify.toml"
    raw_pages = True  # customers, products and orders: big syncs map pages in worker processes
    settings: ShopifySettings

    #: tests may hand in an ``httpx.MockTransport`` and a no-op sleep
    transport: Any = None
    sleep: Callable[[float], None] | None = None

    def client(self) -> ShopifyClient:
        """A fresh client (one per stream read; close it, or use it as a context manager)."""
        s = self.settings
        return ShopifyClient(name=f"shopify {self.id!r}", base_url=s.base_url or f"https://{s.shop}",
                             token=s.access_token.get_secret_value(), api_version=s.api_version, settings=s.http,
                             pacing=s.pacing, bucket_size=s.bucket_size, leak_rate=s.leak_rate,
                             transport=self.transport, sleep=self.sleep)

    def streams(self) -> list[Stream]:
        """customers, products, orders, locations and inventory_levels."""
        return [
            Stream("customers", "customer", cursor_field="updated_at", reader=self._lister("customers")),
            Stream("products", "product", cursor_field="updated_at", reader=self._lister("products")),
            Stream("orders", "order", cursor_field="updated_at", reader=self._lister("orders", status="any")),
            Stream("locations", "location", cursor_field=None, reader=self.read_locations),
            # levels have no id; admin_graphql_api_id is unique per (location, item) and is what the engine
            # de-duplicates the cursor boundary on (the mapping's key stays inventory_item_id + location_id)
            Stream("inventory_levels", "inventory_level", primary_key="admin_graphql_api_id",
                   cursor_field="updated_at", reader=self.read_inventory_levels),
        ]

    def check(self) -> str:
        """Read ``shop.json``: e.g. "Shopify shop 'Lam Kee' (lamkee.myshopify.com), API 2024-07"."""
        with self.client() as client:
            data, _ = client.get("shop")
        shop = (data or {}).get("shop") or {}
        domain = shop.get("myshopify_domain") or shop.get("domain") or self.settings.shop
        return f"Shopify shop {shop.get('name', '?')!r} ({domain}), API {self.settings.api_version}"

    def push_inventory(self, updates: Sequence[StockUpdate]) -> list[PushOutcome]:
        """Set stock through ``inventorySetQuantities``; a stale compare is a ``conflict`` outcome, never forced.

        ``item_id`` is the variant's ``inventory_item_id``, ``location_id`` the Shopify location id (plain ids
        or ``gid://`` ids). See :mod:`.push` for batching, compare values and idempotency keys.
        """
        if not updates:
            return []
        with self.client() as client:
            pusher = InventoryPusher(client.http, api_version=self.settings.api_version,
                                     quantity_name=self.settings.push_quantity,
                                     **({"sleep": self.sleep} if self.sleep else {}))
            return pusher.push(updates)

    # -- readers
    def _params(self, cursor: Any, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": self.settings.page_size, **extra}
        if cursor is not None:
            params["updated_at_min"] = str(cursor)
        return params

    def _lister(self, resource: str, **extra: Any) -> Callable[[Any], Iterator[RawPage]]:
        def read(cursor: Any) -> Iterator[RawPage]:
            with self.client() as client:
                # the next page downloads while this one is mapped and stored; big syncs map pages in
                # worker processes (core/pages.py)
                pages = client.raw_pages(resource, self._params(cursor, **extra), refetch=self._refetch)
                yield from prefetch(pages)
        return read

    def _refetch(self, url: str, params: Any) -> bytes:
        """One page downloaded again, on a client of its own (the stream's may be closed by then)."""
        with self.client() as client:
            return client.refetch(url, params)

    def read_locations(self, cursor: Any = None) -> Iterator[dict]:
        """Every location (a handful; Shopify does not page them, and there is no cursor)."""
        with self.client() as client:
            for page in client.pages("locations", {"limit": self.settings.page_size}):
                yield from page

    def read_inventory_levels(self, cursor: Any) -> Iterator[dict]:
        """Levels at every location, ``LOCATION_BATCH`` location ids per request, changed since ``cursor``."""
        with self.client() as client:
            ids = [str(loc["id"]) for page in client.pages("locations", {"limit": self.settings.page_size})
                   for loc in page]
            for start in range(0, len(ids), LOCATION_BATCH):
                params = self._params(cursor, location_ids=",".join(ids[start:start + LOCATION_BATCH]))
                for page in prefetch(client.pages("inventory_levels", params)):
                    for level in page:
                        level.setdefault("admin_graphql_api_id", "gid://shopify/InventoryLevel/"
                                         f"{level.get('location_id')}?inventory_item_id={level.get('inventory_item_id')}")
                        yield level


@hookimpl
def storesync_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Contribute the ``shopify`` connector type."""
    register(ShopifyConnector)
