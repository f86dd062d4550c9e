"""The ``odoo`` connector: the back office in Odoo (partners, products, stock locations and quants, sale orders).

::

    [connectors.erp]
    type = "odoo"
    url = "https://mycompany.odoo.com"
    database = "mycompany"
    login = "storesync@mycompany.com"
    api_key = "${ODOO_API_KEY}"
    transport = "jsonrpc"                     # Odoo up to 18; "json2" for Odoo 19+ (/json/2 with a bearer key)
    # stock_locations = ["WH/Stock"]          # default: every internal location (children included)
    # forward_orders_from = ["shop", "tills"] # write those connectors' orders into Odoo as sale orders
    # [connectors.erp.http]                   # timeouts and retries (core.http.HttpSettings)

Streams (each incremental on ``write_date``, see ``records.py``; archived records arrive with ``active`` false):

- ``partners``: ``res.partner``;  ``products``: ``product.product`` (``default_code`` is the SKU);
- ``locations``: ``stock.location`` of the stock locations (read whole every run);
- ``quants``: ``stock.quant`` at the stock locations, folded per (product, location): on hand, reserved and
  available; a changed quant makes its whole pair be read again;
- ``sale_orders``: ``sale.order`` with their lines (``sale.order.line``) and each line's SKU.

``create_order`` writes an order exactly once (``orders.py``); ``push_inventory`` sets stock in inventory mode
(``stock.py``); ``emulator`` is a local Odoo for tests and demos.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ...core.capabilities import OrderReceipt, PushOutcome, StockUpdate
from ...core.connector import Checkpoint, Connector, Invalid, Stream
from ...core.errors import ConfigError
from ...core.hookspecs import hookimpl
from ...core.http import HttpSettings
from ...core.models import Order
from ...core.prefetch import prefetch
from . import orders, stock
from .client import Json2Client, JsonRpcClient, OdooClient, OdooRecordError
from .records import clean, fold_quants, seek_pages, step_back

__all__ = ["OdooConnector", "OdooSettings", "storesync_register_connectors"]

PARTNER_FIELDS = ["name", "email", "phone", "mobile", "is_company", "parent_id", "ref", "active", "street", "city",
                  "zip", "country_code", "lang", "create_date"]
PRODUCT_FIELDS = ["name", "default_code", "barcode", "list_price", "product_tmpl_id", "active", "is_storable"]
LOCATION_FIELDS = ["name", "complete_name", "usage", "location_id", "warehouse_id", "active", "write_date"]
QUANT_FIELDS = ["product_id", "location_id", "quantity", "reserved_quantity", "available_quantity"]
ORDER_FIELDS = ["name", "partner_id", "state", "date_order", "client_order_ref", "origin", "amount_untaxed",
                "amount_total", "currency_id", "warehouse_id", "order_line", "create_date"]
LINE_FIELDS = ["order_id", "product_id", "name", "product_uom_qty", "qty_delivered", "price_unit", "price_subtotal"]
BOOLEANS = ("active", "is_company", "is_storable")
ALL = {"active_test": False}  # archived records too: they become tombstones through the mapping


class OdooSettings(BaseModel):
    """The ``[connectors.<id>]`` table of an ``odoo`` connector."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="the Odoo server, e.g. https://mycompany.odoo.com")
    database: str = Field(min_length=1)
    login: str = Field(min_length=1)
    api_key: SecretStr
    transport: Literal["jsonrpc", "json2"] = "jsonrpc"
    stock_locations: list[str] = Field(default_factory=list,
                                       description="complete names of the stock locations; default: all internal")
    page_size: int = Field(200, ge=1, le=5000)
    lookback_seconds: int = Field(0, ge=0, le=86400, description="re-read this much before the cursor")
    forward_orders_from: list[str] = Field(default_factory=list,
                                           description="connector ids whose orders are written into Odoo")
    confirm_orders: bool = Field(True, description="confirm forwarded sale orders (reserves their stock)")
    walk_in_partner: str = Field("Walk-in customer", min_length=1,
                                 description="partner of forwarded orders with neither email nor phone")
    http: HttpSettings = Field(default_factory=HttpSettings)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"url must start with https:// (or http:// for a local emulator), got {value!r}")
        return value.rstrip("/")


class OdooConnector(Connector):
    """One Odoo database."""

    name = "odoo"
    Settings = OdooSettings
    default_mapping = "erp.toml"
    settings: OdooSettings

    #: tests may hand in an ``httpx.MockTransport`` and a no-op sleep
    transport: Any = None
    sleep: Callable[[float], None] | None = None

    def client(self) -> OdooClient:
        """A fresh client for the configured transport (close it, or use it as a context manager)."""
        s = self.settings
        cls = Json2Client if s.transport == "json2" else JsonRpcClient
        return cls(name=f"odoo {self.id!r}", url=s.url, database=s.database, login=s.login,
                   api_key=s.api_key.get_secret_value(), settings=s.http, transport=self.transport, sleep=self.sleep)

    def streams(self) -> list[Stream]:
        """partners, products, locations, quants and sale_orders."""
        return [
            Stream("partners", "customer", reader=self.read_partners),
            Stream("products", "variant", reader=self.read_products),
            Stream("locations", "location", reader=self.read_locations),
            Stream("quants", "inventory_level", reader=self.read_quants),
            Stream("sale_orders", "order", reader=self.read_sale_orders),
        ]

    def check(self) -> str:
        """e.g. "Odoo database 'shop' as 'admin' over JSON-RPC: 2 stock locations, 30 sale orders"."""
        with self.client() as client:
            locations = self._stock_location_ids(client)
            count = client.call("sale.order", "search_count", domain=[])
        return (f"Odoo database {self.settings.database!r} as {self.settings.login!r} over "
                f"{client.transport_name}: {len(locations)} stock locations, {count} sale orders")

    # -- readers
    def read_partners(self, cursor: Any) -> Iterator[dict | Checkpoint]:
        """``res.partner`` changed since the cursor, archived ones included."""
        yield from self._incremental("res.partner", [], PARTNER_FIELDS, cursor, ALL)

    def read_products(self, cursor: Any) -> Iterator[dict | Checkpoint]:
        """``product.product`` changed since the cursor, archived ones included."""
        yield from self._incremental("product.product", [], PRODUCT_FIELDS, cursor, ALL)

    def read_locations(self, cursor: Any = None) -> Iterator[dict]:
        """Every stock location (small: read whole)."""
        with self.client() as client:
            ids = self._stock_location_ids(client)
            found = client.call("stock.location", "search_read", domain=[("id", "in", ids)], fields=LOCATION_FIELDS,
                                order="id asc", context=dict(ALL))
        yield from (clean(r, BOOLEANS) for r in found)

    def read_quants(self, cursor: Any) -> Iterator[dict | Checkpoint]:
        """Folded (product, location) stock of the pairs whose quants changed since the cursor."""
        with self.client() as client:
            locations = self._stock_location_ids(client)
            changed, newest = {}, None
            for page in seek_pages(client, "stock.quant", [("location_id", "in", locations)], QUANT_FIELDS,
                                   since=self._since(cursor), page_size=self.settings.page_size):
                for quant in page:
                    changed.setdefault((quant["product_id"][0], quant["location_id"][0]), []).append(quant)
                newest = page[-1]["write_date"]
            if cursor:  # a pair's other quants did not change: read each changed pair whole
                changed = self._whole_pairs(client, set(changed))
            quants = [q for group in changed.values() for q in group]
            yield from fold_quants(quants, self._skus(client, {q["product_id"][0] for q in quants}))
        if newest:
            yield Checkpoint({"write_date": newest})

    def read_sale_orders(self, cursor: Any) -> Iterator[dict | Checkpoint | Invalid]:
        """``sale.order`` changed since the cursor, each with ``lines``; an order whose lines vanished is Invalid."""
        with self.client() as client:
            pages = seek_pages(client, "sale.order", [], ORDER_FIELDS, since=self._since(cursor),
                               page_size=self.settings.page_size)
            # the next page and its lines download while this one is mapped and stored
            for page, orders in prefetch((page, list(self._with_lines(client, page))) for page in pages):
                yield from orders
                yield Checkpoint({"write_date": page[-1]["write_date"]})

    # -- capabilities
    def create_order(self, order: Order) -> OrderReceipt:
        """Create ``order`` as a sale order once, keyed by ``client_order_ref = order.external_id``."""
        with self.client() as client:
            return orders.create_order(client, order, self.settings)

    def push_inventory(self, updates: list[StockUpdate]) -> list[PushOutcome]:
        """Set on-hand quantities in inventory mode and apply them (``stock.py``)."""
        with self.client() as client:
            return stock.push_inventory(client, updates)

    # -- helpers
    def _since(self, cursor: Any) -> str | None:
        second = cursor.get("write_date") if isinstance(cursor, dict) else None
        return step_back(second, self.settings.lookback_seconds)

    def _incremental(self, model: str, domain: list, fields: list[str], cursor: Any,
                     context: dict) -> Iterator[dict | Checkpoint]:
        with self.client() as client:
            for page in prefetch(seek_pages(client, model, domain, fields, since=self._since(cursor),
                                            page_size=self.settings.page_size, context=context)):
                yield from (clean(r, BOOLEANS) for r in page)
                yield Checkpoint({"write_date": page[-1]["write_date"]})

    def _stock_location_ids(self, client: OdooClient) -> list[int]:
        domain: list = [("usage", "=", "internal")]
        names = self.settings.stock_locations
        if names:
            roots = client.call("stock.location", "search_read", domain=[("complete_name", "in", names)],
                                fields=["complete_name"])
            missing = sorted(set(names) - {r["complete_name"] for r in roots})
            if missing:
                raise ConfigError(f"connector {self.id!r}: stock_locations names unknown Odoo locations: "
                                  f"{', '.join(missing)}", hint="use complete names such as 'WH/Stock'")
            domain.append(("id", "child_of", [r["id"] for r in roots]))
        return client.call("stock.location", "search", domain=domain, order="id asc")

    def _whole_pairs(self, client: OdooClient, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], list[dict]]:
        out: dict[tuple[int, int], list[dict]] = {}
        products = sorted({p for p, _ in pairs})
        for start in range(0, len(products), self.settings.page_size):
            chunk = products[start:start + self.settings.page_size]
            domain = [("product_id", "in", chunk), ("location_id", "in", sorted({loc for _, loc in pairs}))]
            for quant in client.call("stock.quant", "search_read", domain=domain,
                                     fields=[*QUANT_FIELDS, "write_date"], order="id asc"):
                pair = (quant["product_id"][0], quant["location_id"][0])
                if pair in pairs:
                    out.setdefault(pair, []).append(quant)
        return out

    def _skus(self, client: OdooClient, product_ids: set[int]) -> dict[int, str | None]:
        if not product_ids:
            return {}
        found = client.call("product.product", "search_read", domain=[("id", "in", sorted(product_ids))],
                            fields=["default_code"], context=dict(ALL))
        return {r["id"]: r["default_code"] or None for r in found}

    def _with_lines(self, client: OdooClient, page: list[dict]) -> Iterator[dict | Invalid]:
        try:
            lines = self._lines(client, [i for order in page for i in order["order_line"]])
        except OdooRecordError:  # a line vanished between the two calls: find out which orders are affected
            yield from self._orders_one_by_one(client, page)
            return
        for order in page:
            yield {**clean(order), "lines": [lines[i] for i in order["order_line"]]}

    def _orders_one_by_one(self, client: OdooClient, page: list[dict]) -> Iterator[dict | Invalid]:
        for order in page:
            try:
                lines = self._lines(client, order["order_line"])
            except OdooRecordError as exc:
                yield Invalid(order, f"sale order {order.get('name')!r}: {exc.message}", external_id=str(order["id"]))
                continue
            yield {**clean(order), "lines": [lines[i] for i in order["order_line"]]}

    def _lines(self, client: OdooClient, ids: list[int]) -> dict[int, dict]:
        if not ids:
            return {}
        found = client.call("sale.order.line", "read", ids, fields=LINE_FIELDS)
        skus = self._skus(client, {r["product_id"][0] for r in found if r.get("product_id")})
        return {r["id"]: {**clean(r), "sku": skus.get(r["product_id"][0]) if r.get("product_id") else None}
                for r in found}


@hookimpl
def storesync_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Contribute the ``odoo`` connector type."""
    register(OdooConnector)
