"""The Twilio emulator answers in the shapes of Twilio's spec and behaves as Twilio does for the cases we rely on."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx
import pytest
from shared_fixtures import fixture_path

from storesync.connectors.sms import TwilioConnector, TwilioSettings
from storesync.connectors.sms.emulator import TwilioEmulator
from storesync.connectors.sms.webhooks import verify_signature
from storesync.core.capabilities import OutboundMessage
from storesync.core.connector import ConnectorContext
from storesync.connectors.shopify.emulator import LeakyBucket


def connector(emu: TwilioEmulator, **extra) -> TwilioConnector:
    settings = TwilioSettings(account_sid=emu.account_sid, auth_token=emu.auth_token, from_number=emu.number,
                              base_url=emu.base_url, **extra)
    conn = TwilioConnector("sms", settings, ConnectorContext())
    conn.sleep = lambda seconds: None
    return conn


def send(conn: TwilioConnector, to: str, body: str = "Hi") -> object:
    return conn.send_message(OutboundMessage(to=to, body=body, idempotency_key=f"k:{to}:{body}"))


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_created_message_has_the_fields_of_twilios_example() -> None:
    examples = json.loads(fixture_path("twilio-oai", "messages_examples.json").read_text(encoding="utf-8"))
    expected = set(examples["examples"]["POST /2010-04-01/Accounts/{AccountSid}/Messages.json 201 create"])
    with TwilioEmulator() as emu:
        response = httpx.post(f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}/Messages.json",
                              data={"To": "+85291234567", "From": emu.number, "Body": "你好"},
                              auth=(emu.account_sid, emu.auth_token))
    assert response.status_code == 201
    body = response.json()
    assert expected <= set(body)
    assert (body["status"], body["num_segments"], body["direction"]) == ("queued", "1", "outbound-api")
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34


def test_wrong_credentials_are_20003() -> None:
    with TwilioEmulator() as emu:
        response = httpx.get(f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}.json", auth=(emu.account_sid, "x"))
    assert response.status_code == 401 and response.json()["code"] == 20003


@pytest.mark.parametrize(("to", "code"), [("+15005550001", 21211), ("+15005550004", 21610),
                                          ("+15005550009", 21614), ("12345", 21211)])
def test_test_numbers_and_bad_numbers(to: str, code: int) -> None:
    with TwilioEmulator() as emu:
        delivery = send(connector(emu), to)
        assert delivery.error_code == code and delivery.provider_id is None
        assert emu.sends == []


def test_stop_then_start() -> None:
    with TwilioEmulator() as emu:
        conn = connector(emu)
        emu.inbound("+85291234567", "STOP")
        assert send(conn, "+85291234567").error_code == 21610
        emu.inbound("+85291234567", "start")
        assert send(conn, "+85291234567").provider_id is not None
        assert len(emu.sends_to("+85291234567")) == 1


def test_delivery_progress_and_undelivered() -> None:
    with TwilioEmulator(delivery_seconds=0.2, undeliverable={"+85260000000"}) as emu:
        conn = connector(emu)
        ok, bad = send(conn, "+85291234567"), send(conn, "+85260000000")
        assert ok.status == "queued"
        wait_for(lambda: conn.message_status(bad.provider_id).status == "undelivered")
        assert conn.message_status(bad.provider_id).error_code == 30003
        assert conn.message_status(ok.provider_id).status == "delivered"


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.got.append((self.headers["X-Twilio-Signature"], dict(parse_qsl(body.decode()))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_status_callbacks_are_posted_and_signed() -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    receiver.got = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/twilio"
    try:
        with TwilioEmulator(delivery_seconds=0.1) as emu:
            delivery = send(connector(emu, status_callback=url), "+85291234567")
            wait_for(lambda: len(receiver.got) == 2)
    finally:
        receiver.shutdown()
    assert [p["MessageStatus"] for _s, p in receiver.got] == ["sent", "delivered"]
    for signature, params in receiver.got:
        assert params["MessageSid"] == delivery.provider_id
        assert verify_signature(emu.auth_token, url, signature, params)
        assert not verify_signature("other-token", url, signature, params)
    assert "RawDlrDoneDate" in receiver.got[1][1]


def test_list_pages_through_next_page_uri() -> None:
    with TwilioEmulator() as emu:
        for i in range(7):
            emu.inbound("+85291234567", f"reply {i}")
        client = connector(emu).client()
        with client:
            got = list(client.list_messages(sender="+85291234567", page_size=3))
        assert [m["body"] for m in got] == [f"reply {i}" for i in reversed(range(7))]
        assert emu.requests[f"/2010-04-01/Accounts/{emu.account_sid}/Messages.json"] == 3


def test_rate_limit_answers_20429_and_the_client_retries() -> None:
    with TwilioEmulator(rate_limit=LeakyBucket(size=1, leak_rate=5)) as emu:
        conn = connector(emu)
        conn.sleep = time.sleep  # the backoff really waits for the bucket to drain
        for i in range(4):
            assert send(conn, "+85291234567", f"m{i}").provider_id
        assert emu.rate_limit.refused > 0
        assert len(emu.sends) == 4


def test_the_command_line_prints_a_plugins_toml_section_that_works() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "storesync.connectors.sms.emulator", "--delivery-seconds", "0.1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(11)]
        text = "".join(lines)
        token = next(line.split("=", 1)[1].strip() for line in lines if line.startswith("export TWILIO_AUTH_TOKEN="))
        section = tomllib.loads(text[text.index("[connectors.sms]"):])["connectors"]["sms"]
        assert section.pop("type") == "twilio" and section["auth_token"] == "${TWILIO_AUTH_TOKEN}"
        conn = TwilioConnector("sms", TwilioSettings.model_validate({**section, "auth_token": token}),
                               ConnectorContext())
        assert conn.check().startswith("Twilio account 'storesync emulator' (active)")
        assert send(conn, "+85291234567").status == "queued"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
