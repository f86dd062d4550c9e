"""The ``loyverse`` connector: a merchant's Loyverse POS (stores, items and variants, stock, receipts, customers).

::

    [connectors.tills]
    type = "loyverse"
    access_token = "${LOYVERSE_TOKEN}"      # a personal access token (Loyverse back office: Access tokens)
    # base_url = "http://127.0.0.1:8090/v1.0" # the emulator instead of https://api.loyverse.com/v1.0
    # store_ids = ["..."]                     # only these stores (default: every store the token sees)
    # page_size = 250

Streams, each incremental on ``updated_at`` (``updated_at_min``, the engine keeps the cursor and drops records it
already stored at the boundary) except ``stores``, read whole every run:

- ``stores``: ``GET /stores``;
- ``items``: ``GET /items?show_deleted=true`` (variants nested; a deleted item's ``deleted_at`` is set);
- ``inventory``: ``GET /inventory?store_ids=...``: one level per (variant, store), ``in_stock``;
- ``receipts``: ``GET /receipts`` (sales and refunds), one request series per store when ``store_ids`` is set;
- ``customers``: ``GET /customers?show_deleted=true``.

Lists page with ``limit`` and the ``cursor`` each page returns; the query is sent again with the cursor. 429
``RATE_LIMITED`` (Loyverse publishes no limit; about 60 a minute is reported) and 5xx are retried by storesync's
HTTP client with backoff. ``push_inventory`` sets ``in_stock`` with ``POST /inventory`` (``stock_after``); Loyverse
has no compare-and-set, so the level is read first and a differing ``expected`` is a ``conflict``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from storesync import Connector, FatalSyncError, Stream, hookimpl
from storesync.core.capabilities import PushOutcome, StockUpdate
from storesync.core.http import HttpClient, HttpSettings, checked_base_url

__all__ = ["LoyverseConnector", "LoyverseSettings", "storesync_register_connectors"]

#: ids per ``store_ids``/``variant_ids`` query parameter when reading levels back for a push
ID_BATCH = 50


class LoyverseSettings(BaseModel):
    """The ``[connectors.<id>]`` table of a ``loyverse`` connector; unknown keys are an error naming the key."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr
    base_url: Annotated[str, AfterValidator(checked_base_url)] = Field(
        "https://api.loyverse.com/v1.0", description="the API, the emulator or a proxy")
    store_ids: list[str] | None = Field(None, min_length=1, description="only these stores; default: all")
    page_size: int = Field(250, ge=1, le=250, description="records per request (Loyverse allows 1-250)")
    http: HttpSettings = Field(default_factory=HttpSettings)


class LoyverseConnector(Connector):
    """One Loyverse account and its stores."""

    name = "loyverse"
    Settings = LoyverseSettings
    default_mapping = "loyverse.toml"
    settings: LoyverseSettings

    def client(self) -> HttpClient:
        """A fresh client (one per stream read): timeouts, retries of 429/5xx, the token masked in every message."""
        token = self.settings.access_token.get_secret_value()
        return HttpClient(name=f"loyverse {self.id!r}", base_url=self.settings.base_url + "/",
                          headers={"Authorization": f"Bearer {token}"}, settings=self.settings.http,
                          auth_hint="check access_token in plugins.toml (Loyverse back office: Access tokens)")

    def streams(self) -> list[Stream]:
        """stores, items, inventory, receipts and customers."""
        return [
            Stream("stores", "location", reader=self.read_stores),
            Stream("items", "product", cursor_field="updated_at", reader=self._lister("items", show_deleted=True)),
            Stream("inventory", "inventory_level", primary_key="level_id", cursor_field="updated_at",
                   reader=self.read_inventory),
            Stream("receipts", "order", primary_key="receipt_number", cursor_field="updated_at",
                   reader=self.read_receipts),
            Stream("customers", "customer", cursor_field="updated_at",
                   reader=self._lister("customers", show_deleted=True)),
        ]

    def check(self) -> str:
        """List stores: e.g. "Loyverse, 3 stores (Causeway Bay 店, Mong Kok 店, Tsim Sha Tsui 店)"."""
        stores = list(self.read_stores())
        return f"Loyverse, {len(stores)} stores ({', '.join(str(s.get('name')) for s in stores)})"

    # -- readers
    def read_stores(self, cursor: Any = None) -> Iterator[dict]:
        """Every store the token sees (or those in ``store_ids``)."""
        with self.client() as client:
            stores = self._get(client, "stores", {}).get("stores") or []
        wanted = set(self.settings.store_ids or ())
        yield from (s for s in stores if not wanted or s.get("id") in wanted)

    def read_inventory(self, cursor: Any) -> Iterator[dict]:
        """Levels changed since ``cursor``; each gets ``level_id`` (variant@store), the key the engine de-duplicates on."""
        query = {"store_ids": ",".join(self.settings.store_ids)} if self.settings.store_ids else {}
        for level in self._pages("inventory", "inventory_levels", cursor, query):
            yield {**level, "level_id": f"{level.get('variant_id')}@{level.get('store_id')}"}

    def read_receipts(self, cursor: Any) -> Iterator[dict]:
        """Receipts changed since ``cursor``, per configured store (``/receipts`` filters on one store at a time)."""
        for store in self.settings.store_ids or [None]:
            yield from self._pages("receipts", "receipts", cursor, {"store_id": store} if store else {})

    def _lister(self, resource: str, **query: Any) -> Callable[[Any], Iterator[dict]]:
        params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in query.items()}

        def read(cursor: Any) -> Iterator[dict]:
            yield from self._pages(resource, resource, cursor, params)
        return read

    def _pages(self, path: str, key: str, cursor: Any, query: dict[str, Any]) -> Iterator[dict]:
        """Every record of ``path`` changed at or after ``cursor``, page by page, oldest change first."""
        params: dict[str, Any] = {**query, "limit": self.settings.page_size}
        if cursor:
            params["updated_at_min"] = cursor
        with self.client() as client:
            while True:
                data = self._get(client, path, params)
                yield from data.get(key) or []
                if not data.get("cursor"):
                    return
                params = {**params, "cursor": data["cursor"]}

    def _get(self, client: HttpClient, path: str, params: dict[str, Any]) -> dict:
        data, response = client.get_json(path, params=params)
        return self._checked(f"GET /{path}", data, response.status_code)

    def _checked(self, what: str, data: Any, status: int) -> dict:
        """The JSON object of a 200; anything else stops the run with Loyverse's error code and details."""
        if status == 200 and isinstance(data, dict):
            return data
        errors = data.get("errors") if isinstance(data, dict) else None
        said = "; ".join(f"{e.get('code')}: {e.get('details')}" for e in errors or [] if isinstance(e, dict))
        hint = "the cursor expired: run the sync again" if "INVALID_CURSOR" in said else None
        raise FatalSyncError(f"loyverse {self.id!r}: {what}: HTTP {status}{': ' + said if said else ''}",
                             hint=hint, connector=self.id)

    # -- capabilities
    def push_inventory(self, updates: list[StockUpdate]) -> list[PushOutcome]:
        """Set ``in_stock`` of (variant, store) pairs; read first: equal is done, a differing ``expected`` a conflict.

        ``item_id`` is the variant id (the mapping stores it as ``inventory_item_id``), ``location_id`` the
        store id. ``stock_after`` is absolute, so repeating a push changes nothing the second time.
        """
        if not updates:
            return []
        with self.client() as client:
            held = self._levels(client, updates)
            outcomes: dict[int, PushOutcome] = {}
            body = []
            for n, update in enumerate(updates):
                actual = held.get((update.item_id, update.location_id))
                if actual is None:
                    outcomes[n] = PushOutcome(update, "failed", detail=f"Loyverse has no variant {update.item_id} "
                                                                       f"in store {update.location_id}")
                elif actual == update.quantity:
                    outcomes[n] = PushOutcome(update, "applied", actual=actual)
                elif update.expected is not None and actual != update.expected:
                    outcomes[n] = PushOutcome(update, "conflict", actual=actual,
                                              detail=f"expected {update.expected}, Loyverse holds {actual}")
                else:
                    body.append({"variant_id": update.item_id, "store_id": update.location_id,
                                 "stock_after": update.quantity})
                    outcomes[n] = PushOutcome(update, "applied", actual=update.quantity)
            if body:
                data, response = client.post_json("inventory", json={"inventory_levels": body}, idempotent=True)
                self._checked("POST /inventory", data, response.status_code)
        return [outcomes[n] for n in range(len(updates))]

    def _levels(self, client: HttpClient, updates: list[StockUpdate]) -> dict[tuple[str, str], int]:
        variants = sorted({u.item_id for u in updates})
        stores = ",".join(sorted({u.location_id for u in updates}))
        found: dict[tuple[str, str], int] = {}
        for start in range(0, len(variants), ID_BATCH):
            query = {"store_ids": stores, "variant_ids": ",".join(variants[start:start + ID_BATCH])}
            for level in self._pages("inventory", "inventory_levels", None, query):
                found[(level["variant_id"], level["store_id"])] = round(float(level.get("in_stock") or 0))
        return found


@hookimpl
def storesync_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Contribute the ``loyverse`` connector type."""
    register(LoyverseConnector)
