"""A local Twilio Messages API for tests and demos: send, fetch, list, delivery progress, STOP/START, callbacks.

Run ``python -m storesync.connectors.sms.emulator`` (prints the base URL, the credentials and a ready plugins.toml
section), or in tests::

    with TwilioEmulator(delivery_seconds=0.2) as sms:
        sms.plugins_toml("sms")   # [connectors.sms] pointing here
        sms.sends                 # every message created, in order (the write log)

What it reproduces: HTTP Basic auth with the Account SID and auth token (401, Twilio error 20003), form-encoded
``POST /2010-04-01/Accounts/{sid}/Messages.json`` answering 201 with the Message resource (``num_segments`` as
a string, RFC 2822 dates), ``GET .../Messages/{Sid}.json``, the list with ``To``, ``From``, ``DateSent>``,
``PageSize`` and ``next_page_uri`` paging, ``GET /2010-04-01/Accounts/{sid}.json``; error bodies
``{code, message, more_info, status}``; the documented test numbers (To ``+15005550001`` gives 21211,
``+15005550004`` 21610, ``+15005550009`` 21614); STOP/START replies (``inbound``) that opt a number out of or
back into messages (then 21610 on send); delivery progress queued -> sent -> delivered (or undelivered with 30003
for numbers in ``undeliverable``) over ``delivery_seconds``, with signed status callbacks posted to each message's
``StatusCallback``; a 429/20429 rate limit and seeded 5xx faults. ``before_create`` and ``after_create`` are
test hooks called around the creation of each message (the crash tests kill the client there).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import re
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from ...core.emulation import LoopbackEmulator
from ...core.segments import count_segments
from ..shopify.emulator import Faults, LeakyBucket, RequestLog, _Handler, _Reply
from .webhooks import compute_signature, keyword_action

__all__ = ["TEST_NUMBERS", "EmulatedMessage", "TwilioEmulator", "main"]

#: Twilio's documented test numbers for To, and the error each gives
TEST_NUMBERS = {"+15005550001": 21211, "+15005550004": 21610, "+15005550009": 21614}
ERRORS = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21602: (400, "Message body is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (400, "The 'From' phone number provided is not a valid message-capable Twilio phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
}
#: errors a message may end with after it was accepted
DELIVERY_ERRORS = {30003: "Unreachable destination handset", 30005: "Unknown destination handset"}
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PROGRESS = ("queued", "sent")


class _Error(Exception):
    def __init__(self, code: int) -> None:
        self.status, message = ERRORS[code]
        super().__init__(message)
        self.payload = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": self.status}


@dataclass
class EmulatedMessage:
    """One message the emulator holds (outbound or inbound)."""

    sid: str
    to: str
    sender: str
    body: str
    direction: str
    status: str
    created: datetime
    created_at: float  # monotonic, drives the delivery progress
    status_callback: str | None = None
    messaging_service_sid: str | None = None
    error_code: int | None = None
    callbacks: list[str] = field(default_factory=list)  # statuses posted to status_callback

    def resource(self, account_sid: str) -> dict[str, Any]:
        stamp = _rfc2822(self.created)
        return {
            "account_sid": account_sid, "api_version": "2010-04-01", "body": self.body, "date_created": stamp,
            "date_sent": stamp, "date_updated": stamp, "direction": self.direction,
            "error_code": self.error_code, "error_message": DELIVERY_ERRORS.get(self.error_code or 0),
            "from": self.sender, "messaging_service_sid": self.messaging_service_sid, "num_media": "0",
            "num_segments": str(count_segments(self.body).segments), "price": None, "price_unit": "USD",
            "sid": self.sid, "status": self.status, "to": self.to,
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{self.sid}/Media.json"},
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{self.sid}.json",
        }


class TwilioEmulator(LoopbackEmulator):
    """Messages of one emulated account plus an HTTP server on 127.0.0.1; a context manager."""

    handler_class = _Handler
    thread_name = "twilio-emulator"

    def __init__(self, *, account_sid: str | None = None, auth_token: str | None = None,
                 number: str = "+85230011234", delivery_seconds: float = 0.3, undeliverable: Iterable[str] = (),
                 rate_limit: LeakyBucket | None = None, faults: Faults | None = None, port: int = 0,
                 seed: int = 0) -> None:
        self._init_server(port)
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.number = number
        self.delivery_seconds = delivery_seconds
        self.undeliverable = set(undeliverable)
        self.rate_limit = rate_limit
        self.faults = faults or Faults(seed=seed)
        self.requests = RequestLog()
        self.messages: dict[str, EmulatedMessage] = {}
        self.sends: list[EmulatedMessage] = []  # the write log: every outbound message created, in order
        self.opted_out: set[str] = set()
        self.before_create: Callable[[dict[str, str]], None] | None = None
        self.after_create: Callable[[EmulatedMessage], None] | None = None
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._stop = threading.Event()

    # -- lifecycle
    def start(self) -> TwilioEmulator:
        super().start()
        self._stop.clear()
        threading.Thread(target=self._progress_loop, name="twilio-emulator-dlr", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        super().stop()

    def plugins_toml(self, connector_id: str = "sms", token_env: str = "TWILIO_AUTH_TOKEN") -> str:
        """A ready ``[connectors.<id>]`` table pointing at this emulator."""
        return (f'[connectors.{connector_id}]\ntype = "twilio"\nbase_url = "{self.base_url}"\n'
                f'account_sid = "{self.account_sid}"\nauth_token = "${{{token_env}}}"\n'
                f'from_number = "{self.number}"\n')

    # -- test hooks (never faulted, never rate limited)
    def inbound(self, sender: str, body: str) -> EmulatedMessage:
        """A customer texts ``body`` to the account's number; STOP/START change their opt-out as Twilio does."""
        with self._lock:
            msg = self._new(to=self.number, sender=sender, body=body, direction="inbound", status="received")
            action = keyword_action(body)
            if action == "opt_out":
                self.opted_out.add(sender)
            elif action == "opt_in":
                self.opted_out.discard(sender)
        return msg

    def sends_to(self, to: str) -> list[EmulatedMessage]:
        with self._lock:
            return [m for m in self.sends if m.to == to]

    # -- request handling
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[_Reply, bool, float]:
        """(reply, truncate, delay) for one request."""
        split = urlsplit(raw_path)
        self.requests.add(split.path)
        try:
            self._authenticate(headers.get("Authorization"), split.path)
            if self.rate_limit is not None and not self.rate_limit.take()[0] or self.faults.throttled():
                raise _Error(20429)
            error, truncate, slow = self.faults.draw()
            delay = self.faults.slow_seconds if slow else 0.0
            if error is not None:
                return _json(error, {"code": 20500, "message": "An internal server error has occurred",
                                     "more_info": "https://www.twilio.com/docs/errors/20500", "status": error}), \
                    False, delay
            return self._route(method, split.path, dict(parse_qsl(split.query)), body), truncate, delay
        except _Error as exc:
            return _json(exc.status, exc.payload), False, 0.0
        except Exception as exc:  # an emulator bug: answer it, so the client sees what broke  # noqa: BLE001
            return _json(500, {"code": 20500, "message": f"emulator bug: {type(exc).__name__}: {exc}",
                               "status": 500}), False, 0.0

    def _authenticate(self, header: str | None, path: str) -> None:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if header != f"Basic {expected}" or not path.startswith(f"/2010-04-01/Accounts/{self.account_sid}"):
            raise _Error(20003)

    def _route(self, method: str, path: str, params: dict[str, str], body: bytes) -> _Reply:
        root = f"/2010-04-01/Accounts/{self.account_sid}"
        rest = path[len(root):]
        if method == "GET" and rest == ".json":
            return _json(200, {"sid": self.account_sid, "friendly_name": "storesync emulator", "status": "active"})
        if rest == "/Messages.json" and method == "POST":
            return _json(201, self._create(dict(parse_qsl(body.decode()))).resource(self.account_sid))
        if rest == "/Messages.json" and method == "GET":
            return _json(200, self._list(root, params))
        found = re.fullmatch(r"/Messages/(SM[0-9a-f]{32}|MM[0-9a-f]{32})\.json", rest)
        if found and method == "GET":
            with self._lock:
                msg = self.messages.get(found.group(1))
            if msg is None:
                raise _Error(20404)
            return _json(200, msg.resource(self.account_sid))
        raise _Error(20404)

    def _create(self, form: dict[str, str]) -> EmulatedMessage:
        to, text = form.get("To", ""), form.get("Body")
        if not to:
            raise _Error(21604)
        if not text:
            raise _Error(21602)
        if len(text) > 1600:
            raise _Error(21617)
        if form.get("From") not in (None, self.number) or not (form.get("From") or form.get("MessagingServiceSid")):
            raise _Error(21606)
        if to in TEST_NUMBERS:
            raise _Error(TEST_NUMBERS[to])
        if not _E164.match(to):
            raise _Error(21211)
        if to in self.opted_out:
            raise _Error(21610)
        if self.before_create is not None:
            self.before_create(form)
        with self._lock:
            msg = self._new(to=to, sender=form.get("From") or self.number, body=text, direction="outbound-api",
                            status="queued", status_callback=form.get("StatusCallback"),
                            messaging_service_sid=form.get("MessagingServiceSid"))
            self.sends.append(msg)
        if self.after_create is not None:
            self.after_create(msg)
        return msg

    def _new(self, **fields: Any) -> EmulatedMessage:
        sid = f"SM{next(self._ids):032x}"
        msg = EmulatedMessage(sid=sid, created=datetime.now(UTC), created_at=time.monotonic(), **fields)
        self.messages[sid] = msg
        return msg

    def _list(self, root: str, params: dict[str, str]) -> dict[str, Any]:
        size = max(1, min(1000, int(params.get("PageSize") or 50)))
        page = int(params.get("Page") or 0)
        since = params.get("DateSent>")
        with self._lock:
            found = [m for m in reversed(list(self.messages.values()))
                     if (not params.get("To") or m.to == params["To"])
                     and (not params.get("From") or m.sender == params["From"])
                     and (not since or m.created.date().isoformat() >= since)]
        chunk = found[page * size:(page + 1) * size]
        query = {k: v for k, v in params.items() if k not in ("Page", "PageToken")}

        def uri(n: int) -> str:
            return f"{root}/Messages.json?{urlencode({**query, 'PageSize': size, 'Page': n})}"
        more = (page + 1) * size < len(found)
        return {"messages": [m.resource(self.account_sid) for m in chunk], "page": page, "page_size": size,
                "start": page * size, "end": page * size + max(len(chunk) - 1, 0), "uri": uri(page),
                "first_page_uri": uri(0), "previous_page_uri": uri(page - 1) if page else None,
                "next_page_uri": (uri(page + 1) + f"&PageToken=PA{page + 1}") if more else None}

    # -- delivery progress and status callbacks
    def _progress_loop(self) -> None:
        while not self._stop.wait(0.02):
            for msg, status in self._advance():
                self._post_callback(msg, status)

    def _advance(self) -> list[tuple[EmulatedMessage, str]]:
        now, changed = time.monotonic(), []
        with self._lock:
            for msg in self.messages.values():
                if msg.direction != "outbound-api" or msg.status not in _PROGRESS:
                    continue
                age = now - msg.created_at
                if msg.status == "queued" and age >= self.delivery_seconds / 2:
                    msg.status = "sent"
                elif msg.status == "sent" and age >= self.delivery_seconds:
                    failed = msg.to in self.undeliverable
                    msg.status, msg.error_code = ("undelivered", 30003) if failed else ("delivered", None)
                else:
                    continue
                changed.append((msg, msg.status))
        return changed

    def _post_callback(self, msg: EmulatedMessage, status: str) -> None:
        if not msg.status_callback:
            return
        params = {"MessageSid": msg.sid, "MessageStatus": status, "SmsSid": msg.sid, "SmsStatus": status,
                  "AccountSid": self.account_sid, "From": msg.sender, "To": msg.to, "ApiVersion": "2010-04-01"}
        if msg.error_code:
            params["ErrorCode"] = str(msg.error_code)
        if status in ("delivered", "undelivered"):
            params["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
        request = urllib.request.Request(
            msg.status_callback, data=urlencode(params).encode(), method="POST",
            headers={"X-Twilio-Signature": compute_signature(self.auth_token, msg.status_callback, params),
                     "Content-Type": "application/x-www-form-urlencoded"})
        try:
            urllib.request.urlopen(request, timeout=2).close()
            msg.callbacks.append(status)
        except OSError:
            msg.callbacks.append(f"{status} (not delivered)")


def _json(status: int, payload: Any) -> _Reply:
    return _Reply(status, orjson.dumps(payload))


def _rfc2822(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m storesync.connectors.sms.emulator",
                                     description="Serve a fake Twilio Messages API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--connector-id", default="sms")
    parser.add_argument("--number", default="+85230011234", help="the account's sending number")
    parser.add_argument("--delivery-seconds", type=float, default=2.0, help="queued -> delivered takes this long")
    parser.add_argument("--rate-limit", type=float, default=0.0, metavar="PER_SECOND",
                        help="answer 429 (Twilio 20429) beyond this many requests per second (0: no limit)")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests answered 5xx")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(list(argv) if argv is not None else None)
    bucket = LeakyBucket(max(1, int(args.rate_limit * 2)), args.rate_limit) if args.rate_limit > 0 else None
    sms = TwilioEmulator(number=args.number, delivery_seconds=args.delivery_seconds, rate_limit=bucket,
                         faults=Faults(args.fault_rate, seed=args.seed), port=args.port, seed=args.seed)
    sms.serve_until_interrupted(
        lambda e: f"Twilio emulator: {e.base_url}  account: {e.account_sid}  (Ctrl-C to stop)\n"
                  f"\nexport TWILIO_AUTH_TOKEN={e.auth_token}\n\n# plugins.toml\n{e.plugins_toml(args.connector_id)}")


if __name__ == "__main__":
    main()
