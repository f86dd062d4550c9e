"""X-Twilio-Signature against twilio-python's vectors; status callbacks and inbound keywords."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from shared_fixtures import fixture_path

from storesync.connectors.sms.webhooks import (
    compute_signature,
    keyword_action,
    parse_inbound,
    parse_status_callback,
    verify_signature,
)


def vector_file() -> dict:
    return json.loads(fixture_path("twilio-python", "request_validator_vectors.json").read_text(encoding="utf-8"))


def params_of(vector: dict):
    return vector.get("params") or vector.get("params_multi") or ()


def test_every_vector_verifies_and_a_changed_one_does_not() -> None:
    data = vector_file()
    token = data["auth_token"]
    assert len(data["vectors"]) == 4
    for v in data["vectors"]:
        body = v["raw_body"].encode() if "raw_body" in v else None
        assert verify_signature(token, v["url"], v["signature"], params_of(v), body=body), v
        assert not verify_signature("54321", v["url"], v["signature"], params_of(v), body=body)
        if body is None:
            assert compute_signature(token, v["url"], params_of(v)) == v["signature"]
            tampered = [(k, val + "0") for k, val in (params_of(v).items() if isinstance(params_of(v), dict)
                                                       else params_of(v))]
            assert not verify_signature(token, v["url"], v["signature"], tampered)
        else:
            assert not verify_signature(token, v["url"], v["signature"], body=body + b" ")


def test_default_port_is_tried_both_ways() -> None:
    data = vector_file()
    plain = data["vectors"][0]
    with_port = plain["url"].replace("mycompany.com", "mycompany.com:443")
    assert verify_signature(data["auth_token"], with_port, plain["signature"], plain["params"])
    signed_with_port = compute_signature(data["auth_token"], with_port, plain["params"])
    assert verify_signature(data["auth_token"], plain["url"], signed_with_port, plain["params"])
    assert not verify_signature(data["auth_token"], plain["url"], None, plain["params"])


def test_status_callback_fields() -> None:
    cb = parse_status_callback({"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003",
                                "To": "+85291234567", "RawDlrDoneDate": "2512011530"})
    assert (cb.message_sid, cb.status, cb.error_code, cb.to) == ("SM1", "undelivered", 30003, "+85291234567")
    assert cb.delivered_at == datetime(2025, 12, 1, 15, 30, tzinfo=UTC)
    assert parse_status_callback({"SmsSid": "SM2", "SmsStatus": "sent"}).error_code is None
    with pytest.raises(ValueError, match="MessageSid"):
        parse_status_callback({"MessageStatus": "sent"})


@pytest.mark.parametrize(("body", "action"), [
    ("STOP", "opt_out"), (" stop ", "opt_out"), ("Unsubscribe", "opt_out"), ("STOPALL", "opt_out"),
    ("start", "opt_in"), ("UNSTOP", "opt_in"), ("yes", "opt_in"), ("HELP", "help"), ("info", "help"),
    ("please stop sending", None), ("", None), ("唔該", None),
])
def test_keywords(body: str, action: str | None) -> None:
    assert keyword_action(body) == action
    assert parse_inbound({"MessageSid": "SM9", "From": "+85291234567", "Body": body}).action == action
