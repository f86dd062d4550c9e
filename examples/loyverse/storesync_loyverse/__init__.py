"""The `loyverse` connector: reads customers and products from a JSON API into storesync.

Scaffolded by `storesync connector new loyverse`. What it assumes about the API (change each to the real one):

- base URL `settings.base_url`, bearer-token auth (`Authorization: Bearer <access_token>`);
- `GET /v1/account` answers who the token belongs to (what `check()` shows);
- `GET /v1/{customers,products}?limit=N&updated_at_min=T` lists records changed at or after `T`, oldest change
  first, as `{"<resource>": [...], "cursor": "..."}`; a `cursor` means more pages: `?cursor=...&limit=N` fetches
  the next (the cursor carries the filter);
- errors are `{"errors": [{"code": ..., "details": ...}]}`; 429 and 5xx are retried by storesync's HTTP client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from storesync import Connector, FatalSyncError, Stream, hookimpl
from storesync.core.http import HttpClient, HttpSettings

__all__ = ["LoyverseConnector", "LoyverseSettings", "storesync_register_connectors"]


class LoyverseSettings(BaseModel):
    """The `[connectors.<id>]` table of a `loyverse` connector; unknown keys are an error naming the key."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr
    base_url: str = Field("https://api.loyverse.example", description="the API, or the local emulator")
    page_size: int = Field(100, ge=1, le=250, description="records per request")
    http: HttpSettings = Field(default_factory=HttpSettings)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"base_url must start with https:// (or http:// for a local emulator), got {value!r}")
        return value.rstrip("/")


class LoyverseConnector(Connector):
    """One `loyverse` account."""

    name = "loyverse"
    Settings = LoyverseSettings
    default_mapping = "loyverse.toml"
    settings: LoyverseSettings

    def client(self) -> HttpClient:
        """A fresh client (one per stream read): timeouts, retries of 429/5xx, the token masked in every message."""
        token = self.settings.access_token.get_secret_value()
        return HttpClient(name=f"loyverse {self.id!r}", base_url=self.settings.base_url,
                          headers={"Authorization": f"Bearer {token}"}, settings=self.settings.http,
                          auth_hint="check access_token in plugins.toml")

    def streams(self) -> list[Stream]:
        """Both streams are incremental on `updated_at`: the engine keeps the cursor and drops re-read records."""
        return [
            Stream("customers", "customer", cursor_field="updated_at", reader=self._lister("customers")),
            Stream("products", "product", cursor_field="updated_at", reader=self._lister("products")),
        ]

    def check(self) -> str:
        with self.client() as client:
            data = self._get(client, "/v1/account", {})
        return f"Loyverse account {data.get('name')!r}"

    def _lister(self, resource: str) -> Callable[[Any], Iterator[dict]]:
        def read(cursor: Any) -> Iterator[dict]:
            params: dict[str, Any] = {"limit": self.settings.page_size}
            if cursor:
                params["updated_at_min"] = cursor
            with self.client() as client:
                while True:
                    data = self._get(client, f"/v1/{resource}", params)
                    yield from data.get(resource) or []
                    if not data.get("cursor"):
                        return
                    params = {"limit": self.settings.page_size, "cursor": data["cursor"]}
        return read

    def _get(self, client: HttpClient, path: str, params: dict[str, Any]) -> dict:
        """GET a JSON object; any answer but 200 stops the run with the API's own error code and details."""
        data, response = client.get_json(path, params=params)
        if response.status_code != 200 or not isinstance(data, dict):
            errors = (data or {}).get("errors") if isinstance(data, dict) else None
            said = "; ".join(f"{e.get('code')}: {e.get('details')}" for e in errors or [] if isinstance(e, dict))
            raise FatalSyncError(f"loyverse {self.id!r}: GET {path}: HTTP {response.status_code}"
                                 f"{': ' + said if said else ''}", connector=self.id)
        return data


@hookimpl
def storesync_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Contribute the `loyverse` connector type."""
    register(LoyverseConnector)
