"""The ``odoo`` connector against the in-process emulator: seek paging at page edges, cursors, re-authentication,
one vanished record quarantined alone, stock writes in inventory mode, orders created exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from storesync.connectors.erp import OdooConnector, OdooSettings
from storesync.connectors.erp.client import OdooError
from storesync.connectors.erp.emulator import OdooEmulator
from storesync.connectors.erp.records import seek_pages
from storesync.core.capabilities import StockUpdate
from storesync.core.connector import Checkpoint, ConnectorContext, Invalid
from storesync.core.errors import ConfigError, SkippableRecordError
from storesync.core.models import Order, OrderLine

KEY = "odoo_unit_key"


@pytest.fixture(params=["jsonrpc", "json2"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def odoo():
    with OdooEmulator(api_key=KEY, partners=30, products=12, orders=12) as emulator:
        yield emulator


def connector(odoo: OdooEmulator, transport: str = "jsonrpc", **settings) -> OdooConnector:
    conn = OdooConnector("erp", OdooSettings.model_validate({
        "url": odoo.url, "database": odoo.database, "login": odoo.login, "api_key": KEY, "transport": transport,
        **settings}), ConnectorContext())
    conn.sleep = lambda seconds: None
    return conn


def records(items: list) -> list[dict]:
    return [r for r in items if isinstance(r, dict)]


def order(ref: str, *lines: tuple[str, int], email: str | None = None, phone: str | None = None) -> Order:
    return Order(external_id=ref, currency="HKD", created_at=datetime(2026, 2, 1, 9, 30, tzinfo=UTC), email=email,
                 phone=phone, number="#1001", source_name="web",
                 lines=[OrderLine(sku=sku, quantity=qty, unit_price=Decimal("10.5")) for sku, qty in lines])


def test_pages_that_end_mid_second_yield_every_record_once_in_order(odoo: OdooEmulator, transport: str) -> None:
    got = list(connector(odoo, transport, page_size=3).stream("partners").read(None))
    ids = [r["id"] for r in records(got)]
    assert ids == sorted(odoo.db.tables["res.partner"])  # archived ones included, none twice
    checkpoints = [c.state["write_date"] for c in got if isinstance(c, Checkpoint)]
    assert checkpoints == sorted(checkpoints) and checkpoints[-1] == records(got)[-1]["write_date"]
    assert all(r["email"] is None or "@" in r["email"] for r in records(got))  # False became None


def test_a_record_changed_during_the_read_is_met_again_later(odoo: OdooEmulator) -> None:
    reader = connector(odoo, page_size=4).stream("partners").read(None)
    first = [next(reader) for _ in range(4)]
    odoo.odoo_call("res.partner", "write", ids=[first[0]["id"]], vals={"city": "Macau"})
    rest = records(list(reader))
    assert [r["city"] for r in rest if r["id"] == first[0]["id"]] == ["Macau"]
    assert {r["id"] for r in [*first, *rest]} == set(odoo.db.tables["res.partner"])


def test_a_record_leaving_a_crowded_second_between_requests_skips_no_other(odoo: OdooEmulator) -> None:
    """The read-ahead thread may ask for the next page before a write lands and the one after it after: a
    record rewritten in between leaves its second, and paging by offset would then step over its neighbour."""
    client = connector(odoo).client()
    crowded = odoo.db.tables["res.partner"]
    assert len({r["write_date"].replace(microsecond=0) for r in crowded.values()}) < len(crowded) / 4  # shared seconds
    calls = []

    def call(model, method, **kwargs):
        calls.append(kwargs)
        if len(calls) == 3:  # page 2 already read, page 3 not yet
            odoo.odoo_call("res.partner", "write", ids=[min(crowded)], vals={"city": "Macau"})
        return real(model, method, **kwargs)

    real, client.call = client.call, call
    got = [r["id"] for page in seek_pages(client, "res.partner", [], ["city"], since=None, page_size=4,
                                          context={"active_test": False}) for r in page]
    assert set(got) == set(crowded) and len(calls) >= 3
    assert got.count(min(crowded)) == 2  # read before the write and again after it, in its new second


def test_the_cursor_re_reads_only_its_own_second(odoo: OdooEmulator) -> None:
    conn = connector(odoo, page_size=5)
    last = [c for c in conn.stream("sale_orders").read(None) if isinstance(c, Checkpoint)][-1]
    again = records(list(conn.stream("sale_orders").read(last.state)))
    assert again and {r["write_date"] for r in again} == {last.state["write_date"]}
    new = odoo.odoo_call("sale.order", "create", vals_list=[{"partner_id": 2, "order_line": [
        [0, 0, {"product_id": 1, "product_uom_qty": 2, "price_unit": 88.0}]]}])[0]
    after = records(list(conn.stream("sale_orders").read(last.state)))
    created = [r for r in after if r["id"] == new]
    assert created and created[0]["lines"][0]["sku"] == "TEA-JAS-100"


def test_look_back_widens_the_window(odoo: OdooEmulator) -> None:
    conn = connector(odoo, lookback_seconds=1)
    assert conn._since({"write_date": "2026-01-05 08:00:01"}) == "2026-01-05 08:00:00"


def test_an_expired_session_re_authenticates_once_and_the_read_goes_on(odoo: OdooEmulator) -> None:
    reader = connector(odoo, page_size=5).stream("products").read(None)
    head = [next(reader) for _ in range(5)]
    odoo.expire_sessions()
    rest = records(list(reader))
    assert len(records(head)) + len(rest) == len(odoo.db.tables["product.product"])
    assert odoo.requests["common.authenticate"] == 2


def test_access_error_is_fatal_with_a_fix_it_hint(odoo: OdooEmulator) -> None:
    odoo.denied_models.add("sale.order")
    with pytest.raises(OdooError) as caught:
        list(connector(odoo).stream("sale_orders").read(None))
    assert caught.value.name == "AccessError" and "access to 'sale.order'" in caught.value.hint


def test_a_vanished_line_quarantines_its_order_only(odoo: OdooEmulator, transport: str) -> None:
    line = next(iter(odoo.db.tables["sale.order.line"].values()))
    odoo.db.vanished.add(("sale.order.line", line["id"]))
    got = list(connector(odoo, transport).stream("sale_orders").read(None))
    invalid = [r for r in got if isinstance(r, Invalid)]
    assert [i.external_id for i in invalid] == [str(line["order_id"])]
    assert "MissingError" in invalid[0].reason and "sale.order.line" in invalid[0].reason
    assert len(records(got)) == len(odoo.db.tables["sale.order"]) - 1


def test_quants_fold_per_product_and_location_and_follow_reservations(odoo: OdooEmulator) -> None:
    conn = connector(odoo)
    got = list(conn.stream("quants").read(None))
    folded = {r["id"]: r for r in records(got)}
    (stock_quant,) = [q for q in odoo.db.tables["stock.quant"].values() if (q["product_id"], q["location_id"]) == (4, 2)]
    assert folded["4@2"]["quantity"] == stock_quant["quantity"] and folded["4@2"]["sku"] == "SNK-ALM-200"
    sale = odoo.odoo_call("sale.order", "create", vals_list=[{"partner_id": 1, "order_line": [
        [0, 0, {"product_id": 4, "product_uom_qty": 2}]]}])[0]
    odoo.odoo_call("sale.order", "action_confirm", ids=[sale])
    cursor = [c for c in got if isinstance(c, Checkpoint)][-1].state
    changed = {r["id"]: r for r in records(list(conn.stream("quants").read(cursor)))}
    assert changed["4@2"]["reserved_quantity"] == folded["4@2"]["reserved_quantity"] + 2
    assert changed["4@2"]["available_quantity"] == changed["4@2"]["quantity"] - changed["4@2"]["reserved_quantity"]


def test_stock_locations_setting_picks_locations_and_their_children(odoo: OdooEmulator) -> None:
    names = [r["complete_name"] for r in connector(odoo, stock_locations=["WH/Stock"]).stream("locations").read(None)]
    assert names == ["WH/Stock", "WH/Stock/Shelf 1"]
    shelf = connector(odoo, stock_locations=["WH/Stock/Shelf 1"])
    assert [r["complete_name"] for r in shelf.stream("locations").read(None)] == ["WH/Stock/Shelf 1"]
    with pytest.raises(ConfigError, match="unknown Odoo locations: WH/Nowhere"):
        list(connector(odoo, stock_locations=["WH/Nowhere"]).stream("locations").read(None))


def test_push_inventory_sets_applies_and_compares(odoo: OdooEmulator, transport: str) -> None:
    conn = connector(odoo, transport)
    quant = next(q for q in odoo.db.tables["stock.quant"].values() if (q["product_id"], q["location_id"]) == (2, 2))
    before = quant["quantity"]
    outcomes = conn.push_inventory([
        StockUpdate("2", "2", 41, "k1", expected=int(before)),
        StockUpdate("2", "2", 99, "k2", expected=int(before)),  # Odoo now holds 41: conflict, nothing written
        StockUpdate("5", "3", 7, "k3"),  # no quant there yet: created in inventory mode
        StockUpdate("999", "2", 1, "k4"),
        StockUpdate("SKU-X", "2", 1, "k5")])
    assert [o.status for o in outcomes] == ["applied", "conflict", "applied", "failed", "failed"]
    assert outcomes[1].actual == 41 and "MissingError" in outcomes[3].detail
    assert quant["quantity"] == 41 and not quant["inventory_quantity_set"]
    assert [q["quantity"] for q in odoo.db.tables["stock.quant"].values()
            if (q["product_id"], q["location_id"]) == (5, 3)] == [7]
    assert [w.path for w in odoo.writes].count("stock.quant.action_apply_inventory") == 2


def test_create_order_is_exactly_once_when_the_reply_is_lost(odoo: OdooEmulator, transport: str) -> None:
    conn = connector(odoo, transport, http={"backoff_base": 0, "backoff_max": 0})
    known = odoo.odoo_call("res.partner", "create", vals_list=[{"name": "Known", "email": "Known@Example.com"}])[0]
    odoo.lose_write_replies = 1  # Odoo creates the new partner, the proxy drops the reply
    first = conn.create_order(order("web:1", ("TEA-JAS-100", 2), ("HOM-CUP-WHT", 1), email="fresh@example.com"))
    odoo.lose_write_replies = 1  # now the sale order's create reply is lost
    second = conn.create_order(order("web:2", ("TEA-JAS-100", 1), email="known@example.com"))
    again = conn.create_order(order("web:1", ("TEA-JAS-100", 2), email="fresh@example.com"))
    assert first.created and not again.created and again.external_id == first.external_id
    assert not second.created  # created by the lost call, found by the lookup that followed
    (one,) = odoo.sale_orders(client_order_ref="web:1")
    (two,) = odoo.sale_orders(client_order_ref="web:2")
    assert one["state"] == two["state"] == "sale" and two["partner_id"] == known  # email matched case-insensitively
    fresh = [p for p in odoo.db.tables["res.partner"].values() if p["email"] == "fresh@example.com"]
    assert len(fresh) == 1 and fresh[0]["id"] == one["partner_id"]
    lines = sorted((ln["product_id"], ln["product_uom_qty"], ln["price_unit"])
                   for ln in odoo.db.tables["sale.order.line"].values() if ln["order_id"] == one["id"])
    assert lines == [(1, 2, 10.5), (5, 1, 10.5)]
    assert one["date_order"] == datetime(2026, 2, 1, 9, 30)


def test_orders_without_contact_go_to_one_walk_in_partner(odoo: OdooEmulator) -> None:
    conn = connector(odoo, walk_in_partner="Counter sale", confirm_orders=False)
    a, b = conn.create_order(order("till:1", ("SNK-EGG-TIN", 1))), conn.create_order(order("till:2", ("SNK-EGG-TIN", 3)))
    orders = {o["client_order_ref"]: o for o in odoo.sale_orders()}
    assert orders["till:1"]["partner_id"] == orders["till:2"]["partner_id"]
    assert odoo.db.tables["res.partner"][orders["till:1"]["partner_id"]]["name"] == "Counter sale"
    assert orders["till:1"]["state"] == "draft" and a.created and b.created


@pytest.mark.parametrize(("lines", "message"), [
    ((("TEA-JAS-100", 1), ("NOPE-1", 1), ("NOPE-2", 2)), "unknown SKU(s) in Odoo: NOPE-1, NOPE-2"),
    (((None, 1),), "line 1 has no SKU"),
    ((("TEA-JAS-100", 0),), "has quantity 0"),
    ((), "has no lines"),
])
def test_orders_odoo_cannot_take_are_skippable_and_create_nothing(odoo: OdooEmulator, lines: tuple,
                                                                  message: str) -> None:
    before = len(odoo.db.tables["sale.order"])
    with pytest.raises(SkippableRecordError) as caught:
        connector(odoo).create_order(order("web:bad", *lines))
    assert message in str(caught.value) and caught.value.record_key == "web:bad"
    assert len(odoo.db.tables["sale.order"]) == before


def test_check_names_database_login_and_transport(odoo: OdooEmulator, transport: str) -> None:
    text = connector(odoo, transport).check()
    assert text.startswith("Odoo database 'odoo' as 'admin' over JSON") and "2 stock locations" in text


def test_emulator_command_prints_a_ready_plugins_toml_section() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "storesync.connectors.erp.emulator", "--transport", "json2"],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        lines = [proc.stdout.readline() for _ in range(13)]
    finally:
        proc.kill()
        proc.communicate()
    text = "".join(lines)
    assert "[connectors.erp]" in text and 'type = "odoo"' in text and 'transport = "json2"' in text
    assert 'api_key = "${ODOO_API_KEY}"' in text and "export ODOO_API_KEY=odoo_emulator_key" in text
