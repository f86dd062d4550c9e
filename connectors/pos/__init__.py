"""The ``square`` connector: a merchant's Square tills (locations, catalog, stock, orders, customers).

::

    [connectors.tills]
    type = "square"
    access_token = "${SQUARE_TOKEN}"
    # base_url = "http://127.0.0.1:8081"      # instead of https://connect.squareup.com: the emulator, a sandbox
    # square_version = "2025-08-20"
    # location_ids = ["L1CWB0000000A"]         # default "all": every location the token sees
    # order_states = ["OPEN", "COMPLETED", "CANCELED"]
    # [connectors.tills.http]                  # timeouts and retries (core.http.HttpSettings)

Streams and how each reads incrementally (the engine keeps the cursor and drops records it already stored at the
boundary):

- ``locations``: ``GET /v2/locations`` (never paged, read whole every run);
- ``catalog``: ``POST /v2/catalog/search`` for ``ITEM`` objects (variations nested) with ``begin_time`` and
  deleted objects included, so ``is_deleted`` reaches the store;
- ``inventory``: ``POST /v2/inventory/counts/batch-retrieve``; counts changed since the cursor name the
  (variation, location) pairs to re-read whole, folded into one record per pair (``records.level_records``);
- ``orders``: ``POST /v2/orders/search`` with an ``updated_at`` filter sorted by ``UPDATED_AT``, 10 locations per
  search;
- ``customers``: ``POST /v2/customers/search`` filtered on ``updated_at``.

``push_inventory`` sets stock with ``PHYSICAL_COUNT`` changes (``push.py``); ``webhooks.py`` verifies and reads
Square's event notifications; ``emulator`` is a local fake of the API for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ...core.capabilities import PushOutcome, StockUpdate
from ...core.connector import Connector, Stream
from ...core.hookspecs import hookimpl
from ...core.http import HttpSettings
from ...core.prefetch import prefetch
from . import push, webhooks
from .client import SquareClient
from .records import level_records, step_back

__all__ = ["SquareConnector", "SquareSettings", "storesync_register_connectors"]

#: SearchOrders takes at most this many location ids
ORDER_LOCATION_BATCH = 10
#: catalog object ids per batch-retrieve when re-reading changed pairs
COUNT_ID_BATCH = 100
OrderState = Literal["OPEN", "COMPLETED", "CANCELED", "DRAFT"]


class SquareSettings(BaseModel):
    """The ``[connectors.<id>]`` table of a ``square`` connector."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr
    base_url: str = Field("https://connect.squareup.com", description="the sandbox, the emulator or a proxy")
    square_version: str = Field("2025-08-20", pattern=r"^\d{4}-\d{2}-\d{2}$")
    location_ids: list[str] | Literal["all"] = "all"
    order_states: list[OrderState] = Field(default_factory=lambda: ["OPEN", "COMPLETED", "CANCELED"], min_length=1)
    customer_page_size: int = Field(100, ge=1, le=100)
    order_page_size: int = Field(500, ge=1, le=1000)
    catalog_page_size: int = Field(100, ge=1, le=1000)
    count_page_size: int = Field(1000, ge=1, le=1000)
    webhook_signature_key: SecretStr | None = None
    notification_url: str | None = Field(None, description="the URL Square posts events to (signed with the body)")
    http: HttpSettings = Field(default_factory=HttpSettings)

    @field_validator("location_ids")
    @classmethod
    def _some_locations(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and not [v for v in value if v.strip()]:
            raise ValueError('location_ids must list at least one location id, or be "all"')
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"base_url must start with https:// (or http:// for a local emulator), got {value!r}")
        return value.rstrip("/")


class SquareConnector(Connector):
    """One Square seller account and its till locations."""

    name = "square"
    Settings = SquareSettings
    default_mapping = "pos.toml"
    settings: SquareSettings

    #: tests may hand in an ``httpx.MockTransport`` and a no-op sleep
    transport: Any = None
    sleep: Callable[[float], None] | None = None

    def client(self) -> SquareClient:
        """A fresh client (close it, or use it as a context manager)."""
        s = self.settings
        return SquareClient(name=f"square {self.id!r}", base_url=s.base_url, token=s.access_token.get_secret_value(),
                            square_version=s.square_version, settings=s.http, transport=self.transport,
                            sleep=self.sleep)

    def streams(self) -> list[Stream]:
        """locations, catalog, inventory, orders and customers."""
        return [
            Stream("locations", "location", reader=self.read_locations),
            Stream("catalog", "product", cursor_field="updated_at", reader=self.read_catalog),
            Stream("inventory", "inventory_level", cursor_field="calculated_at", reader=self.read_inventory),
            Stream("orders", "order", cursor_field="updated_at", reader=self.read_orders),
            Stream("customers", "customer", cursor_field="updated_at", reader=self.read_customers),
        ]

    def check(self) -> str:
        """List locations: e.g. "Square, 4 locations (Causeway Bay Shop, ...), Square-Version 2025-08-20"."""
        with self.client() as client:
            found = self._locations(client)
        names = ", ".join(str(loc.get("name")) for loc in found[:5]) + (", ..." if len(found) > 5 else "")
        return f"Square, {len(found)} locations ({names}), Square-Version {self.settings.square_version}"

    # -- readers
    def read_locations(self, cursor: Any = None) -> Iterator[dict]:
        """Every location the token sees (or those in ``location_ids``)."""
        with self.client() as client:
            yield from self._locations(client)

    def read_catalog(self, cursor: Any) -> Iterator[dict]:
        """ITEM objects (variations nested) changed since ``cursor``, deleted ones included."""
        body: dict[str, Any] = {"object_types": ["ITEM"], "include_deleted_objects": True,
                                "limit": self.settings.catalog_page_size}
        if cursor:
            body["begin_time"] = step_back(cursor)
        with self.client() as client:
            for page in prefetch(client.post_pages("/v2/catalog/search", "objects", body)):
                yield from (obj for obj in page if obj.get("type") == "ITEM")

    def read_inventory(self, cursor: Any) -> Iterator[dict]:
        """One folded record per (variation, location) whose counts changed since ``cursor``.

        A full read folds every count in memory (the catalog times the locations, not the history); an
        incremental one remembers only the changed pairs and re-reads all their states.
        """
        with self.client() as client:
            counts = self._counts(client, self._location_ids(client), updated_after=step_back(cursor))
            if not cursor:  # every count of every pair: fold them as they are
                yield from level_records(counts)
                return
            changed = {(c["catalog_object_id"], c["location_id"]) for c in counts}
            yield from self.current_levels(client, changed)

    def current_levels(self, client: SquareClient, pairs: set[tuple[str, str]]) -> Iterator[dict]:
        """Whole folded records (every state) of the given (catalog object id, location id) pairs."""
        ids = sorted({item for item, _ in pairs})
        locations = sorted({loc for _, loc in pairs})
        for start in range(0, len(ids), COUNT_ID_BATCH):
            counts = self._counts(client, locations, catalog_object_ids=ids[start:start + COUNT_ID_BATCH])
            for record in level_records(counts):
                if (record["catalog_object_id"], record["location_id"]) in pairs:
                    yield record

    def read_orders(self, cursor: Any) -> Iterator[dict]:
        """Orders in ``order_states`` updated at or after ``cursor``, oldest change first, per 10 locations."""
        with self.client() as client:
            ids = self._location_ids(client)
            for start in range(0, len(ids), ORDER_LOCATION_BATCH):
                query: dict[str, Any] = {"filter": {"state_filter": {"states": list(self.settings.order_states)}},
                                         "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}}
                if cursor:
                    query["filter"]["date_time_filter"] = {"updated_at": {"start_at": str(cursor)}}
                body = {"location_ids": ids[start:start + ORDER_LOCATION_BATCH], "query": query,
                        "limit": self.settings.order_page_size}
                # the next page downloads while this one is mapped and stored
                for page in prefetch(client.post_pages("/v2/orders/search", "orders", body)):
                    yield from page

    def read_customers(self, cursor: Any) -> Iterator[dict]:
        """Customers updated at or after ``cursor`` (Square sorts them by its default order, not by update)."""
        body: dict[str, Any] = {"limit": self.settings.customer_page_size}
        if cursor:
            body["query"] = {"filter": {"updated_at": {"start_at": str(cursor)}}}
        with self.client() as client:
            for page in prefetch(client.post_pages("/v2/customers/search", "customers", body)):
                yield from page

    # -- capabilities
    def push_inventory(self, updates: list[StockUpdate]) -> list[PushOutcome]:
        """Set IN_STOCK counts with PHYSICAL_COUNT changes; see :func:`push.push_inventory` (read-then-write)."""
        with self.client() as client:
            return push.push_inventory(client, updates)

    def resolve_event(self, body: bytes | str | dict) -> webhooks.EventRecords:
        """Turn a webhook body into complete stream records, fetching what the event only refers to.

        Orders events carry only the order id, and an ``inventory.count.updated`` event only the states that
        changed: both are re-read here so the records equal what the streams yield.
        """
        event = webhooks.event_records(body)
        if not event.refetch:
            return event
        with self.client() as client:
            return webhooks.complete(event, client, self.current_levels)

    # -- helpers
    def _locations(self, client: SquareClient) -> list[dict]:
        data = client.get("/v2/locations")
        found = data.get("locations") or []
        if self.settings.location_ids == "all":
            return found
        keep = frozenset(self.settings.location_ids)
        return [loc for loc in found if loc.get("id") in keep]

    def _location_ids(self, client: SquareClient) -> list[str]:
        wanted = self.settings.location_ids
        return list(wanted) if wanted != "all" else [str(loc["id"]) for loc in self._locations(client)]

    def _counts(self, client: SquareClient, location_ids: list[str], *, updated_after: str | None = None,
                catalog_object_ids: list[str] | None = None) -> Iterator[dict]:
        body: dict[str, Any] = {"location_ids": location_ids, "limit": self.settings.count_page_size}
        if updated_after:
            body["updated_after"] = updated_after
        if catalog_object_ids:
            body["catalog_object_ids"] = catalog_object_ids
        for page in client.post_pages("/v2/inventory/counts/batch-retrieve", "counts", body):
            yield from page


@hookimpl
def storesync_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Contribute the ``square`` connector type."""
    register(SquareConnector)
