"""core/http.py and core/pacing.py: retries, Retry-After, budget, idempotency, pacing and redaction."""

from __future__ import annotations

import logging
import math
import random
import traceback
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from pydantic import ValidationError
from pytest_httpx import HTTPXMock

from storesync.core.errors import FatalSyncError, RetriableSyncError
from storesync.core.http import HttpClient, HttpSettings, LeakyBucketPacer

BASE = "https://shop.example.com/admin/api/2024-07"
ORDERS = f"{BASE}/orders.json"
NAME = "shopify 'shop'"
TOKEN = "shpat_CANARY_0123456789abcdef"
CALL_LIMIT = "X-Shopify-Shop-Api-Call-Limit"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(sleeps: list[float]):
    clients: list[HttpClient] = []

    def make(pacer=None, **settings) -> HttpClient:
        client = HttpClient(name=NAME, base_url=BASE, headers={"X-Shopify-Access-Token": TOKEN},
                            settings=HttpSettings(**settings), pacer=pacer, sleep=sleeps.append)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.mark.parametrize(("header", "expected"), [("0", 0.0), ("2.0", 2.0), ("7", 7.0), ("1.25", 1.25)])
def test_retry_after_seconds_are_honoured_exactly(httpx_mock: HTTPXMock, make_client, sleeps, header, expected):
    httpx_mock.add_response(url=ORDERS, status_code=429, headers={"Retry-After": header})
    httpx_mock.add_response(url=ORDERS, json={"orders": []})
    client = make_client()
    data, response = client.get_json("/orders.json")
    assert (data, response.status_code) == ({"orders": []}, 200)
    assert sleeps == [expected]
    assert (client.retries_used, client.requests_made) == (1, 2)


def test_retry_after_http_date_is_measured_against_the_response_date(httpx_mock: HTTPXMock, make_client, sleeps):
    server_now = datetime(2024, 7, 1, 12, 0, 0, tzinfo=timezone.utc)
    httpx_mock.add_response(status_code=503, headers={
        "Date": format_datetime(server_now, usegmt=True),
        "Retry-After": format_datetime(server_now + timedelta(seconds=42), usegmt=True)})
    httpx_mock.add_response(json={"ok": True})
    assert make_client().get_json("/orders.json")[0] == {"ok": True}
    assert sleeps == [42.0]


def test_retry_after_http_date_without_date_header_uses_the_local_clock(httpx_mock: HTTPXMock, make_client, sleeps):
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    httpx_mock.add_response(status_code=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    httpx_mock.add_response(json={})
    make_client().get_json("/orders.json")
    assert len(sleeps) == 1 and 28.0 <= sleeps[0] <= 30.0


def test_retry_after_longer_than_max_is_fatal_without_sleeping(httpx_mock: HTTPXMock, make_client, sleeps):
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "3600"})
    with pytest.raises(FatalSyncError) as info:
        make_client(max_retry_after=120).get_json("/orders.json")
    assert "retry after 3600s, longer than max_retry_after (120s)" in str(info.value)
    assert NAME in str(info.value) and "GET /admin/api/2024-07/orders.json" in str(info.value)
    assert sleeps == []


def test_without_retry_after_backoff_is_full_jitter_within_the_cap(httpx_mock: HTTPXMock, make_client, sleeps):
    random.seed(1234)
    for _ in range(6):
        httpx_mock.add_response(status_code=503)
    httpx_mock.add_response(json={"ok": 1})
    assert make_client(max_retries=6, backoff_base=0.5, backoff_max=3.0).get_json("/orders.json")[0] == {"ok": 1}
    assert len(sleeps) == 6
    caps = [min(3.0, 0.5 * 2 ** i) for i in range(6)]  # 0.5, 1, 2, 3, 3, 3
    assert all(0.0 <= s <= cap for s, cap in zip(sleeps, caps, strict=True)), (sleeps, caps)
    assert len(set(sleeps)) == 6  # jittered, not a fixed schedule


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_then_200_is_retried(httpx_mock: HTTPXMock, make_client, sleeps, status):
    httpx_mock.add_response(status_code=status)
    httpx_mock.add_response(json={"orders": [{"id": 1}]})
    client = make_client()
    assert client.get_json("/orders.json")[0] == {"orders": [{"id": 1}]}
    assert client.retries_used == 1 and len(sleeps) == 1


def test_truncated_json_then_good_json(httpx_mock: HTTPXMock, make_client, sleeps):
    httpx_mock.add_response(content=b'{"orders": [{"id": 1}, {"id"', headers={"Content-Type": "application/json"})
    httpx_mock.add_response(json={"orders": [{"id": 1}, {"id": 2}]})
    data, _ = make_client().get_json("/orders.json")
    assert data == {"orders": [{"id": 1}, {"id": 2}]}
    assert len(sleeps) == 1


@pytest.mark.parametrize("exc", [
    httpx.ConnectError("connection refused"), httpx.ConnectTimeout("connect timed out"),
    httpx.ReadTimeout("read timed out"), httpx.RemoteProtocolError("peer closed connection mid-body"),
    httpx.ReadError("connection reset"),
])
def test_transport_errors_then_200_are_retried_for_get(httpx_mock: HTTPXMock, make_client, sleeps, exc):
    httpx_mock.add_exception(exc)
    httpx_mock.add_response(json={"ok": True})
    client = make_client()
    assert client.get_json("/orders.json")[0] == {"ok": True}
    assert (client.retries_used, client.requests_made) == (1, 2)


def test_connect_error_is_retried_even_for_a_plain_post(httpx_mock: HTTPXMock, make_client):
    httpx_mock.add_exception(httpx.ConnectError("connection refused"))
    httpx_mock.add_response(method="POST", json={"id": 7})
    assert make_client().post_json("/orders.json", json={"order": {}})[0] == {"id": 7}


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_is_fatal_with_hint_and_no_token(httpx_mock: HTTPXMock, make_client, sleeps, status):
    httpx_mock.add_response(status_code=status, json={"errors": "[API] Invalid API key or access token"})
    client = make_client()
    with pytest.raises(FatalSyncError) as info:
        client.get_json("/orders.json")
    text = str(info.value)
    assert "check the access token in plugins.toml" in text
    assert f"{NAME}: GET /admin/api/2024-07/orders.json: HTTP {status}" in text
    assert TOKEN not in text
    assert client.requests_made == 1 and sleeps == []


def test_404_is_returned_to_the_caller_and_not_retried(httpx_mock: HTTPXMock, make_client, sleeps):
    httpx_mock.add_response(status_code=404, text="<html>Not Found</html>")
    client = make_client()
    data, response = client.get_json("/orders/1.json")
    assert response.status_code == 404 and data is None
    assert client.requests_made == 1 and client.retries_used == 0 and sleeps == []


def test_redirects_are_returned_not_followed(httpx_mock: HTTPXMock, make_client):
    httpx_mock.add_response(status_code=302, headers={"Location": "https://elsewhere.example.com/steal"})
    assert make_client().request("GET", "/orders.json").status_code == 302


def test_max_retries_exhausted_is_fatal_naming_request_and_status(httpx_mock: HTTPXMock, make_client, sleeps):
    for _ in range(3):
        httpx_mock.add_response(status_code=503)
    with pytest.raises(FatalSyncError) as info:
        make_client(max_retries=2).get_json("/orders.json")
    assert str(info.value) == f"{NAME}: GET /admin/api/2024-07/orders.json failed after 2 retries: HTTP 503"
    assert len(sleeps) == 2


def test_retry_budget_is_shared_across_requests(httpx_mock: HTTPXMock, make_client, sleeps):
    for status in (503, 503, 200, 503, 503):
        httpx_mock.add_response(status_code=status, json={})
    client = make_client(max_retries=5, retry_budget=3)
    assert client.request("GET", "/orders.json").status_code == 200  # used 2 of 3
    with pytest.raises(FatalSyncError) as info:
        client.request("GET", "/orders.json")  # 1 more retry, then the budget is gone
    assert "retry budget of 3 retries for this run is used up (last error: HTTP 503)" in str(info.value)
    assert "GET /admin/api/2024-07/orders.json" in str(info.value)
    assert (client.retries_used, client.requests_made, len(sleeps)) == (3, 5, 3)


def test_post_is_not_retried_after_a_500(httpx_mock: HTTPXMock, make_client, sleeps):
    httpx_mock.add_response(method="POST", status_code=500)
    client = make_client()
    with pytest.raises(RetriableSyncError) as info:
        client.post_json("/orders.json", json={"order": {}})
    assert not isinstance(info.value, FatalSyncError)
    assert "not retried: POST is not idempotent" in str(info.value)
    assert client.requests_made == 1 and sleeps == []


def test_post_read_timeout_is_not_retried(httpx_mock: HTTPXMock, make_client, sleeps):
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"), method="POST")
    with pytest.raises(RetriableSyncError, match="ReadTimeout"):
        make_client().post_json("/orders.json", json={})
    assert sleeps == []


def test_idempotent_post_is_retried_after_a_500(httpx_mock: HTTPXMock, make_client, sleeps):
    httpx_mock.add_response(method="POST", status_code=500)
    httpx_mock.add_response(method="POST", json={"counts": []})
    data, _ = make_client().post_json("/inventory.json", json={"idempotency_key": "k1"}, idempotent=True)
    assert data == {"counts": []} and len(sleeps) == 1


def test_post_is_retried_after_a_429(httpx_mock: HTTPXMock, make_client, sleeps):
    httpx_mock.add_response(method="POST", status_code=429, headers={"Retry-After": "1"})
    httpx_mock.add_response(method="POST", json={"sid": "SM1"})
    assert make_client().post_json("/messages.json", data={"Body": "hi"})[0] == {"sid": "SM1"}
    assert sleeps == [1.0]


def test_settings_have_no_way_to_disable_tls_verification():
    with pytest.raises(ValidationError):
        HttpSettings(verify=False)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now, self.sleeps = now, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _limit(used: int, size: int = 40) -> httpx.Response:
    return httpx.Response(200, headers={CALL_LIMIT: f"{used}/{size}"})


def test_pacer_sleeps_just_enough_after_38_of_40():
    clock = FakeClock()
    pacer = LeakyBucketPacer(size=40, leak_rate=2.0, headroom=4, clock=clock, sleep=clock.sleep)
    pacer.before()
    assert clock.sleeps == []  # empty bucket: no wait
    pacer.after(_limit(38))
    pacer.before()  # 38 in the bucket; this call must leave 4 free: wait for 3 to leak at 2/s
    assert clock.sleeps == [1.5]
    assert pacer.level == pytest.approx(36.0)


def test_pacer_counts_leak_between_calls():
    clock = FakeClock()
    pacer = LeakyBucketPacer(size=40, leak_rate=2.0, headroom=4, clock=clock, sleep=clock.sleep)
    pacer.after(_limit(38))
    clock.now += 1.0  # two calls leaked away
    pacer.before()
    assert clock.sleeps == [pytest.approx(0.5)]


def test_client_consults_the_pacer_before_each_call(httpx_mock: HTTPXMock, make_client, sleeps):
    clock = FakeClock()
    pacer = LeakyBucketPacer(clock=clock, sleep=clock.sleep)
    httpx_mock.add_response(json={}, headers={CALL_LIMIT: "38/40"})
    httpx_mock.add_response(json={}, headers={CALL_LIMIT: "36/40"})
    client = make_client(pacer=pacer)
    client.get_json("/orders.json")
    client.get_json("/orders.json")
    assert clock.sleeps == [1.5] and sleeps == []


def test_pacer_never_overflows_the_bucket_over_a_500_call_run():
    rng = random.Random(7)
    clock = FakeClock()
    pacer = LeakyBucketPacer(size=40, leak_rate=2.0, headroom=4, clock=clock, sleep=clock.sleep)
    server_level, server_time, peak, start = 30.0, clock.now, 0.0, clock.now  # a previous run left 30 in it
    for _ in range(500):
        pacer.before()
        server_level = max(0.0, server_level - (clock.now - server_time) * 2.0)
        server_time = clock.now
        assert server_level + 1 <= 40, "the server would answer 429"
        server_level += 1
        peak = max(peak, server_level)
        clock.now += rng.uniform(0.01, 0.15)  # latency and processing
        pacer.after(_limit(math.ceil(server_level - (clock.now - server_time) * 2.0)))
    assert peak <= 40
    elapsed = clock.now - start
    assert (500 + 30 - 40) / 2.0 <= elapsed <= 500 / 2.0 + 10  # throttled, but not wastefully


def test_secrets_never_reach_logs_or_errors(httpx_mock: HTTPXMock, sleeps, caplog):
    canary, query_secret = "CANARY-7f3a9c-token", "CANARY-query-5e1d"
    caplog.set_level(logging.DEBUG)
    httpx_mock.add_response(status_code=503)
    httpx_mock.add_exception(httpx.ConnectError(f"could not connect with {canary}"))
    httpx_mock.add_response(status_code=401)
    client = HttpClient(name=NAME, base_url="https://user:hunter2pass@api.example.com/v1",
                        headers={"Authorization": f"Bearer {canary}", "X-Twilio-Signature": "sig-CANARY-x9"},
                        secrets=[query_secret], sleep=sleeps.append)
    with client, pytest.raises(FatalSyncError) as info:
        client.get_json(f"/things/{query_secret}.json", params={"key": query_secret})
    texts = [r.getMessage() for r in caplog.records]
    texts += [str(info.value), "".join(traceback.format_exception(info.value))]
    retries = [r for r in caplog.records if r.name == "storesync.http"]
    assert len(retries) == 2 and all(r.levelno == logging.INFO for r in retries)
    assert retries[0].http_method == "GET" and retries[0].http_error == "HTTP 503" and retries[0].attempt == 1
    assert retries[1].sleep_seconds == sleeps[1] and "ConnectError" in retries[1].http_error
    assert any(r.name == "httpx" for r in caplog.records)  # httpx's own request log was checked too
    for text in texts:
        for secret in (canary, query_secret, "hunter2pass", "sig-CANARY-x9"):
            assert secret not in text, text


def test_a_response_is_freed_as_soon_as_the_caller_drops_it(httpx_mock: HTTPXMock, make_client):
    """No response <-> stream cycle left behind: a long sync must not keep page bodies until a full GC."""
    import gc
    import weakref

    httpx_mock.add_response(url=f"{BASE}/big.json", json={"orders": [{"id": i} for i in range(1000)]})
    client = make_client()
    enabled = gc.isenabled()
    gc.disable()
    try:
        data, response = client.get_json("big.json")
        assert len(data["orders"]) == 1000 and response.content  # the body is still there for the caller
        ref = weakref.ref(response)
        del data, response
        assert ref() is None
    finally:
        if enabled:
            gc.enable()
