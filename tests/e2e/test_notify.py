"""``storesync notify`` end to end through the CLI: files sync -> order event -> SMS via the Twilio emulator.

The exactly-once test kills ``storesync notify`` with SIGKILL at each step of delivery (before the gateway takes
a message; after it took it but before the answer; just after the answer; after the answer while the store is
locked, so the answer is surely not committed) and checks the emulator's write log: one send per idempotency key,
none lost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e_support import explain, parse_json, rows
from pgschema import fresh_schema

from storesync.connectors.sms.emulator import TwilioEmulator

ACCOUNT = "AC" + "5" * 32
TOKEN = "emulated_auth_token_e2e"
CUSTOMERS = ("id,email,phone,first_name,last_name,language,updated_at\n"
             "C1,chan@example.com,+85291234567,Tai Man,Chan,zh-HK,2024-05-01 10:00:00\n"
             "C2,mei@example.com,+85261234567,Mei,Wong,en,2024-05-01 10:00:00\n"
             "C3,lee@example.com,+85251234567,Ka Yan,Lee,en,2024-05-01 10:00:00\n"
             "C4,ho@example.com,+85298765432,Wing,Ho,zh-HK,2024-05-01 10:00:00\n")
RULES = '''
[notifications]
connector = "sms"
settle_after_seconds = 0
rate_per_second = 50
[notifications.rules.order_confirmation]
event = "order.created"
templates.en = "Hi {first_name}, thanks for order {order_number} ({currency} {total})."
templates.zh-HK = "{customer_name}你好，已收到你的訂單 {order_number}，金額 {currency} {total}。"
'''


def order(i: int, customer: str, created: datetime) -> dict:
    return {"id": i, "name": f"#{1000 + i}", "currency": "HKD", "total_price": "88.00",
            "created_at": created.isoformat(), "customer": {"id": customer},
            "line_items": [{"id": i, "sku": "TEA-JAS-100", "title": "Jasmine Tea", "quantity": 1, "price": "88.00"}]}


def write_project(root: Path, emu: TwilioEmulator, customers: list[str], *, rules: str = RULES,
                  database: str = "sqlite:///store.db") -> None:
    (root / "exports").mkdir(parents=True, exist_ok=True)
    (root / "exports" / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    now = datetime.now(UTC)
    lines = [order(i + 1, c, now - timedelta(minutes=5)) for i, c in enumerate(customers)]
    lines.append(order(99, "C2", now - timedelta(days=30)))  # history: never notified
    (root / "exports" / "orders.jsonl").write_text("".join(json.dumps(o) + "\n" for o in lines), encoding="utf-8")
    (root / "plugins.toml").write_text(
        f'[storesync]\ndatabase = "{database}"\ntimezone = "Asia/Hong_Kong"\n\n'
        '[connectors.till]\ntype = "files"\ndirectory = "exports"\nstreams = ["customers", "orders"]\n'
        '[connectors.till.files.customers]\npattern = "customers.csv"\n'
        '[connectors.till.files.orders]\npattern = "orders.jsonl"\n\n'
        f'{emu.plugins_toml("sms")}\n{rules}', encoding="utf-8")


def storesync(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}, "TWILIO_AUTH_TOKEN": TOKEN}
    return subprocess.run([sys.executable, "-m", "storesync.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def emulator(**kwargs) -> TwilioEmulator:
    return TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, **kwargs)


def messages(cwd: Path) -> list[dict]:
    proc = storesync(cwd, "messages", "list", "--json")
    assert proc.returncode == 0, explain(proc)
    return parse_json(proc)


def test_an_order_becomes_one_sms_in_the_customers_language_and_is_shown_delivered(tmp_path: Path,
                                                                                   store_url: str) -> None:
    with emulator(delivery_seconds=0.3) as emu:
        write_project(tmp_path, emu, ["C1"], database=store_url)
        assert storesync(tmp_path, "sync", "--json", "--no-progress").returncode == 0
        first = storesync(tmp_path, "notify", "--json")
        assert first.returncode == 0, explain(first)
        report = parse_json(first)
        assert (report["events_new"], report["planned"], report["delivery"]["sent"]) == (1, 1, 1)
        (sms,) = emu.sends
        assert sms.to == "+85291234567"
        assert sms.body == "Tai Man Chan你好，已收到你的訂單 #1001，金額 HKD 88.00。"
        time.sleep(0.5)
        again = parse_json(storesync(tmp_path, "notify", "--json"))
        assert (again["planned"], again["delivery"]["sent"], again["delivery"]["statuses_updated"]) == (0, 0, 1)
        (listed,) = messages(tmp_path)
        assert (listed["status"], listed["language"], listed["provider_id"]) == ("delivered", "zh-HK", sms.sid)
        assert (listed["encoding"], listed["segments"]) == ("UCS-2", 1)
        table = storesync(tmp_path, "messages", "list")
        assert "delivered" in table.stdout and "estimated cost 1 segments" in table.stdout
        assert len(emu.sends) == 1


def test_an_opted_out_customer_gets_nothing(tmp_path: Path) -> None:
    with emulator() as emu:
        write_project(tmp_path, emu, ["C1", "C2"])
        emu.inbound("+85261234567", "STOP")
        assert storesync(tmp_path, "sync", "--json", "--no-progress").returncode == 0
        report = parse_json(storesync(tmp_path, "notify", "--json"))
        assert report["consent_changes"] == 1 and report["delivery"]["sent"] == 1
        assert [m.to for m in emu.sends] == ["+85291234567"]
        by_to = {m["to"]: m for m in messages(tmp_path)}
        assert by_to["+85261234567"]["status"] == "skipped"
        assert by_to["+85261234567"]["detail"].startswith("opted out")


def test_dry_run_sends_nothing(tmp_path: Path) -> None:
    with emulator() as emu:
        write_project(tmp_path, emu, ["C2"])
        storesync(tmp_path, "sync", "--json", "--no-progress")
        proc = storesync(tmp_path, "notify", "--dry-run")
        assert proc.returncode == 0, explain(proc)
        assert "Hi Mei, thanks for order #1001 (HKD 88.00)." in proc.stdout and emu.sends == []
        assert messages(tmp_path) == []


def test_a_template_error_is_caught_by_config_check(tmp_path: Path) -> None:
    with emulator() as emu:
        write_project(tmp_path, emu, ["C1"], rules=RULES.replace("{order_number}", "{order_no}", 1))
        proc = storesync(tmp_path, "config", "check")
        assert proc.returncode == 2, explain(proc)
        assert "notifications.rules.order_confirmation.templates.en: unknown placeholder {order_no}" in proc.stderr
        assert "did you mean 'order_number'" in proc.stderr
        notify = storesync(tmp_path, "notify")
        assert notify.returncode == 2 and emu.sends == []


def test_bad_credentials_exit_3_with_a_fix_it_message(tmp_path: Path) -> None:
    with TwilioEmulator(account_sid=ACCOUNT, auth_token="another-token") as emu:
        write_project(tmp_path, emu, ["C1"])
        storesync(tmp_path, "sync", "--json", "--no-progress")
        proc = storesync(tmp_path, "notify")
        assert proc.returncode == 3, explain(proc)
        assert "auth_token" in proc.stderr and TOKEN not in proc.stderr + proc.stdout


# -- exactly once under kill -9 ---------------------------------------------------------------------------------

PHASES = ("before the gateway took it", "after the gateway took it", "just after the answer",
          "after the answer, before the local commit")
CUSTOMERS_FOR_CRASH = ["C1", "C2", "C3", "C4"]


def _hold_store_then_kill(root: Path, kill) -> None:
    """Lock the SQLite store so the answer cannot be committed, kill the waiting client, release the lock."""
    conn = sqlite3.connect(root / "store.db", isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")

    def later() -> None:
        kill()
        conn.execute("ROLLBACK")
        conn.close()
    threading.Timer(0.5, later).start()


def _killer(emu: TwilioEmulator, phase: str, at: int, proc_box: list, root: Path) -> None:
    seen = Counter()

    def kill() -> None:
        os.kill(proc_box[0].pid, signal.SIGKILL)

    def before(form) -> None:
        seen["before"] += 1
        if phase == PHASES[0] and seen["before"] == at:
            kill()
            raise RuntimeError("killed before the message was created")

    def after(message) -> None:
        seen["after"] += 1
        if seen["after"] == at and phase == PHASES[1]:
            kill()
        elif seen["after"] == at and phase == PHASES[2]:
            threading.Timer(0.01, kill).start()
        elif seen["after"] == at and phase == PHASES[3]:
            _hold_store_then_kill(root, kill)
    emu.before_create, emu.after_create = before, after


def _trial(root: Path, database: str, phase: str, at: int, per_key: Counter) -> bool:
    """One crash trial on an already synced project: killed notify, then a full one; True if it was killed."""
    with emulator() as emu:
        write_project(root, emu, CUSTOMERS_FOR_CRASH, database=database)  # same data; this emulator's port
        box: list = []
        _killer(emu, phase, at, box, root)
        env = {k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}
        box.append(subprocess.Popen([sys.executable, "-m", "storesync.cli", "notify"], cwd=root,
                                    env={**env, "TWILIO_AUTH_TOKEN": TOKEN},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        killed = box[0].wait(timeout=120) == -signal.SIGKILL
        emu.before_create = emu.after_create = None
        url = database if database.startswith("postgresql") else f"sqlite:///{root / 'store.db'}"
        in_doubt = rows(url, "SELECT count(*) FROM message WHERE status = 'submitting'")[0][0]
        final = storesync(root, "notify", "--json")
        assert final.returncode == 0, explain(final)
        settled = parse_json(final)["delivery"]
        if phase != PHASES[2]:  # killed between claim and the recorded answer: exactly one message in doubt
            assert in_doubt == 1, (phase, at)
            found = phase != PHASES[0]  # the gateway took it: found, not resent; else sent now
            assert (settled["recovered"], settled["requeued"]) == ((1, 0) if found else (0, 1)), (phase, settled)
        keys = rows(url, 'SELECT idempotency_key, "to", body, status FROM message')
        assert len(keys) == len(CUSTOMERS_FOR_CRASH)
        sent = Counter((m.to, m.body) for m in emu.sends)
        for key, to, body, status in keys:
            per_key[sent[(to, body)]] += 1
            assert sent[(to, body)] == 1, f"{phase}, kill at send {at}: {key} sent {sent[(to, body)]} times"
            assert status in ("queued", "sent", "delivered"), (phase, at, key, status)
        assert len(emu.sends) == len(CUSTOMERS_FOR_CRASH)
    return killed


@pytest.mark.slow
def test_exactly_once_under_kill_9_at_every_step_of_delivery(tmp_path: Path) -> None:
    template = tmp_path / "template"
    with emulator() as emu:
        write_project(template, emu, CUSTOMERS_FOR_CRASH)
        assert storesync(template, "sync", "--json", "--no-progress").returncode == 0
    trials, killed, per_key = 0, 0, Counter()
    for phase in PHASES:
        for at in range(1, len(CUSTOMERS_FOR_CRASH) + 1):
            trial = tmp_path / f"trial-{PHASES.index(phase)}-{at}"
            shutil.copytree(template, trial)
            killed += _trial(trial, "sqlite:///store.db", phase, at, per_key)
            trials += 1
    print(f"\nexactly-once: {trials} trials, {killed} runs killed by SIGKILL, "
          f"{sum(per_key.values())} keys checked; sends per key: {dict(per_key)}")
    assert killed == trials and per_key == Counter({1: trials * len(CUSTOMERS_FOR_CRASH)})


@pytest.mark.slow
@pytest.mark.postgres
def test_exactly_once_under_kill_9_on_postgresql(tmp_path: Path) -> None:
    base = os.environ.get("STORESYNC_TEST_PG_URL")
    if not base:
        pytest.skip("set STORESYNC_TEST_PG_URL to run PostgreSQL tests")
    per_key: Counter = Counter()
    for phase in PHASES[:3]:  # the fourth locks a SQLite file
        with fresh_schema(base) as url:
            root = tmp_path / f"pg-{PHASES.index(phase)}"
            with emulator() as emu:
                write_project(root, emu, CUSTOMERS_FOR_CRASH, database=url)
                assert storesync(root, "sync", "--json", "--no-progress").returncode == 0
            assert _trial(root, url, phase, 2, per_key)
    assert per_key == Counter({1: 3 * len(CUSTOMERS_FOR_CRASH)})
