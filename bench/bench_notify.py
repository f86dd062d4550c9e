"""Messages per second through the outbox into the Twilio emulator, against a hand-written send loop.

    python bench/bench_notify.py [--messages 500] [--repeat 3]

Both sides send the same number of order confirmations to one emulator (no rate limit, no faults) over loopback:

* storesync: ``run_notify`` as ``storesync notify`` runs it, on a fresh SQLite store holding that many new orders
  and their customers: derive events, fan them out to the rules, write the outbox, then per message claim
  (commit), POST, record the SID (commit); ``rate_per_second`` is set out of the way;
* baseline: one ``httpx.Client`` POSTing the same bodies to ``Messages.json`` in a loop: no store, no events, no
  idempotency, no consent checks.

The best of ``--repeat`` runs of each is printed, with the ratio. The difference is the price of sending each
message once and only once (two commits per message) plus the planning.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from storesync.connectors.sms.emulator import TwilioEmulator
from storesync.core.config import load_config
from storesync.core.models import Customer, Order
from storesync.core.notifications import run_notify
from storesync.core.plugins import build_plugin_host
from storesync.core.store import Store
from storesync.core.writer import Item

RULES = '''
[notifications]
connector = "sms"
settle_after_seconds = 0
rate_per_second = 1000000
[notifications.rules.order_confirmation]
event = "order.created"
templates.en = "Hi {first_name}, thanks for your order {order_number} ({currency} {total})."
'''


def phone(i: int) -> str:
    return f"+8529{i:07d}"


def seed(store: Store, n: int) -> None:
    now = datetime.now(UTC)
    customers = [Item(f"C{i}", Customer(external_id=f"C{i}", phone=phone(i), first_name=f"Mei{i}", language="en"),
                      None) for i in range(n)]
    orders = [Item(f"O{i}", Order(external_id=f"O{i}", number=f"#{i}", customer_external_id=f"C{i}", currency="HKD",
                                  total=Decimal("88.00"), created_at=now - timedelta(minutes=1)), None)
              for i in range(n)]
    with store.write() as w:
        w.upsert("till", "customers", "customer", customers)
        w.upsert("till", "orders", "order", orders)


def storesync_run(emu: TwilioEmulator, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plugins.toml"
        path.write_text(f'[storesync]\ndatabase = "sqlite:///{tmp}/store.db"\n\n{emu.plugins_toml("sms")}\n{RULES}',
                        encoding="utf-8")
        os.environ["TWILIO_AUTH_TOKEN"] = emu.auth_token
        host = build_plugin_host(load_config(path))
        store = Store(f"sqlite:///{tmp}/store.db")
        seed(store, n)
        start = time.perf_counter()
        report = run_notify(host, store)
        seconds = time.perf_counter() - start
        store.close()
    assert report.delivery.sent == n, report
    return seconds


def baseline_run(emu: TwilioEmulator, n: int) -> float:
    url = f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}/Messages.json"
    start = time.perf_counter()
    with httpx.Client(auth=(emu.account_sid, emu.auth_token)) as client:
        for i in range(n):
            data = {"To": phone(i), "From": emu.number, "Body": f"Hi Mei{i}, thanks for your order #{i} (HKD 88.00)."}
            client.post(url, data=data).raise_for_status()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    best = {"baseline": float("inf"), "storesync": float("inf")}
    for _ in range(args.repeat):
        for name, run in (("baseline", baseline_run), ("storesync", storesync_run)):
            with TwilioEmulator(delivery_seconds=3600) as emu:
                best[name] = min(best[name], run(emu, args.messages))
    for name, seconds in best.items():
        print(f"{name:10s} {args.messages} messages in {seconds:.2f}s = {args.messages / seconds:,.0f} messages/s")
    print(f"storesync / baseline time: {best['storesync'] / best['baseline']:.2f}x")


if __name__ == "__main__":
    main()
