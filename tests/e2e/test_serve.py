"""storesync serve as a process: a web sale reaches the tills' stock through the webhook server, and a server
killed with SIGKILL between receipt and processing loses nothing.

The emulators deliver webhooks as the providers do (signed, after the change, retried). The server runs as
``python -m storesync.cli serve``; everything else is a ``storesync`` command or an emulator scenario hook.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from storesync.connectors.erp.emulator import OdooEmulator
from storesync.connectors.pos.emulator import SquareEmulator
from storesync.connectors.shopify.emulator import Faults, ShopifyEmulator
from storesync.connectors.sms.emulator import TwilioEmulator

from e2e_support import REPO  # noqa: F401  (puts bench/ on sys.path)
from test_notify import ACCOUNT as TWILIO_ACCOUNT  # the SMS project of the notify tests
from test_notify import TOKEN as TWILIO_TOKEN
from test_notify import write_project as notify_project
from webhook_scenario import free_port, run_env, warehouse  # bench/webhook_scenario.py

pytestmark = pytest.mark.slow

SQUARE_KEY = "sq_serve_signature_key"
SECRETS = {"SHOPIFY_TOKEN": "shpat_serve_token", "SQUARE_TOKEN": "sq_serve_token", "ODOO_API_KEY": "odoo_serve_key",
           "SHOPIFY_WEBHOOK_SECRET": "shpss_serve_webhook_secret", "SQUARE_WEBHOOK_KEY": SQUARE_KEY,
           "TWILIO_AUTH_TOKEN": TWILIO_TOKEN}


def env() -> dict[str, str]:
    return run_env(SECRETS)


def run(root: Path, *args: str, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "storesync.cli", *args], cwd=root, env=env(), capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode in expect, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def serving(root: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """``storesync serve`` on ``port`` until healthy; stopped with SIGTERM (or already killed) at the end."""
    log = open(root / f"serve-{port}-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "storesync.cli", "serve", "--port", str(port)], cwd=root,
                            env=env(), stdout=log, stderr=subprocess.STDOUT, text=True)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}:\n{Path(log.name).read_text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 30, "storesync serve to answer /healthz")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        log.close()
        text = Path(log.name).read_text()
        for secret in (*SECRETS.values(), SQUARE_KEY):
            assert secret not in text


def queue_states(root: Path) -> dict[str, str]:
    with sqlite3.connect(root / "store.db") as db:
        return {f"{cid} {topic}": state for cid, topic, state in db.execute(
            "SELECT connector_id, topic, state FROM webhook_delivery ORDER BY id")}


def stored_orders(root: Path, connector_id: str) -> set[str]:
    with sqlite3.connect(root / "store.db") as db:
        return {r[0] for r in db.execute("SELECT external_id FROM orders WHERE connector_id = ?", (connector_id,))}


def test_a_web_sale_reaches_the_tills_stock_through_the_webhook_server(tmp_path: Path) -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/webhooks"
    with ExitStack() as stack:
        shop = stack.enter_context(ShopifyEmulator(orders=2, customers=2, products=2, seed=5,
                                                   token=SECRETS["SHOPIFY_TOKEN"],
                                                   webhook_secret=SECRETS["SHOPIFY_WEBHOOK_SECRET"]))
        pos = stack.enter_context(SquareEmulator(orders=2, customers=2, items=2, seed=5, token=SECRETS["SQUARE_TOKEN"],
                                                 webhook_url=f"{hook}/tills", signature_key=SQUARE_KEY))
        erp = stack.enter_context(OdooEmulator(partners=2, products=2, orders=1, api_key=SECRETS["ODOO_API_KEY"]))
        w = warehouse(tmp_path, shop, pos, erp, "LAMP-1", "Paper Lamp", on_hand=5)
        variation, item, wh_shop, wh_till = w.variation, w.item, w.wh_shop, w.wh_till
        pos.webhook_url = None  # no server yet: the first push's own count events are not delivered
        run(tmp_path, "sync", "--no-progress", "shop", "tills", "erp")
        run(tmp_path, "inventory", "reconcile", "--push", "--sku", "LAMP-1", expect=(0, 1))
        assert (pos.in_stock(variation, wh_till), shop.available(item, wh_shop)) == (5, 5)
        pos.webhook_url = f"{hook}/tills"

        with serving(tmp_path, port) as server:
            registered = json.loads(run(tmp_path, "webhooks", "register", "shop", "--url", f"{hook}/shop",
                                        "--json").stdout)
            assert {r["topic"]: r["status"] for r in registered}["orders/create"] == "created"
            again = json.loads(run(tmp_path, "webhooks", "register", "shop", "--url", f"{hook}/shop",
                                   "--json").stdout)
            assert {r["status"] for r in again} == {"exists"}  # a second run subscribes nothing twice

            started = time.monotonic()
            order = shop.place_order([("LAMP-1", 1)], location_id=wh_shop)
            wait_for(lambda: pos.in_stock(variation, wh_till) == 4, 20, "the till location's IN_STOCK to drop")
            elapsed = time.monotonic() - started
            assert str(order) in stored_orders(tmp_path, "shop")
            assert shop.available(item, wh_shop) == 4
            assert shop.drain_webhooks() and all(d.ok for d in shop.deliveries)
            wait_for(lambda: "queued" not in queue_states(tmp_path).values(), 20, "the queue to empty")
            states = queue_states(tmp_path)
            assert states["shop orders/create"] == "applied"
            # the push's own echo (Square's count event) may still arrive: wait until nothing is queued
            metrics = wait_for(lambda: (m := httpx.get(f"http://127.0.0.1:{port}/metrics?format=json").json())[
                "queue_depth"] == 0 and m, 20, "an empty queue")
            assert metrics["applied"] >= 2 and metrics["rejected"] == 0 and metrics["failed"] == 0
            server.send_signal(signal.SIGTERM)
            assert server.wait(30) == 0
    print(f"web sale to till stock through storesync serve: {elapsed:.2f}s")


def test_a_server_killed_between_receipt_and_processing_applies_the_delivery_after_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/tills"
    # every API call of the Square emulator hangs: the worker is stuck re-reading the order the event names
    slow = Faults(slow_rate=1.0, slow_seconds=20)
    with SquareEmulator(orders=2, customers=2, items=2, seed=9, token=SECRETS["SQUARE_TOKEN"], webhook_url=url,
                        signature_key=SQUARE_KEY, faults=slow) as pos:
        (tmp_path / "plugins.toml").write_text(
            f'[storesync]\ndatabase = "sqlite:///store.db"\n\n{pos.plugins_toml("tills")}', encoding="utf-8")
        pos.webhook_url = None  # no server yet
        variation = pos.add_item("KITE-1", "Dragon Kite", counts={pos.store.location_ids[0]: 3})
        pos.webhook_url = url
        with serving(tmp_path, port) as server:
            sale = pos.till_sale(variation, pos.store.location_ids[0])
            assert pos.drain_webhooks() and pos.deliveries[-1].ok  # answered 200: Square will not send it again
            wait_for(lambda: pos.requests["/v2/orders/batch-retrieve"] >= 1, 20, "the worker to call Square")
            assert queue_states(tmp_path)["tills order.created"] == "queued"
            server.kill()  # SIGKILL: no shutdown handler runs
            assert server.wait(10) == -signal.SIGKILL
        assert queue_states(tmp_path)["tills order.created"] == "queued"
        assert sale not in stored_orders(tmp_path, "tills")

        pos.faults = Faults()  # Square answers again
        with serving(tmp_path, port):
            wait_for(lambda: queue_states(tmp_path).get("tills order.created") == "applied", 30,
                     "the queued delivery to be applied after the restart")
            assert sale in stored_orders(tmp_path, "tills")
        assert len([k for k in queue_states(tmp_path) if k == "tills order.created"]) == 1


def test_serve_exits_2_with_a_clear_message_for_a_port_in_use_or_nothing_to_receive(tmp_path: Path) -> None:
    (tmp_path / "plugins.toml").write_text(
        '[storesync]\ndatabase = "sqlite:///store.db"\n\n[connectors.shop]\ntype = "shopify"\n'
        'shop = "a.myshopify.com"\naccess_token = "${SHOPIFY_TOKEN}"\n', encoding="utf-8")
    nothing = run(tmp_path, "serve", "--port", "0", expect=(2,))
    assert "connectors.shop" in nothing.stderr and "webhook_secret" in nothing.stderr

    (tmp_path / "plugins.toml").write_text((tmp_path / "plugins.toml").read_text()
                                           + 'webhook_secret = "${SHOPIFY_WEBHOOK_SECRET}"\n', encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = run(tmp_path, "serve", "--port", str(taken.getsockname()[1]), expect=(2,))
    assert "cannot listen there" in busy.stderr


def test_twilio_status_callbacks_reach_the_outbox_through_the_server(tmp_path: Path) -> None:
    port = free_port()
    callback = f"http://127.0.0.1:{port}/webhooks/sms"
    with TwilioEmulator(account_sid=TWILIO_ACCOUNT, auth_token=SECRETS["TWILIO_AUTH_TOKEN"], delivery_seconds=0.3,
                        undeliverable=["+85261234567"]) as sms:
        notify_project(tmp_path, sms, ["C1", "C2"])  # a files till with two new orders, SMS rules
        config = tmp_path / "plugins.toml"
        config.write_text(config.read_text().replace('type = "twilio"\n', f'type = "twilio"\nstatus_callback = '
                                                                            f'"{callback}"\n'), encoding="utf-8")
        with serving(tmp_path, port):
            run(tmp_path, "sync", "--no-progress")
            run(tmp_path, "notify")  # sends two texts with StatusCallback; no second notify run reads them back

            def settled() -> dict[str, str] | None:
                with sqlite3.connect(tmp_path / "store.db") as db:
                    found = dict(db.execute('SELECT "to", status FROM message').fetchall())
                return found if found and set(found.values()) <= {"delivered", "undelivered"} else None

            final = wait_for(settled, 20, "the callbacks to settle both messages")
        assert final == {"+85291234567": "delivered", "+85261234567": "undelivered"}
        assert all(m.callbacks == ["sent", m.status] for m in sms.sends)  # each posted once, answered 2xx
    with sqlite3.connect(tmp_path / "store.db") as db:
        rows = db.execute("SELECT topic, state FROM webhook_delivery").fetchall()
    assert sorted(rows) == [("message.status", "applied")] * 4  # sent and final, for each of the two texts
