"""The ``twilio`` connector against mocked HTTP (pytest-httpx): the form it posts, auth, error codes, paging."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from pydantic import ValidationError
from shared_fixtures import fixture_path

from storesync.connectors.sms import TwilioConnector, TwilioSettings
from storesync.core.capabilities import OutboundMessage
from storesync.core.connector import ConnectorContext
from storesync.core.errors import FatalSyncError

SID = "AC" + "0" * 31 + "1"
TOKEN = "twilio_secret_auth_token_42"
BASE = "https://api.twilio.com"
MESSAGES = f"{BASE}/2010-04-01/Accounts/{SID}/Messages.json"
MESSAGE = OutboundMessage(to="+85291234567", body="你好，已收到你的訂單 #1001。", idempotency_key="r:e1")


def connector(**settings) -> TwilioConnector:
    data = {"account_sid": SID, "auth_token": TOKEN, "from_number": "+85230011234", **settings}
    conn = TwilioConnector("sms", TwilioSettings.model_validate(data), ConnectorContext())
    conn.sleep = lambda seconds: None
    return conn


def example(name: str) -> dict:
    examples = json.loads(fixture_path("twilio-oai", "messages_examples.json").read_text(encoding="utf-8"))
    return examples["examples"][name]


CREATED = "POST /2010-04-01/Accounts/{AccountSid}/Messages.json 201 create"


def error(code: int, status: int = 400) -> dict:
    return {"code": code, "message": f"error {code}", "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


def form(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def test_send_posts_a_form_with_basic_auth_and_reads_the_201(httpx_mock) -> None:
    httpx_mock.add_response(url=MESSAGES, method="POST", status_code=201, json=example(CREATED))
    delivery = connector(status_callback="https://shop.example/hooks/twilio").send_message(MESSAGE)
    assert (delivery.provider_id, delivery.status, delivery.segments) == ("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                                                          "queued", 1)
    request = httpx_mock.get_request()
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert form(request) == {"To": "+85291234567", "Body": MESSAGE.body, "From": "+85230011234",
                             "StatusCallback": "https://shop.example/hooks/twilio"}


def test_messaging_service_and_api_key(httpx_mock) -> None:
    httpx_mock.add_response(url=MESSAGES, method="POST", status_code=201, json=example(CREATED))
    key = "SK" + "a" * 32
    connector(from_number=None, messaging_service_sid="MG" + "b" * 32, api_key_sid=key,
              api_key_secret="key_secret").send_message(MESSAGE)
    request = httpx_mock.get_request()
    assert form(request)["MessagingServiceSid"] == "MG" + "b" * 32 and "From" not in form(request)
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{key}:key_secret".encode()).decode()


@pytest.mark.parametrize(("code", "recipient"), [(21211, "invalid"), (21614, "invalid"), (21610, "opted_out"),
                                                 (21408, None)])
def test_refusals_fail_the_message_and_say_what_it_means_for_the_number(httpx_mock, code, recipient) -> None:
    httpx_mock.add_response(url=MESSAGES, method="POST", status_code=400, json=error(code))
    delivery = connector().send_message(MESSAGE)
    assert (delivery.provider_id, delivery.status, delivery.error_code) == (None, "failed", code)
    assert delivery.recipient == recipient and delivery.detail == f"error {code}"


def test_429_is_retried_then_the_message_is_sent_once(httpx_mock) -> None:
    httpx_mock.add_response(url=MESSAGES, method="POST", status_code=429, json=error(20429, 429),
                            headers={"Retry-After": "0"})
    httpx_mock.add_response(url=MESSAGES, method="POST", status_code=201, json=example(CREATED))
    assert connector().send_message(MESSAGE).status == "queued"
    assert len(httpx_mock.get_requests()) == 2


def test_a_500_on_send_is_not_repeated(httpx_mock) -> None:
    """Twilio may have created the message: repeating the POST could send it twice (the outbox settles it)."""
    httpx_mock.add_response(url=MESSAGES, method="POST", status_code=500, json=error(20500, 500))
    with pytest.raises(Exception, match="not idempotent"):
        connector().send_message(MESSAGE)
    assert len(httpx_mock.get_requests()) == 1


def test_bad_credentials_stop_with_a_fix_it_message_and_no_secret(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/2010-04-01/Accounts/{SID}.json", status_code=401, json=error(20003, 401))
    with pytest.raises(FatalSyncError) as caught:
        connector().check()
    text = str(caught.value)
    assert "20003" in text and "auth_token" in text and TOKEN not in text


def test_check_names_the_account(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{BASE}/2010-04-01/Accounts/{SID}.json",
                            json={"sid": SID, "friendly_name": "Lam Kee", "status": "active"})
    assert connector().check() == "Twilio account 'Lam Kee' (active), sending from +85230011234"


def listed(messages: list[dict], next_uri: str | None) -> dict:
    return {"messages": messages, "next_page_uri": next_uri, "page": 0, "page_size": 50}


def resource(sid: str, body: str, *, to: str = "+85291234567", direction: str = "outbound-api",
             when: datetime | None = None, sender: str = "+85230011234") -> dict:
    stamp = (when or datetime.now(UTC)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return {"sid": sid, "body": body, "to": to, "from": sender, "direction": direction, "status": "sent",
            "date_created": stamp, "date_sent": stamp, "num_segments": "1", "error_code": None}


def test_find_message_follows_next_page_uri_and_skips_taken_sids(httpx_mock) -> None:
    page2 = f"/2010-04-01/Accounts/{SID}/Messages.json?To=%2B85291234567&PageSize=50&Page=1&PageToken=PA1"
    httpx_mock.add_response(url=f"{MESSAGES}?PageSize=50&To=%2B85291234567&From=%2B85230011234&DateSent%3E="
                                f"{(datetime.now(UTC) - timedelta(days=2)).date()}",
                            json=listed([resource("SM1", "other"), resource("SM2", MESSAGE.body)], page2))
    httpx_mock.add_response(url=f"{BASE}{page2}", json=listed([resource("SM3", MESSAGE.body)], None))
    since = datetime.now(UTC) - timedelta(days=1)
    found = connector().find_message(MESSAGE, since, exclude={"SM2"})
    assert found is not None and found.provider_id == "SM3"


def test_find_message_ignores_older_messages_with_the_same_text(httpx_mock) -> None:
    old = datetime.now(UTC) - timedelta(hours=3)
    httpx_mock.add_response(json=listed([resource("SM1", MESSAGE.body, when=old)], None))
    assert connector().find_message(MESSAGE, datetime.now(UTC) - timedelta(hours=1), set()) is None


def test_consent_changes_read_stop_and_start_replies(httpx_mock) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    replies = [resource("SM7", "START", direction="inbound", sender="+85261234567", to="+85230011234", when=now),
               resource("SM6", "Stop", direction="inbound", sender="+85291234567", to="+85230011234",
                        when=now - timedelta(minutes=1)),
               resource("SM5", "thanks!", direction="inbound", sender="+85291234567", to="+85230011234", when=now)]
    httpx_mock.add_response(json=listed(replies, None))
    changes = connector().consent_changes(now - timedelta(hours=1))
    assert [(c.phone, c.opted_out) for c in changes] == [("+85291234567", True), ("+85261234567", False)]
    assert httpx_mock.get_request().url.params["To"] == "+85230011234"


@pytest.mark.parametrize(("settings", "message"), [
    ({"account_sid": "AC123"}, "account_sid must look like AC"),
    ({"messaging_service_sid": "MG" + "1" * 32}, "exactly one of from_number and messaging_service_sid"),
    ({"from_number": None}, "exactly one of from_number and messaging_service_sid"),
    ({"api_key_sid": "SK" + "1" * 32}, "api_key_sid and api_key_secret go together"),
    ({"status_callback": "ftp://x"}, "https://"),
])
def test_settings_are_validated(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TwilioSettings.model_validate({"account_sid": SID, "auth_token": TOKEN, "from_number": "+85230011234",
                                       **settings})
