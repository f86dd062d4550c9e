"""The demo's merchant: one Hong Kong retailer seeded coherently into the four emulators.

Harbour Goods sells tea, snacks, sauces and gifts through a Shopify web shop, three shops with Square tills
(Causeway Bay, Mong Kok, Tsim Sha Tsui) and a Kwai Chung warehouse run in Odoo; customers hear from it by SMS
(Twilio). Everything runs on 127.0.0.1 on ephemeral ports, with no account or credential.

What the seed sets up, so the demo has something to show at each step:

- one catalogue with the same SKUs in all three selling systems, stock on the shop floors (the tills count it)
  and in the warehouse (the ERP counts it), and out-of-date levels in Shopify for the push-back to correct;
- customers who exist in several systems, written differently (a Gmail address with dots and a ``+tag``, a phone
  as ``+852 9123 4567``, ``91234567`` or ``(852) 6123-4567``, ``CHAN Tai Man`` surname first in the ERP), a family
  sharing one mobile and one e-mail address, and walk-in customers entered with the shop's own landline;
- a ceramic teapot with one unit on the Causeway Bay shelf that the web shop and both tills sell in the same
  minute (an oversell); a 2027 mooncake set on pre-order, which the warehouse receives later;
- web orders that the ERP takes over (order forwarding), and till sales.

``size`` adds the emulators' own random history (more customers and orders) on top: ``small`` none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..connectors.erp.emulator import OdooEmulator
from ..connectors.pos.emulator import SquareEmulator
from ..connectors.pos.emulator_data import stamp
from ..connectors.shopify.emulator import ShopifyEmulator
from ..connectors.sms.emulator import TwilioEmulator

__all__ = ["CATALOGUE", "SIZES", "DemoMerchant", "demo_merchant"]

#: the emulators' own credentials: they exist only on 127.0.0.1 for this run, so they are no secret
TOKENS = {"shop": "shpat_demo_emulator", "tills": "sq_demo_emulator", "erp": "odoo_demo_emulator",
          "sms": "twilio_demo_emulator"}
ACCOUNT = "AC" + "d" * 32

#: sku, English title, Chinese title, price HKD, (cwb, mk, tst) shelf counts, warehouse count
CATALOGUE: list[tuple[str, str, str, int, tuple[int, int, int], int]] = [
    ("TEA-JAS-100", "Jasmine Green Tea 100g", "茉莉綠茶", 88, (12, 8, 6), 60),
    ("TEA-PUER-357", "Pu'er Tea Cake 357g", "普洱茶餅", 368, (3, 2, 1), 25),
    ("EGG-ROLL-6", "Egg Roll Gift Box of 6", "蛋卷禮盒", 128, (10, 6, 9), 80),
    ("XO-SAUCE-220", "XO Sauce 220g", "XO醬", 158, (5, 4, 2), 40),
    ("CHILLI-OIL-150", "Chilli Oil 150ml", "辣椒油", 58, (20, 14, 11), 90),
    ("SCARF-JADE", "Silk Scarf, Jade", "絲巾", 390, (2, 1, 0), 6),
    ("TEAPOT-CELADON", "Ceramic Teapot, Celadon", "陶瓷茶壺", 460, (1, 0, 0), 0),
    ("MOON-2027", "Mooncake Set 2027", "月餅禮盒", 298, (0, 0, 0), 0),
]
PREORDER_SKU, OVERSELL_SKU = "MOON-2027", "TEAPOT-CELADON"

#: extra random history per size: (Shopify orders, Square orders, Odoo orders, customers each)
SIZES = {"small": (0, 0, 0, 0), "medium": (400, 400, 60, 200), "large": (4000, 4000, 400, 2000)}


@dataclass(frozen=True)
class Person:
    """One real customer and how each system has them (None: not in that system)."""

    key: str
    shopify: dict[str, str] | None = None
    square: dict[str, Any] | None = None
    odoo: dict[str, Any] | None = None


PEOPLE = [
    Person("chan", shopify={"first_name": "Tai Man", "last_name": "Chan", "email": "taiman.chan@gmail.com",
                            "phone": "+85291234567"},
           square={"given_name": "Tai-man", "family_name": "CHAN", "phone_number": "9123 4567",
                   "email_address": "tai.man.chan+shop@gmail.com", "reference_id": "M-000101"},
           odoo={"name": "CHAN Tai Man", "phone": "+852-9123-4567", "street": "28 Yun Ping Road",
                 "city": "Causeway Bay", "email": "taiman.chan@gmail.com"}),
    Person("wong", shopify={"first_name": "Mei Ling", "last_name": "Wong", "email": "meiling.wong@yahoo.com.hk",
                            "phone": "+85261234567"},
           square={"given_name": "Mei-ling", "family_name": "Wong", "phone_number": "(852) 6123-4567"}),
    Person("lee_ka_ho", square={"given_name": "Ka Ho", "family_name": "Lee", "phone_number": "+852 5123 4567",
                                "email_address": "lee.family@netvigator.com"}),
    Person("lee_ka_yan", shopify={"first_name": "Ka Yan", "last_name": "Lee", "email": "kayan.lee@gmail.com",
                                  "phone": "+85251234567"},
           square={"given_name": "Ka Yan", "family_name": "Lee", "phone_number": "51234567",
                   "email_address": "lee.family@netvigator.com"}),
    Person("lee_wai_man", square={"given_name": "Wai Man", "family_name": "Lee", "phone_number": "5123-4567",
                                  "email_address": "lee.family@netvigator.com"}),
    Person("ho", shopify={"first_name": "Wing Sze", "last_name": "Ho", "email": "wingsze.ho@outlook.com",
                          "phone": "+85298765432"},
           odoo={"name": "HO Wing Sze", "phone": "98765432", "street": "8 Argyle Street", "city": "Mong Kok",
                 "email": "WingSze.Ho@outlook.com"}),
    # walk-in customers the Causeway Bay staff entered with the shop's own landline
    Person("walkin_lau", square={"given_name": "Siu Ming", "family_name": "Lau", "phone_number": "2890 1234"}),
    Person("walkin_ng", square={"given_name": "Chun Kit", "family_name": "Ng", "phone_number": "2890 1234"}),
    Person("walkin_tse", square={"given_name": "Hiu Tung", "family_name": "Tse", "phone_number": "2890 1234"}),
    Person("cheung", shopify={"first_name": "Hoi Lam", "last_name": "Cheung", "email": "hoilam.c@gmail.com",
                              "phone": "+85296543210"}),
    Person("yip", shopify={"first_name": "Kwok Wah", "last_name": "Yip", "email": "kw.yip@hotmail.com",
                           "phone": "+85293332211"},
           square={"given_name": "Kwok Wah", "family_name": "Yip", "phone_number": "9333 2211"}),
]


@dataclass
class DemoMerchant:
    shop: ShopifyEmulator
    pos: SquareEmulator
    erp: OdooEmulator
    sms: TwilioEmulator
    shop_loc: dict[str, int] = field(default_factory=dict)  # canonical location -> Shopify location id
    till_loc: dict[str, str] = field(default_factory=dict)  # canonical location -> Square location id
    wh_location: int = 0
    variations: dict[str, str] = field(default_factory=dict)  # sku -> Square variation id
    square_customers: dict[str, str] = field(default_factory=dict)  # person key -> Square customer id

    def plugins_toml(self, database: str) -> str:
        """The demo's configuration: the four emulators, [inventory], order forwarding and the SMS rules."""
        return _CONFIG.format(
            database=database, shop_url=self.shop.base_url, shop_token=TOKENS["shop"],
            pos_url=self.pos.base_url, pos_token=TOKENS["tills"], erp_url=self.erp.url,
            erp_db=self.erp.database, erp_login=self.erp.login, erp_key=TOKENS["erp"], sms_url=self.sms.base_url,
            account=ACCOUNT, sms_token=TOKENS["sms"], sms_number=self.sms.number, cwb_till=self.till_loc["cwb"],
            mk_till=self.till_loc["mk"], tst_till=self.till_loc["tst"], cwb_shop=self.shop_loc["cwb"],
            wh_shop=self.shop_loc["warehouse"], wh_erp=self.wh_location, preorder=PREORDER_SKU)

    # -- the story, step by step ------------------------------------------------------------------------
    def seed(self) -> None:
        """Catalogue, stock, customers in several systems, web orders, till sales, pre-orders."""
        for sku, title, _zh, price, shelves, warehouse in CATALOGUE:
            self.shop.add_product(sku, title, price=f"{price}.00",
                                  stock={self.shop_loc["cwb"]: shelves[0] + 3,  # out of date: push-back fixes it
                                         self.shop_loc["warehouse"]: warehouse + 5})
            self.variations[sku] = self.pos.add_item(sku, title, price=price * 100, counts={
                self.till_loc["cwb"]: shelves[0], self.till_loc["mk"]: shelves[1], self.till_loc["tst"]: shelves[2]})
            if not self.erp.db.search("product.product", [("default_code", "=", sku)]):  # the seed may have it
                self.erp.add_product(sku, title, price=float(price))
            self.erp.set_on_hand(sku, warehouse)
        for person in PEOPLE:
            if person.square is not None:
                self.square_customers[person.key] = self._square_customer(person.key, person.square)
            if person.odoo is not None:
                self.erp.odoo_call("res.partner", "create", vals_list=[{**person.odoo, "is_company": False,
                                                                        "active": True}])
        who = {p.key: p for p in PEOPLE}
        self.shop.place_order([("TEA-JAS-100", 2), ("EGG-ROLL-6", 1)], customer=who["chan"].shopify)
        self.shop.place_order([("XO-SAUCE-220", 1)], customer=who["wong"].shopify)
        self.shop.place_order([("SCARF-JADE", 1)], customer=who["cheung"].shopify)
        self.pos.till_sale(self.variations["CHILLI-OIL-150"], self.till_loc["mk"], 2,
                           customer_id=self.square_customers["yip"])
        self.pos.till_sale(self.variations["EGG-ROLL-6"], self.till_loc["tst"], 1,
                           customer_id=self.square_customers["lee_ka_ho"])
        for key in ("chan", "lee_ka_yan", "ho"):  # pre-orders of next year's mooncakes
            self.shop.place_order([(PREORDER_SKU, 1)], customer=who[key].shopify)

    def oversell(self) -> None:
        """The same minute: the teapot's one unit sold online and by both Causeway Bay tills."""
        self.shop.place_order([(OVERSELL_SKU, 1)], customer=PEOPLE[5].shopify)
        self.pos.till_sale(self.variations[OVERSELL_SKU], self.till_loc["cwb"], 1,
                           customer_id=self.square_customers["walkin_lau"])
        self.pos.till_sale(self.variations[OVERSELL_SKU], self.till_loc["cwb"], 1,
                           customer_id=self.square_customers["walkin_ng"])

    def receive_preorder_stock(self, quantity: int = 2) -> None:
        """The warehouse receives the first mooncake shipment."""
        self.erp.receive(PREORDER_SKU, quantity)

    def texts(self) -> list[tuple[str, str]]:
        return [(m.to, m.body) for m in self.sms.messages.values() if m.direction.startswith("outbound")]

    def _square_customer(self, key: str, fields: dict[str, Any]) -> str:
        now = stamp(self.pos.store.now_ms())
        record = {"id": f"DEMO{key.upper().replace('_', '')}"[:26], "created_at": now, "updated_at": now,
                  "preferences": {"email_unsubscribed": False}, "creation_source": "DIRECTORY", "version": 1,
                  "segment_ids": [], "group_ids": [], **fields}
        self.pos.store.put_customer(record)
        return record["id"]


@contextmanager
def demo_merchant(size: str = "small", seed: int = 2026) -> Iterator[DemoMerchant]:
    """Start the four emulators on ephemeral ports, seeded with the demo merchant; stop them after."""
    web, till, erp_orders, people = SIZES[size]
    with ExitStack() as stack:
        shop = stack.enter_context(ShopifyEmulator(orders=web, customers=people, products=max(2, people // 20),
                                                   seed=seed, token=TOKENS["shop"]))
        pos = stack.enter_context(SquareEmulator(orders=till, customers=people, items=max(2, people // 20),
                                                 seed=seed, token=TOKENS["tills"]))
        erp = stack.enter_context(OdooEmulator(partners=max(2, people), products=max(2, people // 20),
                                               orders=erp_orders, api_key=TOKENS["erp"], seed_value=seed))
        sms = stack.enter_context(TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKENS["sms"]))
        merchant = DemoMerchant(shop, pos, erp, sms)
        merchant.shop_loc = {"cwb": shop.location_id("Causeway Bay Shop"),
                             "warehouse": shop.location_id("Kwai Chung Warehouse")}
        merchant.till_loc = {"cwb": pos.location_id("Causeway Bay Shop"), "mk": pos.location_id("Mong Kok Shop"),
                             "tst": pos.location_id("Tsim Sha Tsui Shop")}
        merchant.wh_location = erp.location_id("WH/Stock")
        merchant.seed()
        yield merchant


_CONFIG = """\
# The storesync demo: Harbour Goods, a Hong Kong retailer, with its four systems emulated on 127.0.0.1.
# Written by `storesync demo`; the tokens below are the emulators' own (valid only for this run's local servers).

[storesync]
database = "{database}"
default_region = "HK"
timezone = "Asia/Hong_Kong"

[connectors.shop]                         # the Shopify web shop
type = "shopify"
shop = "harbour-goods-hk.myshopify.com"
access_token = "{shop_token}"
base_url = "{shop_url}"

[connectors.tills]                        # Square tills in three shops
type = "square"
access_token = "{pos_token}"
base_url = "{pos_url}"

[connectors.erp]                          # the Odoo ERP runs the Kwai Chung warehouse
type = "odoo"
url = "{erp_url}"
database = "{erp_db}"
login = "{erp_login}"
api_key = "{erp_key}"
forward_orders_from = ["shop"]            # web orders are written into the ERP

[connectors.sms]                          # Twilio
type = "twilio"
base_url = "{sms_url}"
account_sid = "{account}"
auth_token = "{sms_token}"
from_number = "{sms_number}"

[identity]
mode = "strict"

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

[inventory.locations.tst]
name = "Tsim Sha Tsui Shop"
authority = "tills"
sources = {{ tills = "{tst_till}" }}
latitude = 22.2976
longitude = 114.1722

[inventory.locations.warehouse]
name = "Kwai Chung Warehouse"
authority = "erp"
sources = {{ erp = "{wh_erp}", shop = "{wh_shop}" }}
latitude = 22.3633
longitude = 114.1317

[inventory.channels.shop]                 # the web shop sells from Causeway Bay and the warehouse
locations = ["cwb", "warehouse"]

[inventory.allocation]
strategy = "nearest"

[[inventory.preorders]]
sku = "{preorder}"
limit = 5
expected = 2027-08-01
pickup_location = "cwb"

[notifications]
connector = "sms"
settle_after_seconds = 0
rate_per_second = 50

[notifications.rules.sold_out]
event = "oversell_detected"
templates.en = "Sorry {{first_name}}, the {{sku_title}} in order {{order_number}} sold out moments before \
you ordered. We will refund you today. - Harbour Goods"

[notifications.rules.preorder_ready]
event = "preorder_stock_arrived"
templates.en = "Hi {{first_name}}, your pre-order {{order_number}} ({{sku_title}}) has arrived: collect it \
at {{pickup_location}}. - Harbour Goods"
"""
