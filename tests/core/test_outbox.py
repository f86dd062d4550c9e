"""The outbox on SQLite and PostgreSQL against the Twilio emulator: planning, consent, exactly-once, statuses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from storesync.connectors.sms import TwilioConnector
from storesync.connectors.sms.emulator import TwilioEmulator
from storesync.core.config import load_config
from storesync.core.events import record_events
from storesync.core.models import Customer, Event, Order, OrderLine
from storesync.core.notifications import run_notify
from storesync.core.outbox import MESSAGES, list_messages
from storesync.core.consent import recipients
from storesync.core.plugins import build_plugin_host
from storesync.core.store import Store
from storesync.core.tables import UtcDateTime
from storesync.core.writer import Item

RULES = '''
[notifications]
connector = "sms"
settle_after_seconds = 0
rate_per_second = 100
quiet_hours = ["00:00", "23:59"]
[notifications.rules.order_confirmation]
event = "order.created"
templates.en = "Hi {first_name}, thanks for order {order_number} ({currency} {total})."
templates.zh-HK = "{customer_name}你好，已收到你的訂單 {order_number}。"
[notifications.rules.restock]
event = "stock.back_in_stock"
purpose = "marketing"
templates.en = "{sku_title} is back. Reply STOP to opt out."
'''


@pytest.fixture
def emu() -> Iterator[TwilioEmulator]:
    with TwilioEmulator(delivery_seconds=0.1) as emulator:
        yield emulator


class World:
    def __init__(self, tmp_path: Path, url: str, emu: TwilioEmulator, monkeypatch) -> None:
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", emu.auth_token)
        monkeypatch.setattr(TwilioConnector, "sleep", staticmethod(lambda seconds: None))  # no backoff waits
        path = tmp_path / "plugins.toml"
        path.write_text(f'[storesync]\ndatabase = "{url}"\ntimezone = "Asia/Hong_Kong"\n\n'
                        f'{emu.plugins_toml("sms")}\n{RULES}', encoding="utf-8")
        self.host = build_plugin_host(load_config(path))
        self.store = Store(url)
        self.emu = emu

    def customer(self, cid: str, phone: str, language: str, **extra) -> None:
        with self.store.write() as w:
            w.upsert("till", "customers", "customer", [Item(cid, Customer(
                external_id=cid, phone=phone, first_name="Mei", last_name="Wong", language=language, **extra), None)])

    def order(self, oid: str, customer: str, *, age: timedelta = timedelta(minutes=5),
              phone: str | None = None) -> None:
        order = Order(external_id=oid, number=f"#{oid}", customer_external_id=customer, currency="HKD",
                      total=Decimal("88.00"), created_at=datetime.now(UTC) - age, phone=phone,
                      lines=[OrderLine(sku="TEA", title="Jasmine Tea", quantity=1)])
        with self.store.write() as w:
            w.upsert("till", "orders", "order", [Item(oid, order, None)])

    def notify(self, **kwargs):
        return run_notify(self.host, self.store, sleep=lambda s: None, **kwargs)

    def messages(self) -> list[dict]:
        return sorted(list_messages(self.store, limit=1000), key=lambda m: m["id"])


@pytest.fixture
def world(tmp_path: Path, store_url: str, emu: TwilioEmulator, monkeypatch) -> Iterator[World]:
    w = World(tmp_path, store_url, emu, monkeypatch)
    yield w
    w.store.close()


def wait_delivered(world: World) -> None:
    deadline = time.monotonic() + 5
    while world.emu.sends and any(m.status != "delivered" for m in world.emu.sends):
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_an_order_sends_one_message_in_the_customers_language_and_reads_its_status_back(world: World) -> None:
    world.emu.delivery_seconds = 1.0  # the first run reads "queued" back; the second, "delivered"
    world.customer("C1", "+85291234567", "zh-HK")
    world.order("1001", "C1")
    first = world.notify()
    assert (first.events_new, first.planned, first.delivery.sent, first.exit_code) == (1, 1, 1, 0)
    (sent,) = world.emu.sends
    assert (sent.to, sent.body) == ("+85291234567", "Mei Wong你好，已收到你的訂單 #1001。")
    wait_delivered(world)
    again = world.notify()
    assert (again.events_new, again.planned, again.delivery.sent, again.delivery.statuses_updated) == (0, 0, 0, 1)
    (message,) = world.messages()
    assert (message["status"], message["provider_id"], message["language"]) == ("delivered", sent.sid, "zh-HK")
    assert (message["encoding"], message["segments"]) == ("UCS-2", 1)
    assert message["idempotency_key"] == "order_confirmation:order.created:till:1001"
    assert len(world.emu.sends) == 1


def test_old_orders_are_never_notified(world: World) -> None:
    world.customer("C1", "+85291234567", "en")
    world.order("1", "C1", age=timedelta(hours=73))
    report = world.notify()
    assert (report.events_new, report.planned, world.emu.sends) == (0, 0, [])


def test_a_stop_reply_is_honoured_before_anything_is_sent(world: World) -> None:
    world.customer("C1", "+85291234567", "en")
    world.emu.inbound("+85291234567", "STOP")
    world.order("1", "C1")
    report = world.notify()
    assert report.consent_changes == 1 and world.emu.sends == []
    (message,) = world.messages()
    assert message["status"] == "skipped" and message["detail"].startswith("opted out")


def test_21610_at_send_records_the_opt_out_for_the_next_message(world: World) -> None:
    world.customer("C1", "+85291234567", "en")
    world.emu.opted_out.add("+85291234567")  # Twilio knows; storesync does not yet
    world.order("1", "C1")
    first = world.notify()
    assert (first.delivery.failed, first.exit_code) == (1, 1)
    with world.store.read() as conn:
        (state,) = recipients(conn)
    assert state["phone"] == "+85291234567" and state["opted_out"] and "21610" in state["reason"]
    world.order("2", "C1")
    second = world.notify()
    assert second.delivery.failed == 0 and world.messages()[1]["status"] == "skipped"
    assert world.emu.sends == []


def test_an_invalid_number_fails_with_the_reason_and_is_flagged(world: World) -> None:
    world.customer("C1", "+15005550009", "en")
    world.order("1", "C1")
    world.notify()
    (message,) = world.messages()
    assert (message["status"], message["error_code"]) == ("failed", 21614)
    assert "not a valid mobile number" in message["detail"]
    with world.store.read() as conn:
        assert recipients(conn)[0]["invalid"]


def broken_send(world: World, hook: str):
    """Notify one new order while the emulator breaks at ``hook``; the emulator answers 500 either way.

    ``before_create``: the message is never created. ``after_create``: it is created and the answer is lost.
    """
    world.customer("C1", "+85291234567", "en")
    world.order("1", "C1")

    def broken(_arg) -> None:
        raise RuntimeError("connection dropped")
    setattr(world.emu, hook, broken)
    report = world.notify()
    setattr(world.emu, hook, None)
    return report


def test_an_answer_lost_after_the_gateway_took_the_message_is_not_resent(world: World) -> None:
    first = broken_send(world, "after_create")
    assert first.exit_code == 3 and "not idempotent" in first.error
    assert world.messages()[0]["status"] == "submitting"
    second = world.notify()
    assert (second.delivery.recovered, second.delivery.requeued, second.delivery.sent) == (1, 0, 0)
    assert len(world.emu.sends) == 1 and world.messages()[0]["provider_id"] == world.emu.sends[0].sid


def test_a_send_that_never_reached_the_gateway_is_sent_on_the_next_run(world: World) -> None:
    assert broken_send(world, "before_create").exit_code == 3 and world.emu.sends == []
    second = world.notify()
    assert (second.delivery.recovered, second.delivery.requeued, second.delivery.sent) == (0, 1, 1)
    assert len(world.emu.sends) == 1
    assert world.messages()[0]["attempts"] == 2


def test_marketing_needs_consent_and_waits_for_the_end_of_quiet_hours(world: World) -> None:
    now = datetime.now(UTC)
    events = [Event(type="stock.back_in_stock", id=f"restock:{i}", occurred_at=now,
                    data={"phone": phone, "sku_title": "Jasmine Tea", "sms_consent": consent})
              for i, (phone, consent) in enumerate([("+85291234567", True), ("+85261234567", None)])]
    with world.store.write() as w:
        record_events(w.conn, events, now)
    report = world.notify()
    assert report.planned == 2 and world.emu.sends == []
    consented, unasked = world.messages()
    assert consented["status"] == "pending" and consented["not_before"] is not None  # quiet 00:00-23:59
    assert unasked["status"] == "skipped" and "consent" in unasked["detail"]


def test_dry_run_tells_and_writes_nothing(world: World) -> None:
    world.customer("C1", "+85291234567", "en")
    world.order("1", "C1")
    report = world.notify(dry_run=True)
    assert [w["body"] for w in report.would_send] == ["Hi Mei, thanks for order #1 (HKD 88.00)."]
    assert world.messages() == [] and world.emu.sends == []
    with world.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(MESSAGES)).scalar_one() == 0
    assert world.notify().delivery.sent == 1


def test_a_status_callback_arriving_late_does_not_undo_delivered(world: World) -> None:
    from storesync.connectors.sms.webhooks import parse_status_callback
    from storesync.core.capabilities import Delivery
    from storesync.core.outbox import record_status

    world.customer("C1", "+85291234567", "en")
    world.order("1", "C1")
    world.notify()
    sid = world.emu.sends[0].sid

    def callback(status: str) -> bool:
        cb = parse_status_callback({"MessageSid": sid, "MessageStatus": status})
        return record_status(world.store, "sms", cb.message_sid, Delivery(cb.message_sid, cb.status))
    assert callback("delivered")
    assert not callback("sent")  # out of order: ignored
    assert world.messages()[0]["status"] == "delivered"
    assert not record_status(world.store, "sms", "SM-unknown", Delivery("SM-unknown", "delivered"))


def test_faults_and_cut_answers_never_send_a_message_twice(world: World) -> None:
    """5xx before the gateway acts, and answers cut off after it acted: runs fail, and the next settles them."""
    from storesync.connectors.shopify.emulator import Faults

    world.emu.faults = Faults(error_rate=0.25, truncate_rate=0.25, seed=7)
    for i in range(12):
        world.customer(f"C{i}", f"+8529100{i:04d}", "en")
        world.order(str(i), f"C{i}")
    runs, failed_runs = 0, 0
    while runs < 40:
        runs += 1
        report = world.notify()
        failed_runs += report.exit_code == 3
        if report.exit_code == 0 and all(m["provider_id"] for m in world.messages()):
            break
    sends = [(m.to, m.body) for m in world.emu.sends]
    assert len(sends) == len(set(sends)) == 12, (runs, failed_runs)
    assert failed_runs >= 1  # the faults really hit sends
    assert {m["provider_id"] for m in world.messages()} == {m.sid for m in world.emu.sends}


def test_who_gets_what_from_an_order(world: World) -> None:
    world.customer("C1", "+85291234567", "en")
    world.customer("C2", "+85261234567", "en")
    world.order("1", "C1", phone="+85251234567")  # the order's own phone wins over the customer's
    world.order("2", "missing-customer")           # no phone anywhere: skipped with the reason
    cancelled = Order(external_id="3", number="#3", customer_external_id="C2", currency="HKD", status="cancelled",
                      created_at=datetime.now(UTC))
    with world.store.write() as w:
        w.upsert("till", "orders", "order", [Item("3", cancelled, None)])
    report = world.notify()
    assert (report.events_new, report.delivery.sent) == (2, 1)
    assert [m.to for m in world.emu.sends] == ["+85251234567"]
    skipped = [m for m in world.messages() if m["status"] == "skipped"]
    assert [m["detail"] for m in skipped] == ["no phone number on the order or its customer"]


def test_a_second_notify_run_waits_for_the_first(world: World) -> None:
    from storesync.core.errors import LockedError
    from storesync.core.lock import connector_lock

    with connector_lock(world.store, "notify-sms"), pytest.raises(LockedError) as caught:
        world.notify()
    assert caught.value.exit_code == 4


def test_a_message_table_from_an_earlier_version_gains_the_outbox_columns(tmp_path: Path, store_url: str,
                                                                          emu: TwilioEmulator, monkeypatch) -> None:
    from storesync.core.outbox import upgrade_schema

    old = sa.create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    earlier = sa.Table("message", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                       sa.Column("idempotency_key", sa.String(255), unique=True), sa.Column("person_id", sa.Integer),
                       sa.Column("to", sa.String(32)), sa.Column("body", sa.Text), sa.Column("purpose", sa.String(16)),
                       sa.Column("language", sa.String), sa.Column("status", sa.String(24)),
                       sa.Column("created_at", UtcDateTime()))
    with old.begin() as conn:
        earlier.create(conn)
        conn.execute(sa.insert(earlier).values(idempotency_key="old:1", to="+85291234567", body="hi",
                                               purpose="transactional", status="sent",
                                               created_at=datetime(2025, 1, 1, tzinfo=UTC)))
    old.dispose()
    world = World(tmp_path, store_url, emu, monkeypatch)
    try:
        assert {"provider_id", "segments", "attempts", "claimed_at"} <= set(upgrade_schema(world.store))
        assert upgrade_schema(world.store) == []
        world.customer("C1", "+85261234567", "en")
        world.order("1", "C1")
        assert world.notify().delivery.sent == 1
        assert [m["idempotency_key"] for m in world.messages()][0] == "old:1"
    finally:
        world.store.close()


def test_a_text_longer_than_the_gateway_takes_is_skipped_with_the_reason(world: World) -> None:
    world.customer("C1", "+85291234567", "en")
    with world.store.write() as w:
        w.upsert("till", "customers", "customer", [Item("C1", Customer(
            external_id="C1", phone="+85291234567", first_name="M" * 1600, language="en"), None)])
    world.order("1", "C1")
    world.notify()
    (message,) = world.messages()
    assert message["status"] == "skipped" and "gateways take at most 1600" in message["detail"]
    assert world.emu.sends == []


def test_counts_survive_a_gateway_failure_mid_run(world: World) -> None:
    for i in range(3):
        world.customer(f"C{i}", f"+8529123456{i}", "en")
        world.order(str(i), f"C{i}")
    calls = []

    def third_fails(form) -> None:
        calls.append(form)
        if len(calls) == 3:
            raise RuntimeError("down")
    world.emu.before_create = third_fails
    report = world.notify()
    assert report.exit_code == 3 and report.delivery.sent == 2


def test_a_cut_off_send_is_looked_up_only_after_settle_after_seconds(world: World) -> None:
    from storesync.core.outbox import deliver
    from storesync.core.rules import load_rules

    assert broken_send(world, "after_create").exit_code == 3
    connector = world.host.connector("sms")
    patient = load_rules(world.host.config).model_copy(update={"settle_after_seconds": 60})
    waited = deliver(world.store, connector, patient)
    assert (waited.waiting, waited.recovered, waited.sent) == (1, 0, 0)
    assert world.messages()[0]["status"] == "submitting" and len(world.emu.sends) == 1
    later = deliver(world.store, connector, patient, now=lambda: datetime.now(UTC) + timedelta(seconds=61))
    assert (later.waiting, later.recovered) == (0, 1)
    assert len(world.emu.sends) == 1
