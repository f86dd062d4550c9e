"""Inventory truth end to end: a web shop, two tills and a warehouse ERP (all emulated), SMS by the Twilio emulator.

Every step is a ``storesync`` command as an operator runs it: ``sync``, ``inventory reconcile [--push]``,
``inventory conflicts``, ``notify``. The emulators are changed through their scenario hooks, as customers and
staff would change the real systems: a web order, a till sale, an ERP receipt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storesync.connectors.erp.emulator import OdooEmulator
from storesync.connectors.pos.emulator import SquareEmulator
from storesync.connectors.shopify.emulator import ShopifyEmulator
from storesync.connectors.sms.emulator import TwilioEmulator

pytestmark = pytest.mark.slow

SECRETS = {"SHOPIFY_TOKEN": "shpat_scenario_token", "SQUARE_TOKEN": "sq_scenario_token",
           "ODOO_API_KEY": "odoo_scenario_key", "TWILIO_AUTH_TOKEN": "twilio_scenario_token"}
ACCOUNT = "AC" + "7" * 32
CUSTOMERS = [{"first_name": "Tai Man", "last_name": "Chan", "phone": "+85291234567", "email": "tm@example.com"},
             {"first_name": "Mei Ling", "last_name": "Wong", "phone": "+85261234567", "email": "ml@example.com"},
             {"first_name": "Ka Ho", "last_name": "Lee", "phone": "+85251234567", "email": "kh@example.com"},
             {"first_name": "Wing Sze", "last_name": "Ho", "phone": "+85298765432", "email": "ws@example.com"}]


@dataclass
class Merchant:
    root: Path
    shop: ShopifyEmulator
    pos: SquareEmulator
    erp: OdooEmulator
    sms: TwilioEmulator
    shop_loc: dict[str, int]  # canonical location -> Shopify location id
    till_loc: dict[str, str]  # canonical location -> Square location id

    def run(self, *args: str, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        env = {**{k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}, **SECRETS}
        proc = subprocess.run([sys.executable, "-m", "storesync.cli", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode in expect, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        for secret in SECRETS.values():
            assert secret not in proc.stdout + proc.stderr
        return proc

    def reconcile(self, *args: str, expect: tuple[int, ...] = (0, 1)) -> dict[str, Any]:
        return json.loads(self.run("inventory", "reconcile", "--json", *args, expect=expect).stdout)

    def sync(self, *connectors: str) -> None:
        self.run("sync", "--no-progress", *connectors)

    def texts(self) -> list[tuple[str, str]]:
        return [(m.to, m.body) for m in self.sms.messages.values() if m.direction.startswith("outbound")]


CONFIG = """
[storesync]
database = "sqlite:///store.db"
timezone = "Asia/Hong_Kong"

{shop}
{pos}
{erp}
{sms}

[inventory]
evidence_hours = 2

[inventory.locations.cwb]
name = "Causeway Bay Shop"
authority = "tills"
sources = {{ tills = "{cwb_till}", shop = "{cwb_shop}" }}
latitude = 22.2803
longitude = 114.1838

[inventory.locations.mk]
name = "Mong Kok Shop"
authority = "tills"
sources = {{ tills = "{mk_till}" }}
latitude = 22.3193
longitude = 114.1694

[inventory.locations.warehouse]
name = "Kwai Chung Warehouse"
authority = "erp"
sources = {{ erp = "{wh_erp}", shop = "{wh_shop}" }}
latitude = 22.3633
longitude = 114.1317

[inventory.channels.shop]
locations = ["cwb", "warehouse"]

[inventory.allocation]
strategy = "nearest"

[[inventory.preorders]]
sku = "MOON-2027"
limit = 3
expected = 2027-08-01
pickup_location = "cwb"

[notifications]
connector = "sms"
settle_after_seconds = 0
rate_per_second = 50

[notifications.rules.sold_out]
event = "oversell_detected"
templates.en = "Sorry {{first_name}}, {{sku_title}} in order {{order_number}} sold out just before you; we will refund you."

[notifications.rules.preorder_ready]
event = "preorder_stock_arrived"
templates.en = "Hi {{first_name}}, your pre-order {{order_number}} ({{sku_title}}) is ready at {{pickup_location}}."
"""


@contextmanager
def merchant(tmp_path: Path) -> Iterator[Merchant]:
    with ExitStack() as stack:
        shop = stack.enter_context(ShopifyEmulator(orders=4, customers=4, products=2, seed=7,
                                                   token=SECRETS["SHOPIFY_TOKEN"]))
        pos = stack.enter_context(SquareEmulator(orders=4, customers=4, items=2, seed=7,
                                                 token=SECRETS["SQUARE_TOKEN"]))
        erp = stack.enter_context(OdooEmulator(partners=4, products=2, orders=2, api_key=SECRETS["ODOO_API_KEY"]))
        sms = stack.enter_context(TwilioEmulator(account_sid=ACCOUNT, auth_token=SECRETS["TWILIO_AUTH_TOKEN"]))
        wh = erp.location_id("WH/Stock")
        shop_loc = {"cwb": shop.location_id("Causeway Bay Shop"), "warehouse": shop.location_id("Kwai Chung Warehouse")}
        till_loc = {"cwb": pos.location_id("Causeway Bay Shop"), "mk": pos.location_id("Mong Kok Shop")}
        m = Merchant(tmp_path, shop, pos, erp, sms, shop_loc, till_loc)
        (tmp_path / "plugins.toml").write_text(CONFIG.format(
            shop=shop.plugins_toml("shop"), pos=pos.plugins_toml("tills"), erp=erp.plugins_toml("erp"),
            sms=sms.plugins_toml("sms"), cwb_till=m.till_loc["cwb"], mk_till=m.till_loc["mk"],
            cwb_shop=m.shop_loc["cwb"], wh_shop=m.shop_loc["warehouse"], wh_erp=wh), encoding="utf-8")
        yield m


def test_the_last_unit_sold_in_the_same_minute_by_the_web_shop_and_two_tills(tmp_path: Path) -> None:
    with merchant(tmp_path) as m:
        variation = m.pos.add_item("VASE-1", "Jade Vase", counts={m.till_loc["cwb"]: 1, m.till_loc["mk"]: 0})
        item = m.shop.add_product("VASE-1", "Jade Vase", stock={m.shop_loc["cwb"]: 1})["inventory_item_id"]
        m.erp.add_product("VASE-1", "Jade Vase")
        m.sync("shop", "tills", "erp")
        first = m.reconcile("--push", "--sku", "VASE-1", expect=(0,))
        assert first["available_to_sell"] == [{"channel": "shop", "sku": "VASE-1", "available": 1}]

        # the same minute: a web order, then both Causeway Bay tills sell the one vase on the shelf
        web = m.shop.place_order([("VASE-1", 1)], customer=CUSTOMERS[1])
        till_a = m.pos.till_sale(variation, m.till_loc["cwb"])
        till_b = m.pos.till_sale(variation, m.till_loc["cwb"])
        assert m.pos.in_stock(variation, m.till_loc["cwb"]) == -1
        m.sync("shop", "tills", "erp")
        report = m.reconcile("--push", "--sku", "VASE-1", expect=(1,))  # the till's shortfall stays open

        (denied,) = report["decisions"]
        assert (denied["order_id"], denied["state"], denied["event"]) == (str(web), "denied", "oversell_detected")
        (conflict,) = [x for x in report["conflicts"] if x["kind"] == "oversell"]
        assert conflict["location"] == "cwb" and conflict["status"] == "open"
        assert [o["order_id"] for o in conflict["orders"]] == [str(web), till_a, till_b]  # in order of time
        verdicts = {o["order_id"]: o["verdict"] for o in conflict["orders"]}
        assert verdicts[str(web)] == "beyond stock" and verdicts[till_a] == "sold here, within stock"
        assert verdicts[till_b] == "sold here, beyond the stock there was"
        assert "recount the shelf" in conflict["resolution"] and "flagged for cancellation" in conflict["resolution"]
        assert m.shop.available(item, m.shop_loc["cwb"]) == 0  # nothing left to sell online

        listed = m.run("inventory", "conflicts", "--open", "--json", expect=(1,))
        assert [x["sku"] for x in json.loads(listed.stdout)] == ["VASE-1"]
        m.run("notify")
        (text,) = m.texts()
        assert text[0] == CUSTOMERS[1]["phone"] and "Sorry Mei Ling, Jade Vase" in text[1]
        m.run("notify")
        assert len(m.texts()) == 1  # told once


def test_preorders_fill_first_come_first_served_when_the_erp_receives_stock(tmp_path: Path) -> None:
    with merchant(tmp_path) as m:
        item = m.shop.add_product("MOON-2027", "Mooncake Set 2027",
                                  stock={m.shop_loc["warehouse"]: 0})["inventory_item_id"]
        m.erp.add_product("MOON-2027", "Mooncake Set 2027")
        m.erp.set_on_hand("MOON-2027", 0)
        m.sync("shop", "tills", "erp")
        opened = m.reconcile("--push", "--sku", "MOON-2027")
        assert {"channel": "shop", "sku": "MOON-2027", "available": 3} in opened["available_to_sell"]
        assert m.shop.available(item, m.shop_loc["warehouse"]) == 3  # the pre-order limit, before any stock
        orders = [m.shop.place_order([("MOON-2027", 1)], customer=c) for c in CUSTOMERS]
        m.sync("shop", "tills", "erp")
        taken = m.reconcile("--push", "--sku", "MOON-2027")
        states = {d["order_id"]: d["state"] for d in taken["decisions"]}
        assert [states[str(o)] for o in orders] == ["preorder", "preorder", "preorder", "denied"]  # limit 3
        assert {"channel": "shop", "sku": "MOON-2027", "available": 0} in taken["available_to_sell"]

        m.erp.receive("MOON-2027", 2)  # the shipment: two sets
        m.sync("erp")
        arrived = m.reconcile("--push", "--sku", "MOON-2027")
        got = [(d["order_id"], d["state"], d["event"]) for d in arrived["decisions"]]
        assert got == [(str(orders[0]), "allocated", "preorder_stock_arrived"),
                       (str(orders[1]), "allocated", "preorder_stock_arrived")]
        m.run("notify")
        texts = m.texts()
        ready = [t for t in texts if "is ready" in t[1]]
        assert [to for to, _ in ready] == [CUSTOMERS[0]["phone"], CUSTOMERS[1]["phone"]]  # in order
        assert "ready at Causeway Bay Shop" in ready[0][1] and "Mooncake Set 2027" in ready[0][1]
        assert any(to == CUSTOMERS[3]["phone"] and "sold out" in body for to, body in texts)

        m.erp.receive("MOON-2027", 1)
        m.sync("erp")
        last = m.reconcile("--push", "--sku", "MOON-2027")
        assert [(d["order_id"], d["state"]) for d in last["decisions"]] == [(str(orders[2]), "allocated")]
        m.run("notify")
        assert [to for to, body in m.texts() if "is ready" in body] == [c["phone"] for c in CUSTOMERS[:3]]


def test_a_push_racing_a_new_sale_counts_the_sale_instead_of_overwriting_it(tmp_path: Path) -> None:
    with merchant(tmp_path) as m:
        item = m.shop.add_product("TEA-9", "Pu'er Cake", stock={m.shop_loc["warehouse"]: 9})["inventory_item_id"]
        m.erp.add_product("TEA-9", "Pu'er Cake")
        m.erp.set_on_hand("TEA-9", 5)
        m.sync("shop", "tills", "erp")
        first = m.reconcile("--push", "--sku", "TEA-9")
        assert len(first["push"]["applied"]) == 1 and m.shop.available(item, m.shop_loc["warehouse"]) == 5

        m.erp.receive("TEA-9", 3)  # 8 in the warehouse now
        m.sync("shop", "tills", "erp")
        m.shop.place_order([("TEA-9", 1)], customer=CUSTOMERS[2])  # sold online after the sync, before the push
        assert m.shop.available(item, m.shop_loc["warehouse"]) == 4
        raced = m.reconcile("--push", "--sku", "TEA-9")
        assert raced["rounds"] == 2 and raced["push"]["conflicts"] == []  # stale once, re-read, then applied
        assert m.shop.available(item, m.shop_loc["warehouse"]) == 7  # 8 on hand less the web sale, not 8

        m.sync("shop")  # Shopify now reports the 7 storesync set: its own echo, not a change
        again = m.reconcile("--push", "--sku", "TEA-9", expect=(0,))
        assert again["push"]["applied"] == [] and again["push"]["unchanged"] >= 1
        assert not [x for x in again["conflicts"] if x["status"] == "open"]
