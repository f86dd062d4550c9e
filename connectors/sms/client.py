"""A thin Twilio Programmable Messaging client over ``core.http.HttpClient``.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form-encoded, HTTP Basic with the Account SID and auth
token, or an API key SID and secret), ``GET .../Messages/{Sid}.json`` and the paged list
(``next_page_uri``). Twilio answers errors as ``{"code": 21211, "message": ..., "more_info": ..., "status": 400}``;
``TwilioError`` carries them. 429 (Twilio 20429) is retried by ``HttpClient``; 401 (20003) is fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import httpx

from ...core.errors import FatalSyncError
from ...core.http import HttpClient, HttpSettings

__all__ = ["API_VERSION", "TwilioClient", "TwilioError"]

API_VERSION = "2010-04-01"
AUTH_HINT = ("check account_sid and auth_token (or api_key_sid and api_key_secret) in plugins.toml; "
             "Twilio error 20003 means the credentials were refused")


class TwilioError(Exception):
    """A 4xx answer of Twilio: its error ``code`` (21211, 21610, ...), ``message`` and HTTP ``status``."""

    def __init__(self, code: int | None, message: str, status: int) -> None:
        super().__init__(f"Twilio error {code}: {message} (HTTP {status})")
        self.code, self.message, self.status = code, message, status


class TwilioClient:
    """Messages of one Twilio account. Use as a context manager or call ``close()``."""

    def __init__(self, *, name: str, base_url: str, account_sid: str, username: str, password: str,
                 settings: HttpSettings | None = None, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        extra = {"sleep": sleep} if sleep is not None else {}
        self.account_sid = account_sid
        self.http = HttpClient(name=name, base_url=base_url, auth=(username, password), settings=settings,
                               transport=transport, secrets=(password,), **extra)
        self._root = f"/{API_VERSION}/Accounts/{account_sid}"

    def account(self) -> dict[str, Any]:
        """``GET /Accounts/{sid}.json``: the account's friendly name and status (verifies credentials)."""
        return self._ok(*self._auth(lambda: self.http.get_json(f"{self._root}.json")))

    def create_message(self, form: dict[str, str]) -> dict[str, Any]:
        """Create one message; raises ``TwilioError`` for a 4xx answer (the message was not created)."""
        return self._ok(*self._auth(lambda: self.http.post_json(f"{self._root}/Messages.json", data=form)))

    def fetch_message(self, sid: str) -> dict[str, Any]:
        """The message resource ``sid`` as Twilio holds it now."""
        return self._ok(*self._auth(lambda: self.http.get_json(f"{self._root}/Messages/{sid}.json")))

    def list_messages(self, *, to: str | None = None, sender: str | None = None, sent_after: date | None = None,
                      page_size: int = 50) -> Iterator[dict[str, Any]]:
        """Every message matching the filters, newest first, following ``next_page_uri``."""
        params: dict[str, Any] = {"PageSize": page_size}
        if to:
            params["To"] = to
        if sender:
            params["From"] = sender
        if sent_after:
            params["DateSent>"] = sent_after.isoformat()
        page = self._ok(*self._auth(lambda: self.http.get_json(f"{self._root}/Messages.json", params=params)))
        while True:
            yield from page.get("messages") or []
            next_uri = page.get("next_page_uri")
            if not next_uri:
                return
            # the next page's URI carries every filter and the page token: pass no params, they would replace it
            page = self._ok(*self._auth(lambda u=next_uri: self.http.get_json(u)))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TwilioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _auth(self, call: Callable[[], tuple[Any, httpx.Response]]) -> tuple[Any, httpx.Response]:
        try:
            return call()
        except FatalSyncError as exc:
            if "HTTP 401" in exc.message:
                raise FatalSyncError(exc.message, hint=AUTH_HINT, **exc.context) from None
            raise

    @staticmethod
    def _ok(data: Any, response: httpx.Response) -> dict[str, Any]:
        if response.is_success and isinstance(data, dict):
            return data
        body = data if isinstance(data, dict) else {}
        raise TwilioError(body.get("code"), str(body.get("message") or response.reason_phrase), response.status_code)
