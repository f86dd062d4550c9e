"""The ``twilio`` connector: send SMS through Twilio Programmable Messaging and read their statuses back.

::

    [connectors.sms]
    type = "twilio"
    account_sid = "AC0123456789abcdef0123456789abcdef"
    auth_token = "${TWILIO_AUTH_TOKEN}"
    from_number = "+85230011234"               # or messaging_service_sid = "MG..."
    # status_callback = "https://example.com/hooks/twilio"   # Twilio posts delivery statuses there (signed)
    # api_key_sid = "SK..."                    # authenticate with an API key instead of the auth token
    # api_key_secret = "${TWILIO_API_SECRET}"
    # base_url = "http://127.0.0.1:8083"       # the emulator: python -m storesync.connectors.sms.emulator

The connector has no streams: it only sends. Its capabilities are what the outbox (``core/outbox.py``) uses:
``send_message``, ``message_status``, ``find_message`` (did Twilio already take a message whose answer was lost?)
and ``consent_changes`` (STOP/START replies from the inbound message list). Error codes: 21211 and 21614 fail
the message and flag the number; 21610 records an opt-out; 20429/429 are retried; 20003 (HTTP 401) stops the run
with a fix-it message. ``webhooks.py`` verifies and parses Twilio's status callbacks and inbound messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ...core.capabilities import ConsentChange, Delivery, OutboundMessage
from ...core.connector import Connector, Stream
from ...core.hookspecs import hookimpl
from ...core.http import HttpSettings
from .client import TwilioClient, TwilioError
from .webhooks import keyword_action

__all__ = ["TwilioConnector", "TwilioSettings", "storesync_register_connectors"]

#: Twilio error codes that mean the number itself cannot take SMS (the person's phone is flagged)
INVALID_NUMBER = frozenset({21211, 21614})
OPTED_OUT = 21610
#: statuses after which Twilio reports nothing more for a message
FINAL = frozenset({"delivered", "undelivered", "failed", "canceled", "read"})
_SID = {"account_sid": r"AC[0-9a-fA-F]{32}", "messaging_service_sid": r"MG[0-9a-fA-F]{32}",
        "api_key_sid": r"SK[0-9a-fA-F]{32}"}


class TwilioSettings(BaseModel):
    """The ``[connectors.<id>]`` table of a ``twilio`` connector."""

    model_config = ConfigDict(extra="forbid")

    account_sid: str
    auth_token: SecretStr
    from_number: str | None = Field(None, description="E.164 number, short code or alphanumeric sender id")
    messaging_service_sid: str | None = None
    status_callback: str | None = Field(None, description="URL Twilio posts delivery statuses to")
    api_key_sid: str | None = None
    api_key_secret: SecretStr | None = None
    base_url: str = "https://api.twilio.com"
    validity_period: int | None = Field(None, ge=1, le=36000, description="seconds a message may wait in queue")
    http: HttpSettings = Field(default_factory=HttpSettings)

    @field_validator("account_sid", "messaging_service_sid", "api_key_sid")
    @classmethod
    def _sid(cls, value: str | None, info: Any) -> str | None:
        if value is not None and not re.fullmatch(_SID[info.field_name], value):
            raise ValueError(f"{info.field_name} must look like {_SID[info.field_name][:2]} followed by 32 hex "
                             f"digits (Twilio console: Account Info)")
        return value

    @field_validator("base_url", "status_callback")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"must start with https:// (or http:// for a local emulator), got {value!r}")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _one_sender(self) -> TwilioSettings:
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("set exactly one of from_number and messaging_service_sid")
        if (self.api_key_sid is None) != (self.api_key_secret is None):
            raise ValueError("api_key_sid and api_key_secret go together")
        return self


class TwilioConnector(Connector):
    """One Twilio account sending from one number or messaging service."""

    name = "twilio"
    Settings = TwilioSettings
    settings: TwilioSettings

    #: tests may hand in an ``httpx.MockTransport`` and a no-op sleep
    transport: Any = None
    sleep: Callable[[float], None] | None = None
    _open: TwilioClient | None = None

    def api(self) -> TwilioClient:
        """The client the capabilities share, opened on first use (a TLS context costs ~70 ms to build)."""
        if self._open is None:
            self._open = self.client()
        return self._open

    def close(self) -> None:
        """Close the shared client (``storesync notify`` calls it when done)."""
        if self._open is not None:
            self._open.close()
            self._open = None

    def client(self) -> TwilioClient:
        """A fresh client (close it, or use it as a context manager)."""
        s = self.settings
        user, secret = (s.api_key_sid, s.api_key_secret) if s.api_key_sid else (s.account_sid, s.auth_token)
        assert secret is not None
        return TwilioClient(name=f"twilio {self.id!r}", base_url=s.base_url, account_sid=s.account_sid,
                            username=user or s.account_sid, password=secret.get_secret_value(), settings=s.http,
                            transport=self.transport, sleep=self.sleep)

    def streams(self) -> list[Stream]:
        """None: this connector sends messages, it has nothing to sync."""
        return []

    def check(self) -> str:
        """Fetch the account: e.g. "Twilio account 'Lam Kee' (active), sending from +85230011234"."""
        with self.client() as client:
            account = client.account()
        sender = self.settings.from_number or self.settings.messaging_service_sid
        return f"Twilio account {account.get('friendly_name')!r} ({account.get('status')}), sending from {sender}"

    # -- capabilities -----------------------------------------------------------------------------------

    def send_message(self, message: OutboundMessage) -> Delivery:
        """Create the message; a refusal for this message alone (bad number, opted out) is a failed Delivery."""
        try:
            return _delivery(self.api().create_message(self._form(message)))
        except TwilioError as exc:
            return _refusal(exc)

    def message_status(self, provider_id: str) -> Delivery:
        """The status Twilio holds now for the message ``provider_id``."""
        return _delivery(self.api().fetch_message(provider_id))

    def find_message(self, message: OutboundMessage, since: datetime, exclude: set[str]) -> Delivery | None:
        """The message Twilio created for ``message`` since ``since``: same From, To and Body, SID not in ``exclude``.

        (Twilio's Messages API takes no idempotency key, so this lookup is how a send whose answer was lost is
        recognised; the outbox passes the SIDs it already recorded for this number as ``exclude``.)
        """
        sender = self.settings.from_number
        for found in self.api().list_messages(to=message.to, sender=sender,
                                              sent_after=(since - timedelta(days=1)).date()):
            if (found.get("body") == message.body and found.get("sid") not in exclude
                    and found.get("direction", "outbound-api").startswith("outbound")
                    and _when(found.get("date_created")) >= since - timedelta(minutes=5)):
                return _delivery(found)
        return None

    def consent_changes(self, since: datetime) -> list[ConsentChange]:
        """STOP/START keywords customers sent to this sender since ``since``, oldest first."""
        sender = self.settings.from_number
        if sender is None:  # a messaging service has many numbers; its opt-outs surface as 21610 on send
            return []
        changes = []
        for found in self.api().list_messages(to=sender, sent_after=since.date()):
            action = keyword_action(found.get("body") or "")
            at = _when(found.get("date_sent") or found.get("date_created"))
            if found.get("direction") == "inbound" and action in ("opt_out", "opt_in") and at >= since:
                changes.append(ConsentChange(found["from"], action == "opt_out", at, f"twilio {found['sid']}"))
        return sorted(changes, key=lambda c: c.at)

    def _form(self, message: OutboundMessage) -> dict[str, str]:
        s = self.settings
        form = {"To": message.to, "Body": message.body}
        if s.messaging_service_sid:
            form["MessagingServiceSid"] = s.messaging_service_sid
        else:
            form["From"] = s.from_number or ""
        if s.status_callback:
            form["StatusCallback"] = s.status_callback
        if s.validity_period:
            form["ValidityPeriod"] = str(s.validity_period)
        return form


def _delivery(data: dict[str, Any]) -> Delivery:
    code = data.get("error_code")
    segments = data.get("num_segments")
    return Delivery(provider_id=data.get("sid"), status=str(data.get("status") or "queued"),
                    error_code=int(code) if code not in (None, "") else None,
                    detail=str(data.get("error_message") or ""),
                    segments=int(segments) if str(segments or "").isdigit() and int(segments) > 0 else None)


def _refusal(exc: TwilioError) -> Delivery:
    recipient = "opted_out" if exc.code == OPTED_OUT else "invalid" if exc.code in INVALID_NUMBER else None
    return Delivery(provider_id=None, status="failed", error_code=exc.code, detail=exc.message, recipient=recipient)


def _when(value: str | None) -> datetime:
    """Twilio's RFC 2822 dates; a missing one counts as now."""
    try:
        return parsedate_to_datetime(value) if value else datetime.now(UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


@hookimpl
def storesync_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    register(TwilioConnector)
