"""Twilio's requests to the merchant: status callbacks and inbound messages, with ``X-Twilio-Signature`` checked.

Signature (``request_validator`` of twilio-python): ``base64(HMAC-SHA1(auth_token, url + name1 + value1 + ...))``
over the POST parameters sorted by name (the values of a repeated name sorted too); a JSON body is signed through
``bodySHA256=<hex sha256(body)>`` in the URL and only the URL is signed. Validators try the URL with and without
its default port. Comparison is constant-time. These functions are ready for a webhook receiver; until one
exists, ``storesync notify`` reads statuses back by fetching each pending message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = [
    "OPT_IN",
    "OPT_OUT",
    "HELP",
    "InboundMessage",
    "StatusCallback",
    "compute_signature",
    "keyword_action",
    "parse_inbound",
    "parse_status_callback",
    "verify_signature",
]

#: Twilio's default keywords on long codes (case-insensitive, the whole body trimmed)
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN = frozenset({"START", "UNSTOP", "YES"})
HELP = frozenset({"HELP", "INFO"})
Params = Mapping[str, str] | Iterable[tuple[str, str]]


def compute_signature(auth_token: str, url: str, params: Params = ()) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a form POST of ``params`` to ``url``."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    by_name: dict[str, set[str]] = {}
    for name, value in pairs:
        by_name.setdefault(name, set()).add(value)
    text = url + "".join(name + value for name in sorted(by_name) for value in sorted(by_name[name]))
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_signature(auth_token: str, url: str, signature: str | None, params: Params = (),
                     body: bytes | None = None) -> bool:
    """True when ``signature`` is Twilio's for this request (form ``params``, or a JSON ``body``)."""
    if not signature:
        return False
    if body is not None:
        query = dict(parse_qsl(urlsplit(url).query))
        if not hmac.compare_digest(query.get("bodySHA256", ""), hashlib.sha256(body).hexdigest()):
            return False
        params = ()
    return any(hmac.compare_digest(compute_signature(auth_token, candidate, params), signature)
               for candidate in _url_variants(url))


def _url_variants(url: str) -> list[str]:
    """The URL as given, without its port, and with the scheme's default port added."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = {"https": 443, "http": 80}.get(parts.scheme)
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    bare = urlunsplit(parts._replace(netloc=prefix + host))
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{parts.port or default}"))
    return list(dict.fromkeys([url, bare, with_port]))


@dataclass(frozen=True, slots=True)
class StatusCallback:
    """A delivery status Twilio posted: the message, its new status and, on failure, the error code."""

    message_sid: str
    status: str
    to: str | None
    error_code: int | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a customer sent to the merchant's number; ``action`` says what its keyword means."""

    message_sid: str
    sender: str
    body: str
    action: Literal["opt_out", "opt_in", "help"] | None


def parse_status_callback(params: Mapping[str, str]) -> StatusCallback:
    """Read a status callback's form fields (``MessageSid``, ``MessageStatus``, ``ErrorCode``, ``RawDlrDoneDate``)."""
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = params.get("MessageStatus") or params.get("SmsStatus")
    if not sid or not status:
        raise ValueError("a Twilio status callback needs MessageSid and MessageStatus")
    code = params.get("ErrorCode")
    return StatusCallback(sid, status, params.get("To"), int(code) if code and code.isdigit() else None,
                          _dlr_date(params.get("RawDlrDoneDate")))


def parse_inbound(params: Mapping[str, str]) -> InboundMessage:
    """Read an inbound message webhook (``MessageSid``, ``From``, ``Body``) and classify its keyword."""
    sid, sender = params.get("MessageSid") or params.get("SmsSid"), params.get("From")
    if not sid or not sender:
        raise ValueError("a Twilio inbound message needs MessageSid and From")
    body = params.get("Body") or ""
    return InboundMessage(sid, sender, body, keyword_action(body))


def keyword_action(body: str) -> Literal["opt_out", "opt_in", "help"] | None:
    """``opt_out`` for STOP and its synonyms, ``opt_in`` for START/UNSTOP/YES, ``help`` for HELP/INFO."""
    word = body.strip().upper()
    if word in OPT_OUT:
        return "opt_out"
    if word in OPT_IN:
        return "opt_in"
    return "help" if word in HELP else None


def _dlr_date(value: str | None) -> datetime | None:
    """``RawDlrDoneDate`` is ``YYMMDDhhmm`` (UTC)."""
    if not value or len(value) != 10 or not value.isdigit():
        return None
    return datetime.strptime(value, "%y%m%d%H%M").replace(tzinfo=UTC)
