"""The Odoo clients against mocked HTTP (pytest-httpx): request shapes of both transports, re-authentication,
Odoo's error payloads turned into fatal or skippable errors with fix-it hints, secrets kept out of messages."""

from __future__ import annotations

import json

import pytest

from storesync.connectors.erp.client import KEY_HINT, Json2Client, JsonRpcClient, OdooError, OdooRecordError
from storesync.core.errors import FatalSyncError, RetriableSyncError
from storesync.core.http import HttpSettings

URL = "https://shop.odoo.example"
KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0secret"


def rpc(**kwargs) -> JsonRpcClient:
    return JsonRpcClient(name="odoo 'erp'", url=URL, database="shop", login="api@shop.hk", api_key=KEY,
                         settings=HttpSettings(backoff_base=0, backoff_max=0), sleep=lambda s: None, **kwargs)


def json2() -> Json2Client:
    return Json2Client(name="odoo 'erp'", url=URL, database="shop", login="api@shop.hk", api_key=KEY,
                       settings=HttpSettings(backoff_base=0, backoff_max=0), sleep=lambda s: None)


def rpc_error(code: int, name: str, message: str) -> dict:
    return {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": "Odoo Server Error", "data": {
        "name": name, "message": message, "arguments": [message], "context": {}, "debug": "Traceback..."}}}


def bodies(httpx_mock) -> list[dict]:
    return [json.loads(r.content) for r in httpx_mock.get_requests()]


def test_jsonrpc_authenticates_once_then_calls_execute_kw(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "result": 7})
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json={"jsonrpc": "2.0", "id": 2, "result": [{"id": 1}]})
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json={"jsonrpc": "2.0", "id": 3, "result": 4})
    with rpc() as client:
        assert client.call("res.partner", "search_read", domain=[("id", ">", 0)], fields=["name"], limit=5,
                           order="write_date asc, id asc") == [{"id": 1}]
        assert client.call("sale.order", "action_confirm", [4]) == 4
    auth, read, confirm = bodies(httpx_mock)
    assert auth["params"] == {"service": "common", "method": "authenticate", "args": ["shop", "api@shop.hk", KEY, {}]}
    assert read["method"] == "call" and read["jsonrpc"] == "2.0"
    assert read["params"]["args"] == ["shop", 7, KEY, "res.partner", "search_read", [],
                                      {"domain": [["id", ">", 0]], "fields": ["name"], "limit": 5,
                                       "order": "write_date asc, id asc"}]
    assert confirm["params"]["args"][3:6] == ["sale.order", "action_confirm", [[4]]]
    assert client.authentications == 1


def test_jsonrpc_expired_session_re_authenticates_once(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "result": 7})
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json=rpc_error(100, "odoo.http.SessionExpiredException",
                                                                  "Session expired"))
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json={"jsonrpc": "2.0", "id": 3, "result": 9})
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json={"jsonrpc": "2.0", "id": 4, "result": 12})
    with rpc() as client:
        assert client.call("sale.order", "search_count", domain=[]) == 12
    assert client.authentications == 2 and client.uid == 9


def test_jsonrpc_session_expiring_again_is_fatal(httpx_mock) -> None:
    expired = rpc_error(100, "odoo.http.SessionExpiredException", "Session expired")
    for answer in ({"jsonrpc": "2.0", "id": 1, "result": 7}, expired, {"jsonrpc": "2.0", "id": 1, "result": 7},
                   expired):
        httpx_mock.add_response(url=f"{URL}/jsonrpc", json=answer)
    with rpc() as client, pytest.raises(OdooError, match="expired again"):
        client.call("sale.order", "search_count", domain=[])


def test_jsonrpc_bad_credentials_are_fatal_with_a_fix_it_hint(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "result": False})
    with rpc() as client, pytest.raises(OdooError) as caught:
        client.call("res.partner", "search_read", domain=[])
    assert "refused login 'api@shop.hk' on database 'shop'" in str(caught.value)
    assert caught.value.hint == KEY_HINT and KEY not in str(caught.value)


@pytest.mark.parametrize(("name", "kind", "hint"), [
    ("odoo.exceptions.AccessError", OdooError, "give the Odoo user 'api@shop.hk' access to 'sale.order'"),
    ("odoo.exceptions.AccessDenied", OdooError, "API keys last at most 3 months"),
    ("psycopg2.OperationalError", OdooError, "check `database`"),
    ("odoo.exceptions.MissingError", OdooRecordError, None),
    ("odoo.exceptions.ValidationError", OdooRecordError, None),
    ("odoo.exceptions.UserError", OdooRecordError, None),
])
def test_jsonrpc_errors_map_by_exception_name(httpx_mock, name: str, kind: type, hint: str | None) -> None:
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "result": 7})
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json=rpc_error(200, name, "it went wrong"))
    with rpc() as client, pytest.raises(kind) as caught:
        client.call("sale.order", "read", [3], fields=["name"])
    short = name.rsplit(".", 1)[-1]
    assert str(caught.value).startswith(f"odoo 'erp': sale.order.read: Odoo {short}: it went wrong")
    assert caught.value.name == short
    if hint:
        assert hint in (caught.value.hint or "")


def test_jsonrpc_reads_retry_5xx_but_writes_do_not(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "result": 7})
    httpx_mock.add_response(url=f"{URL}/jsonrpc", status_code=502, text="bad gateway")
    httpx_mock.add_response(url=f"{URL}/jsonrpc", json={"jsonrpc": "2.0", "id": 2, "result": [1]})
    httpx_mock.add_response(url=f"{URL}/jsonrpc", status_code=502, text="bad gateway")
    with rpc() as client:
        assert client.call("sale.order", "search", domain=[]) == [1]
        with pytest.raises(RetriableSyncError, match="not retried"):
            client.call("sale.order", "create", vals_list=[{"partner_id": 1}])


def test_json2_posts_named_parameters_with_a_bearer_key(httpx_mock) -> None:
    httpx_mock.add_response(url=f"{URL}/json/2/sale.order/search_read", json=[{"id": 3, "name": "S00003"}])
    httpx_mock.add_response(url=f"{URL}/json/2/sale.order/action_confirm", json=True)
    with json2() as client:
        assert client.call("sale.order", "search_read", domain=[("state", "=", "draft")], fields=["name"],
                           limit=10, offset=20, order="write_date asc, id asc",
                           context={"active_test": False}) == [{"id": 3, "name": "S00003"}]
        assert client.call("sale.order", "action_confirm", [3]) is True
    read, confirm = httpx_mock.get_requests()
    assert read.headers["Authorization"] == f"bearer {KEY}" and read.headers["X-Odoo-Database"] == "shop"
    assert json.loads(read.content) == {"domain": [["state", "=", "draft"]], "fields": ["name"], "limit": 10,
                                        "offset": 20, "order": "write_date asc, id asc",
                                        "context": {"active_test": False}}
    assert json.loads(confirm.content) == {"ids": [3]}


def test_json2_invalid_key_is_fatal_and_never_shows_the_key(httpx_mock, caplog) -> None:
    httpx_mock.add_response(url=f"{URL}/json/2/res.partner/search_read", status_code=401,
                            json={"name": "werkzeug.exceptions.Unauthorized", "message": "Invalid apikey"})
    with json2() as client, pytest.raises(FatalSyncError) as caught:
        client.call("res.partner", "search_read", domain=[])
    assert "HTTP 401" in str(caught.value) and "Preferences > Account Security" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in caplog.text


@pytest.mark.parametrize(("status", "name", "kind"), [
    (404, "odoo.exceptions.MissingError", OdooRecordError),
    (422, "odoo.exceptions.ValidationError", OdooRecordError),
    (422, "builtins.TypeError", OdooError),
])
def test_json2_error_bodies_map_by_exception_name(httpx_mock, status: int, name: str, kind: type) -> None:
    httpx_mock.add_response(url=f"{URL}/json/2/sale.order/read", status_code=status,
                            json={"name": name, "message": "nope", "arguments": ["nope"], "context": {}})
    with json2() as client, pytest.raises(kind, match=f"sale.order.read: Odoo {name.rsplit('.', 1)[-1]}: nope"):
        client.call("sale.order", "read", [1])
