"""Seed data and in-memory store for the Shopify emulator (see ``emulator``).

Records are kept as orjson bytes (the form they are served in), so 100,000 orders cost their JSON size and a page is
a ``b",".join`` of slices. Reading ``store.orders[id]`` decodes a fresh dict; change records through
``Store.touch``/``Store.set_available`` (or assign a whole dict) so the bytes, filter metadata and clock stay in step.

The generator is deterministic for a given seed: a Hong Kong shop with bilingual customer names, +852 phones,
district addresses, HKD prices, three shops and a Kwai Chung warehouse. Timestamps carry the +08:00 offset and are
anchored at a fixed date (not the wall clock) so the same seed gives the same bytes on any day.
"""

from __future__ import annotations

import bisect
import calendar
import random
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

HKT = timezone(timedelta(hours=8))
ANCHOR = calendar.timegm((2025, 6, 30, 15, 59, 59))  # 2025-06-30T23:59:59+08:00: the seed data's "now"
RESOURCES = ("customers", "products", "variants", "locations", "inventory_levels", "orders")
SHOP_ID = 68_130_455_712


def ts(epoch: float) -> str:
    """Shopify's REST timestamp form in the shop's zone, e.g. ``2025-06-30T23:59:59+08:00``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(int(epoch) + 28_800))


def parse_ts(text: str) -> float:
    """Epoch seconds of an ISO-8601 timestamp; one without an offset is taken as shop time (HKT), like Shopify."""
    parsed = datetime.fromisoformat(text.strip().replace(" ", "T", 1) if "T" not in text else text.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=HKT)
    return parsed.timestamp()


def dumps(value: Any) -> bytes:
    """``orjson.dumps`` trimmed to size: orjson leaves >= 4 KiB of capacity on every result, which adds up when kept."""
    return bytes(memoryview(orjson.dumps(value)))


def gid(kind: str, key: int) -> str:
    return f"gid://shopify/{kind}/{key}"


def level_gid(item: int, location: int) -> str:
    return f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


_MONEY_SETS: dict[str, dict] = {}


def money_set(amount: str) -> dict:
    """``{shop_money, presentment_money}`` in HKD; shared read-only objects (they are only ever serialised)."""
    found = _MONEY_SETS.get(amount)
    if found is None:
        one = {"amount": amount, "currency_code": "HKD"}
        found = _MONEY_SETS[amount] = {"shop_money": one, "presentment_money": one}
    return found


class RecordTable(MutableMapping):
    """One resource: key -> serialised record, a sorted key list for id-ordered paging, and filter metadata.

    ``meta[key]`` is ``(created_epoch, updated_epoch, *extra)`` as computed by ``meta_fn`` from the record.
    """

    def __init__(self, name: str, meta_fn: Callable[[dict], tuple]) -> None:
        self.name, self.meta_fn = name, meta_fn
        self.raw: dict[Any, bytes] = {}
        self.meta: dict[Any, tuple] = {}
        self.keys: list = []

    def __getitem__(self, key: Any) -> dict:
        return orjson.loads(self.raw[key])

    def __setitem__(self, key: Any, record: dict) -> None:
        if key not in self.raw:
            if self.keys and key < self.keys[-1]:
                bisect.insort(self.keys, key)
            else:
                self.keys.append(key)
        self.raw[key] = dumps(record)
        self.meta[key] = self.meta_fn(record)

    def __delitem__(self, key: Any) -> None:
        del self.raw[key], self.meta[key]
        self.keys.pop(bisect.bisect_left(self.keys, key))

    def __iter__(self) -> Iterator:
        return iter(list(self.keys))

    def __len__(self) -> int:
        return len(self.raw)

    def __contains__(self, key: object) -> bool:
        return key in self.raw


def _dates_meta(record: dict) -> tuple:
    return (int(parse_ts(record["created_at"])), int(parse_ts(record["updated_at"])))


def _level_meta(record: dict) -> tuple:
    epoch = int(parse_ts(record["updated_at"]))
    return (epoch, epoch)


def _order_meta(record: dict) -> tuple:
    return (*_dates_meta(record), record["closed_at"] is not None, record["cancelled_at"] is not None,
            record["financial_status"], record["fulfillment_status"])


class Store:
    """Everything the emulator serves. Guard multi-step changes with ``store.lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.shop: dict = {}
        self.customers = RecordTable("customers", _dates_meta)
        self.products = RecordTable("products", _dates_meta)
        self.variants = RecordTable("variants", _dates_meta)
        self.locations = RecordTable("locations", _dates_meta)
        self.inventory_levels = RecordTable("inventory_levels", _level_meta)  # key (inventory_item_id, location_id)
        self.orders = RecordTable("orders", _order_meta)
        self.item_variant: dict[int, int] = {}  # inventory_item_id -> variant id
        self.clock = ANCHOR

    def table(self, name: str) -> RecordTable:
        if name not in RESOURCES:
            raise KeyError(f"unknown resource {name!r}; one of {', '.join(RESOURCES)}")
        return getattr(self, name)

    def tick(self) -> int:
        """A new modification time: now, but always strictly later than the previous one."""
        with self.lock:
            self.clock = max(int(time.time()), self.clock + 1)
            return self.clock

    def touch(self, name: str, key: Any, **changes: Any) -> str:
        """Apply ``changes`` to a record and move its ``updated_at`` to a fresh ``tick()``; returns the new stamp."""
        with self.lock:
            table = self.table(name)
            if name == "inventory_levels":
                key = tuple(key)
            record = table[key]
            record.update(changes)
            record["updated_at"] = stamp = ts(self.tick())
            table[key] = record
            if name == "variants":
                self._sync_variant(record, bump_product=stamp)
            return stamp

    def set_available(self, item: int, location: int, available: int) -> dict:
        """Set a level's ``available`` (bumping its ``updated_at``) and the variant's aggregate quantity."""
        with self.lock:
            key = (item, location)
            level = self.inventory_levels[key]
            level["available"] = int(available)
            level["updated_at"] = ts(self.tick())
            self.inventory_levels[key] = level
            variant_id = self.item_variant.get(item)
            if variant_id is not None:
                variant = self.variants[variant_id]
                total = sum(orjson.loads(self.inventory_levels.raw[(item, loc)])["available"]
                            for loc in self.locations.keys if (item, loc) in self.inventory_levels)
                variant["old_inventory_quantity"] = variant["inventory_quantity"]
                variant["inventory_quantity"] = total
                self.variants[variant_id] = variant
                self._sync_variant(variant)
            return level

    def _sync_variant(self, variant: dict, bump_product: str | None = None) -> None:
        product = self.products[variant["product_id"]]
        product["variants"] = [variant if v["id"] == variant["id"] else v for v in product["variants"]]
        if bump_product:
            product["updated_at"] = bump_product
        self.products[product["id"]] = product


# --------------------------------------------------------------------------------------------------- seed tables
SURNAMES = [("Chan", "陳"), ("Wong", "黃"), ("Lee", "李"), ("Cheung", "張"), ("Lau", "劉"), ("Ho", "何"), ("Ng", "吳"),
            ("Leung", "梁"), ("Lam", "林"), ("Tang", "鄧"), ("Yip", "葉"), ("Tsang", "曾"), ("Kwok", "郭"),
            ("Chow", "周"), ("Mak", "麥"), ("Fung", "馮"), ("Lo", "盧"), ("Tse", "謝"), ("Yeung", "楊"), ("Choi", "蔡")]
GIVEN = [("Tai Man", "大文"), ("Siu Ming", "小明"), ("Ka Yan", "嘉欣"), ("Chi Keung", "志強"), ("Mei Ling", "美玲"),
         ("Ka Ho", "家豪"), ("Wing Sze", "詠詩"), ("Chun Kit", "俊傑"), ("Wai Ming", "偉明"), ("Suk Yee", "淑儀"),
         ("Tsz Kin", "子健"), ("Hiu Tung", "曉彤"), ("Ho Yin", "浩然"), ("Hoi Lam", "凱琳"), ("Kwok Wah", "國華"),
         ("Wai Man", "慧敏")]
ENGLISH = ["Peter", "Mary", "Jason", "Karen", "Kelvin", "Winnie", "Eric", "Cindy", "Alan", "Joyce", "Ivan", "Fiona"]
# (district, region, province code, latitude, longitude, streets, estates/buildings)
DISTRICTS = [
    ("Causeway Bay", "Hong Kong Island", "HK", 22.2803, 114.1849, ["Hennessy Road", "Yee Wo Street", "Percival Street"],
     ["Lee Garden Mansion", "Causeway Centre"]),
    ("Wan Chai", "Hong Kong Island", "HK", 22.2776, 114.1722, ["Lockhart Road", "Johnston Road"], ["Harbour View Mansion"]),
    ("North Point", "Hong Kong Island", "HK", 22.2912, 114.2003, ["King's Road", "Java Road"], ["City Garden"]),
    ("Quarry Bay", "Hong Kong Island", "HK", 22.2850, 114.2130, ["Taikoo Shing Road"], ["Taikoo Shing, Block 12"]),
    ("Mong Kok", "Kowloon", "KL", 22.3193, 114.1694, ["Nathan Road", "Sai Yeung Choi Street South", "Argyle Street"],
     ["Sino Centre", "Wing Lung Mansion"]),
    ("Tsim Sha Tsui", "Kowloon", "KL", 22.2976, 114.1722, ["Canton Road", "Granville Road", "Kimberley Road"],
     ["Chungking Mansions", "Mirador Mansion"]),
    ("Sham Shui Po", "Kowloon", "KL", 22.3303, 114.1622, ["Cheung Sha Wan Road", "Apliu Street"], ["Golden Plaza"]),
    ("Kwun Tong", "Kowloon", "KL", 22.3121, 114.2257, ["Hoi Yuen Road", "How Ming Street"], ["Laguna City, Block 8"]),
    ("Sha Tin", "New Territories", "NT", 22.3817, 114.1877, ["Sha Tin Centre Street"], ["City One Shatin, Block 20"]),
    ("Tsuen Wan", "New Territories", "NT", 22.3711, 114.1136, ["Sha Tsui Road", "Castle Peak Road"], ["Waldorf Garden"]),
    ("Tseung Kwan O", "New Territories", "NT", 22.3076, 114.2601, ["Tong Ming Street"], ["Metro Town, Tower 2"]),
    ("Kwai Chung", "New Territories", "NT", 22.3633, 114.1317, ["Kwai Fung Crescent", "Tai Lin Pai Road"],
     ["Kwai Chung Estate, Block 5"]),
]
LOCATIONS = [  # name, address1, address2, district, region, code, phone
    ("Causeway Bay Shop", "Shop G12, Lee Garden Two", "28 Yun Ping Road", "Causeway Bay", "Hong Kong Island", "HK",
     "+85228901234"),
    ("Mong Kok Shop", "Shop 215, 2/F, Langham Place", "8 Argyle Street", "Mong Kok", "Kowloon", "KL", "+85223901234"),
    ("Kwai Chung Warehouse", "Unit 1203, 12/F, Kwai Chung Centre", "100 Kwai Fung Crescent", "Kwai Chung",
     "New Territories", "NT", "+85224801234"),
    ("Tsim Sha Tsui Shop", "Shop 3, G/F, Hankow Centre", "5-15 Hankow Road", "Tsim Sha Tsui", "Kowloon", "KL",
     "+85223671234"),
    ("Sha Tin Shop", "Shop 1A, L1, New Town Plaza", "18 Sha Tin Centre Street", "Sha Tin", "New Territories", "NT",
     "+85226901234"),
]
CATALOGUE = [  # english, chinese, product type, vendor, base price (HKD), option name, option values
    ("Jasmine Green Tea", "茉莉綠茶", "Tea", "Lam Kee Tea House", 88, "Weight", ["100g", "250g", "500g"]),
    ("Pu'er Tea Cake", "普洱茶餅", "Tea", "Lam Kee Tea House", 368, "Weight", ["200g", "357g"]),
    ("Egg Roll Gift Box", "蛋卷禮盒", "Snacks", "Harbour Bakery", 128, "Pack", ["Single", "Twin Pack", "Box of 6"]),
    ("Almond Cookies", "杏仁餅", "Snacks", "Harbour Bakery", 68, "Pack", ["Single", "Twin Pack", "Box of 6"]),
    ("XO Sauce", "XO醬", "Pantry", "Sam Wo Foods", 158, "Size", ["80g", "220g"]),
    ("Chilli Oil", "辣椒油", "Pantry", "Sam Wo Foods", 58, "Size", ["150ml", "300ml"]),
    ("Mooncake Set", "月餅禮盒", "Seasonal", "Harbour Bakery", 298, "Flavour", ["Lotus Seed", "Custard", "Red Bean"]),
    ("Silk Scarf", "絲巾", "Accessories", "Jade Lane", 390, "Colour", ["Red", "Jade", "Black", "Gold", "Ivory"]),
    ("Canvas Tote Bag", "帆布袋", "Accessories", "Jade Lane", 150, "Colour", ["Natural", "Black", "Red"]),
    ("Cotton T-Shirt", "棉質T恤", "Apparel", "Kowloon Cotton", 199, "Size", ["S", "M", "L", "XL", "XXL"]),
    ("Cheongsam Dress", "旗袍", "Apparel", "Jade Lane", 1280, "Size", ["XS", "S", "M", "L", "XL"]),
    ("Ceramic Teapot", "陶瓷茶壺", "Homeware", "Yuet Tung China Works", 460, "Colour", ["White", "Celadon", "Blue"]),
    ("Bamboo Steamer", "竹蒸籠", "Homeware", "Sheung Wan Bamboo", 120, "Size", ["6 inch", "8 inch", "10 inch"]),
    ("Star Ferry Model", "天星小輪模型", "Souvenirs", "Victoria Harbour Gifts", 680, "Scale", ["1:200", "1:100"]),
    ("Red Minibus Keychain", "紅van匙扣", "Souvenirs", "Victoria Harbour Gifts", 45, "Colour", ["Red", "Green"]),
    ("Herbal Balm", "草本膏", "Health", "Tin Hau Herbal", 35, "Size", ["10g", "25g"]),
]
SERIES = ["Classic", "Deluxe", "Mini", "Limited Edition", "Family Pack", "Gift Set", "Heritage", "Signature"]
EMAIL_DOMAINS = ["gmail.com", "yahoo.com.hk", "hotmail.com", "netvigator.com", "outlook.com"]
TAGS = ["", "", "", "VIP", "會員", "Wholesale", "VIP, 會員", "newsletter"]
FINANCIAL = (["paid"] * 15 + ["pending", "authorized", "partially_paid", "partially_refunded", "refunded"])
CANCEL_REASONS = ["customer", "fraud", "inventory", "declined", "other"]
COURIERS = [("SF Express", "https://htm.sf-express.com/hk/en/dynamic_function/waybill/#search/bill-number/"),
            ("Hongkong Post", "https://www.hongkongpost.hk/en/mail_tracking/index.html?trackingNo=")]


def build_shop(domain: str, name: str, primary_location: int | None) -> dict:
    created = ts(ANCHOR - 900 * 86400)
    return {
        "id": SHOP_ID, "name": name, "email": "hello@harbourgoods.hk", "domain": domain,
        "province": "Hong Kong Island", "country": "HK", "address1": "28 Yun Ping Road", "zip": "",
        "city": "Causeway Bay", "source": None, "phone": "+85228901234", "latitude": 22.2803, "longitude": 114.1849,
        "primary_locale": "zh-TW", "address2": "", "created_at": created, "updated_at": created,
        "country_code": "HK", "country_name": "Hong Kong SAR", "currency": "HKD", "customer_email": "hello@harbourgoods.hk",
        "timezone": "(GMT+08:00) Asia/Hong_Kong", "iana_timezone": "Asia/Hong_Kong", "shop_owner": "Chan Tai Man 陳大文",
        "money_format": "${{amount}}", "money_with_currency_format": "HK${{amount}} HKD", "weight_unit": "kg",
        "province_code": "HK", "taxes_included": True, "auto_configure_tax_inclusivity": None, "tax_shipping": None,
        "county_taxes": True, "plan_display_name": "Basic", "plan_name": "basic", "has_discounts": True,
        "has_gift_cards": False, "myshopify_domain": domain, "google_apps_domain": None,
        "google_apps_login_enabled": None, "money_in_emails_format": "${{amount}}",
        "money_with_currency_in_emails_format": "HK${{amount}} HKD", "eligible_for_payments": True,
        "requires_extra_payments_agreement": False, "password_enabled": False, "has_storefront": True,
        "finances": True, "primary_location_id": primary_location, "checkout_api_supported": True,
        "multi_location_enabled": True, "setup_required": False, "pre_launch_enabled": False,
        "enabled_presentment_currencies": ["HKD"], "transactional_sms_disabled": False,
        "marketing_sms_consent_enabled_at_checkout": False,
    }


# ------------------------------------------------------------------------------------------------------ generator
class _Ids:
    """Ascending Shopify-sized ids with small random gaps (so since_id and ids filters see non-contiguous values)."""

    def __init__(self, rng: random.Random, start: int) -> None:
        self.rng, self.value = rng, start

    def __call__(self) -> int:
        self.value += self.rng.randint(1, 97)
        return self.value


def _ean13(number: int) -> str:
    digits = f"489{number:09d}"  # 489: GS1 Hong Kong
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return digits + str(check)


def _address(rng: random.Random, address_id: int, customer_id: int, first: str, last: str, phone: str | None,
             district: tuple) -> dict:
    name, region, code, *_ = district
    return {
        "id": address_id, "customer_id": customer_id, "first_name": first, "last_name": last, "company": None,
        "address1": f"Flat {rng.choice('ABCDEFGH')}, {rng.randint(2, 45)}/F, {rng.choice(district[6])}",
        "address2": f"{rng.randint(1, 500)} {rng.choice(district[5])}", "city": name, "province": region,
        "country": "Hong Kong", "zip": "", "phone": phone, "name": f"{first} {last}", "province_code": code,
        "country_code": "HK", "country_name": "Hong Kong", "default": True,
    }


def _consent(rng: random.Random, stamp: str, sms: bool) -> dict:
    state = rng.choice(["subscribed", "not_subscribed", "not_subscribed", "unsubscribed"])
    consent = {"state": state, "opt_in_level": "single_opt_in" if state != "not_subscribed" else None,
               "consent_updated_at": stamp if state != "not_subscribed" else None}
    if sms:
        consent["consent_collected_from"] = rng.choice(["SHOPIFY", "OTHER"])
    return consent


def _customers(rng: random.Random, count: int, start: int) -> list[dict]:
    next_id, next_addr = _Ids(rng, 7_312_000_000_000), _Ids(rng, 9_105_000_000_000)
    span = max(ANCHOR - 86400 - start, 1)
    out = []
    for i in range(count):
        cid = next_id()
        (sur_en, sur_zh), (giv_en, giv_zh) = rng.choice(SURNAMES), rng.choice(GIVEN)
        style = rng.random()
        if style < 0.25:
            first, last = giv_zh, sur_zh  # 大文 陳
        elif style < 0.45:
            first, last = f"{rng.choice(ENGLISH)} {giv_en}", sur_en  # Peter Tai Man, Chan
        else:
            first, last = giv_en, sur_en  # Tai Man, Chan
        phone = None if rng.random() < 0.08 else f"+852{rng.choice('569')}{rng.randrange(10_000_000):07d}"
        email = None if rng.random() < 0.05 else \
            f"{giv_en.replace(' ', '').lower()}.{sur_en.lower()}{i}@{rng.choice(EMAIL_DOMAINS)}"
        created = start + i * span // max(count, 1) + rng.randrange(max(span // max(count, 1), 1))
        updated = min(created + rng.randrange(90 * 86400), ANCHOR)
        district = rng.choice(DISTRICTS)
        addresses = [_address(rng, next_addr(), cid, first, last, phone, district)]
        if rng.random() < 0.2:
            second = _address(rng, next_addr(), cid, first, last, phone, rng.choice(DISTRICTS))
            second["default"] = False
            addresses.append(second)
        created_s, updated_s = ts(created), ts(updated)
        out.append({
            "id": cid, "email": email, "created_at": created_s, "updated_at": updated_s, "first_name": first,
            "last_name": last, "orders_count": 0, "state": rng.choice(["enabled", "disabled", "disabled", "invited"]),
            "total_spent": "0.00", "last_order_id": None, "note": f"{sur_zh}{giv_zh}" if style >= 0.25 else None,
            "verified_email": email is not None, "multipass_identifier": None, "tax_exempt": False,
            "tags": rng.choice(TAGS), "last_order_name": None, "currency": "HKD", "phone": phone,
            "addresses": addresses, "tax_exemptions": [],
            "email_marketing_consent": _consent(rng, created_s, False) if email else None,
            "sms_marketing_consent": _consent(rng, created_s, True) if phone else None,
            "admin_graphql_api_id": gid("Customer", cid), "default_address": addresses[0],
            "_district": district, "_created": created,
        })
    return out


def _catalogue(rng: random.Random, count: int, locations: list[dict], store: Store) -> list[tuple]:
    """Products and variants into ``store``; returns one row per variant for the order generator."""
    next_pid, next_vid, next_item = (_Ids(rng, 8_104_000_000_000), _Ids(rng, 44_210_000_000_000),
                                     _Ids(rng, 46_305_000_000_000))
    next_misc = _Ids(rng, 36_020_000_000_000)
    rows, variant_no = [], 0
    for p in range(count):
        en, zh, ptype, vendor, base, option, values = CATALOGUE[p % len(CATALOGUE)]
        series = "" if p < len(CATALOGUE) else f" {SERIES[(p // len(CATALOGUE)) % len(SERIES)]} {p // len(CATALOGUE)}"
        title = f"{en}{series} {zh}"
        pid = next_pid()
        created = ANCHOR - 800 * 86400 + p * 3600
        created_s, updated_s = ts(created), ts(min(created + rng.randrange(200 * 86400), ANCHOR))
        picked = values[:rng.randint(1, min(5, len(values)))]
        single = len(picked) == 1 and rng.random() < 0.5
        variants = []
        for pos, value in enumerate(picked, 1):
            vid, item = next_vid(), next_item()
            variant_no += 1
            cents = (base * 100 * (100 + 35 * (pos - 1))) // 100 // 50 * 50
            price = _money(cents)
            variant = {
                "id": vid, "product_id": pid, "title": "Default Title" if single else value, "price": price,
                "sku": f"{ptype[:3].upper()}-{p:05d}-{pos}", "position": pos,
                "inventory_policy": "continue" if rng.random() < 0.15 else "deny",
                "compare_at_price": _money(cents * 5 // 4) if rng.random() < 0.1 else None,
                "fulfillment_service": "manual", "inventory_management": "shopify",
                "option1": "Default Title" if single else value, "option2": None, "option3": None,
                "created_at": created_s, "updated_at": updated_s, "taxable": False, "barcode": _ean13(variant_no),
                "grams": 100 + 50 * pos, "image_id": None, "weight": (100 + 50 * pos) / 1000, "weight_unit": "kg",
                "inventory_item_id": item, "inventory_quantity": 0, "old_inventory_quantity": 0,
                "presentment_prices": [{"price": {"amount": price, "currency_code": "HKD"}, "compare_at_price": None}],
                "requires_shipping": True, "admin_graphql_api_id": gid("ProductVariant", vid),
            }
            total = 0
            for loc in locations:
                warehouse = "Warehouse" in loc["name"]
                available = rng.randint(20, 400) if warehouse else rng.randint(-2 if
                                                                                variant["inventory_policy"] == "continue" else 0, 40)
                total += available
                store.inventory_levels[(item, loc["id"])] = {
                    "inventory_item_id": item, "location_id": loc["id"], "available": available,
                    "updated_at": updated_s, "admin_graphql_api_id": level_gid(item, loc["id"])}
            variant["inventory_quantity"] = variant["old_inventory_quantity"] = total
            store.variants[vid] = variant
            store.item_variant[item] = vid
            variants.append(variant)
            rows.append((vid, pid, variant["sku"], title, None if single else value, cents, price, variant["grams"],
                         vendor))
        image_id = next_misc()
        image = {"id": image_id, "alt": title, "position": 1, "product_id": pid, "created_at": created_s,
                 "updated_at": created_s, "admin_graphql_api_id": gid("ProductImage", image_id), "width": 1024,
                 "height": 1024, "src": f"https://cdn.shopify.com/s/files/1/0681/3045/5712/products/{pid}.jpg",
                 "variant_ids": []}
        store.products[pid] = {
            "id": pid, "title": title, "body_html": f"<p>{en} — {zh}. Made for Hong Kong.</p>", "vendor": vendor,
            "product_type": ptype, "created_at": created_s, "handle": f"{en.lower().replace(' ', '-')}-{p}",
            "updated_at": updated_s, "published_at": created_s, "template_suffix": None, "published_scope": "web",
            "tags": f"{ptype}, {zh}", "status": "active" if rng.random() < 0.95 else "draft",
            "admin_graphql_api_id": gid("Product", pid), "variants": variants,
            "options": [{"id": next_misc(), "product_id": pid, "name": "Title" if single else option, "position": 1,
                         "values": ["Default Title"] if single else picked}],
            "images": [image], "image": image,
        }
    return rows


def generate(*, seed: int = 0, orders: int = 1000, customers: int | None = None, products: int | None = None,
             locations: int = 4, domain: str = "harbour-goods-hk.myshopify.com",
             shop_name: str = "Harbour Goods 海港雜貨") -> Store:
    """A deterministic store; default sizes: ``orders // 5`` customers (>= 20), ``orders // 50`` products (20-2000)."""
    if not 3 <= locations <= 5:
        raise ValueError("locations must be 3, 4 or 5")
    rng = random.Random(seed)
    store = Store()
    start = ANCHOR - 730 * 86400
    for n, (name, address1, address2, district, region, code, phone) in enumerate(LOCATIONS[:locations]):
        lid = 61_880_000_000 + 1_000 * n + rng.randrange(1000)
        stamp = ts(ANCHOR - 900 * 86400 + n * 86400)
        store.locations[lid] = {
            "id": lid, "name": name, "address1": address1, "address2": address2, "city": district, "zip": "",
            "province": region, "country": "HK", "phone": phone, "created_at": stamp, "updated_at": stamp,
            "country_code": "HK", "country_name": "Hong Kong SAR", "province_code": code, "legacy": False,
            "active": True, "admin_graphql_api_id": gid("Location", lid), "localized_country_name": "Hong Kong SAR",
            "localized_province_name": region}
    loc_list = [store.locations[k] for k in store.locations.keys]
    shops = [loc["id"] for loc in loc_list if "Shop" in loc["name"]]
    store.shop = build_shop(domain, shop_name, loc_list[0]["id"])
    people = _customers(rng, customers if customers is not None else max(20, orders // 5), start - 400 * 86400)
    rows = _catalogue(rng, products if products is not None else min(2000, max(20, orders // 50)), loc_list, store)
    _orders(rng, store, orders, people, rows, shops, start, domain)
    for person in people:
        person.pop("_district"), person.pop("_created")
        store.customers[person["id"]] = person
    return store


def _embed(person: dict) -> dict:
    """The customer object as embedded in an order (REST 2024-07: no aggregates, default address only)."""
    keys = ("id", "email", "created_at", "updated_at", "first_name", "last_name", "state", "note", "verified_email",
            "multipass_identifier", "tax_exempt", "phone", "email_marketing_consent", "sms_marketing_consent", "tags",
            "currency", "tax_exemptions", "admin_graphql_api_id", "default_address")
    return {k: person[k] for k in keys}


def _order_address(person: dict) -> dict:
    a, district = person["default_address"], person["_district"]
    return {"first_name": a["first_name"], "address1": a["address1"], "phone": a["phone"], "city": a["city"],
            "zip": a["zip"], "province": a["province"], "country": a["country"], "last_name": a["last_name"],
            "address2": a["address2"], "company": None, "latitude": district[3], "longitude": district[4],
            "name": a["name"], "country_code": "HK", "province_code": a["province_code"]}




# Orders are written straight to JSON bytes through %-templates (about 5x faster than building dicts for orjson);
# every "%s" slot receives JSON bytes, every '"%s"' slot an ASCII string that needs no escaping.
def _template(layout: str) -> bytes:
    pairs = [line.strip().split(" ", 1) for line in layout.strip().splitlines()]
    return b"{" + b",".join(b'"%s":%s' % (k.encode(), v.strip().encode()) for k, v in pairs) + b"}"


_ZERO_SET = dumps(money_set("0.00")).replace(b"%", b"%%").decode()
_LINE = _template(f"""
    id %d
    admin_graphql_api_id "gid://shopify/LineItem/%d"
    current_quantity %d
    fulfillable_quantity %d
    fulfillment_service "manual"
    fulfillment_status %s
    gift_card false
    grams %d
    name %s
    price "%s"
    price_set %s
    product_exists true
    product_id %d
    properties %s
    quantity %d
    requires_shipping %s
    sku %s
    taxable false
    title %s
    total_discount "0.00"
    total_discount_set {_ZERO_SET}
    variant_id %d
    variant_inventory_management "shopify"
    variant_title %s
    vendor %s
    tax_lines []
    duties []
    discount_allocations []""")
_FULFILLMENT = _template("""
    id %d
    admin_graphql_api_id "gid://shopify/Fulfillment/%d"
    created_at "%s"
    location_id %d
    name "#%d.1"
    order_id %d
    origin_address {}
    receipt {"testcase":false,"authorization":null}
    service "manual"
    shipment_status null
    status "success"
    tracking_company %s
    tracking_number %s
    tracking_numbers %s
    tracking_url %s
    tracking_urls %s
    updated_at "%s"
    line_items [%s]""")
_SHIPPING = _template("""
    id %d
    carrier_identifier null
    code %s
    discounted_price "%s"
    discounted_price_set %s
    phone null
    price "%s"
    price_set %s
    requested_fulfillment_service_id null
    source "shopify"
    title %s
    tax_lines []
    discount_allocations []""")


def _order_template(domain: str) -> bytes:
    return _template(f"""
    id %d
    admin_graphql_api_id "gid://shopify/Order/%d"
    app_id %d
    browser_ip %s
    buyer_accepts_marketing %s
    cancel_reason %s
    cancelled_at %s
    cart_token %s
    checkout_id %d
    checkout_token "%s"
    client_details %s
    closed_at %s
    confirmation_number "%s"
    confirmed true
    contact_email %s
    created_at "%s"
    currency "HKD"
    current_subtotal_price "%s"
    current_subtotal_price_set %s
    current_total_additional_fees_set null
    current_total_discounts "%s"
    current_total_discounts_set %s
    current_total_duties_set null
    current_total_price "%s"
    current_total_price_set %s
    current_total_tax "0.00"
    current_total_tax_set {_ZERO_SET}
    customer_locale "zh-TW"
    device_id %s
    discount_applications []
    discount_codes %s
    email %s
    estimated_taxes false
    financial_status "%s"
    fulfillment_status %s
    landing_site %s
    landing_site_ref null
    location_id %s
    merchant_of_record_app_id null
    name "#%d"
    note null
    note_attributes %s
    number %d
    order_number %d
    order_status_url "https://{domain.replace('%', '%%')}/{SHOP_ID}/orders/%s/authenticate?key=%s"
    original_total_additional_fees_set null
    original_total_duties_set null
    payment_gateway_names %s
    payment_terms null
    phone %s
    po_number null
    presentment_currency "HKD"
    processed_at "%s"
    reference null
    referring_site %s
    refunds []
    source_identifier null
    source_name "%s"
    source_url null
    subtotal_price "%s"
    subtotal_price_set %s
    tags ""
    tax_exempt false
    tax_lines []
    taxes_included true
    test false
    token "%s"
    total_discounts "%s"
    total_discounts_set %s
    total_line_items_price "%s"
    total_line_items_price_set %s
    total_outstanding "%s"
    total_price "%s"
    total_price_set %s
    total_shipping_price_set %s
    total_tax "0.00"
    total_tax_set {_ZERO_SET}
    total_tip_received "0.00"
    total_weight %d
    updated_at "%s"
    user_id %s
    billing_address %s
    customer %s
    fulfillments %s
    line_items [%s]
    shipping_address %s
    shipping_lines %s""")


_J = dumps
_NULL, _TRUE, _FALSE, _EMPTY_LIST = b"null", b"true", b"false", b"[]"
_WEB_CLIENT = _J({"accept_language": "zh-HK", "browser_height": None, "browser_ip": "203.198.23.10",
                  "browser_width": None, "session_hash": None,
                  "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"})
_POS_CLIENT = _J({"accept_language": None, "browser_height": None, "browser_ip": None, "browser_width": None,
                  "session_hash": None, "user_agent": None})
_GIFT_WRAP = _J([{"name": "Gift wrap 禮品包裝", "value": "Yes"}])
_DELIVERY_SLOT = _J([{"name": "Delivery slot 送貨時段", "value": "18:00-22:00"}])
_PAYMENT = {True: b'["cash"]', False: b'["shopify_payments"]'}


class _Money:
    """Cents -> (ASCII amount bytes, money-set JSON bytes), memoised."""

    def __init__(self) -> None:
        self.memo: dict[int, tuple[bytes, bytes]] = {}

    def __call__(self, cents: int) -> tuple[bytes, bytes]:
        found = self.memo.get(cents)
        if found is None:
            amount = _money(cents)
            found = self.memo[cents] = (amount.encode(), _J(money_set(amount)))
        return found


def _orders(rng: random.Random, store: Store, count: int, people: list[dict], rows: list[tuple], shops: list[int],
            start: int, domain: str) -> None:
    next_id, next_line, next_misc = (_Ids(rng, 5_912_000_000_000), _Ids(rng, 14_870_000_000_000),
                                     _Ids(rng, 4_780_000_000_000))
    order_t, money = _order_template(domain), _Money()
    created_list = [p["_created"] for p in people]
    variants = [(vid, pid, grams, _J(f"{title} - {vt}" if vt else title), *money(cents), _J(sku), _J(title),
                 _J(vt), _J(vendor), cents) for vid, pid, sku, title, vt, cents, _price, grams, vendor in rows]
    embeds: dict[int, tuple] = {}
    step = (ANCHOR - 3600 - start) / max(count, 1)
    rand, getrandbits = rng.random, rng.getrandbits
    raw, meta = store.orders.raw, store.orders.meta
    n_fin, n_var, n_shops = len(FINANCIAL), len(variants), len(shops)
    for n in range(count):
        oid = next_id()
        created = start + int(n * step + rand() * step)
        person = people[int(rand() * max(bisect.bisect_right(created_list, created), 1))]
        shared = embeds.get(person["id"])
        if shared is None:
            email = person["email"]
            shared = embeds[person["id"]] = (_J(_embed(person)), _J(_order_address(person)), _J(email), _J(email or ""),
                                             _J(person["phone"]))
        embed_b, address_b, contact_b, email_b, phone_b = shared
        pos = rand() < 0.35
        r = rand()
        cancelled = r < 0.03
        financial = ("voided" if rand() < 0.5 else "refunded") if cancelled else FINANCIAL[int(rand() * n_fin)]
        fulfillment = None if cancelled or r < 0.40 else ("partial" if r < 0.48 else "fulfilled")
        updated = min(created + 1 + int(rand() * 5 * 86400), ANCHOR)
        paid = financial in ("paid", "partially_refunded", "refunded")
        closed = cancelled or (fulfillment == "fulfilled" and financial == "paid" and rand() < 0.7)
        created_b, updated_b = ts(created).encode(), ts(updated).encode()
        updated_q = b'"' + updated_b + b'"'
        lines, done_lines, subtotal, weight = [], [], 0, 0
        for i in range(1 + (rand() < 0.45) + (rand() < 0.25) + (rand() < 0.1)):
            vid, pid, grams, name_b, price_b, pset_b, sku_b, title_b, vt_b, vendor_b, cents = \
                variants[int(rand() * n_var)]
            qty = (1, 1, 1, 1, 2, 2, 3)[int(rand() * 7)]
            subtotal += cents * qty
            weight += grams * qty
            done = fulfillment == "fulfilled" or (fulfillment == "partial" and i == 0)
            lid = next_line()
            line = _LINE % (lid, lid, 0 if financial in ("refunded", "voided") else qty,
                            0 if done or cancelled else qty, b'"fulfilled"' if done else _NULL, grams, name_b,
                            price_b, pset_b, pid, _GIFT_WRAP if rand() < 0.05 else _EMPTY_LIST, qty,
                            _FALSE if pos else _TRUE, sku_b, title_b, vid, vt_b, vendor_b)
            lines.append(line)
            if done:
                done_lines.append(line)
        discount = subtotal // 10 // 100 * 100 if rand() < 0.15 else 0
        shipping = 0 if pos or subtotal >= 50_000 else 3_000
        total = subtotal - discount + shipping
        (sub_b, sub_set), (total_b, total_set) = money(subtotal), money(total)
        (disc_b, disc_set), (ship_b, ship_set) = money(discount), money(shipping)
        number = n + 1
        token = b"%032x" % getrandbits(128)
        location = shops[int(rand() * n_shops)]
        fulfillments = _EMPTY_LIST
        if fulfillment:
            fid = next_misc()
            courier, url = COURIERS[int(rand() * 2)]
            if pos:
                tracking = track_url = _NULL
                tracking_list = urls = _EMPTY_LIST
            else:
                number_s = f"SF{int(rand() * 10**12):012d}"
                tracking, track_url = _J(number_s), _J(url + number_s)
                tracking_list, urls = b"[" + tracking + b"]", b"[" + track_url + b"]"
            fulfillments = b"[" + _FULFILLMENT % (
                fid, fid, updated_b, location if pos else shops[-1], 1000 + number, oid,
                _NULL if pos else _J(courier), tracking, tracking_list, track_url, urls, updated_b,
                b",".join(done_lines)) + b"]"
        shipping_lines = _EMPTY_LIST if pos else b"[" + _SHIPPING % (
            next_misc(), b'"SF Express"' if shipping else b'"Free Shipping"', ship_b, ship_set, ship_b, ship_set,
            _J("SF Express 順豐速運") if shipping else b'"Free Shipping"') + b"]"
        raw[oid] = order_t % (
            oid, oid, 129_785 if pos else 580_111, _NULL if pos else b'"203.198.23.10"',
            _TRUE if rand() < 0.3 else _FALSE,
            _J(CANCEL_REASONS[int(rand() * 5)]) if cancelled else _NULL, updated_q if cancelled else _NULL,
            _NULL if pos else b'"' + token + b'"', next_misc(), token, _POS_CLIENT if pos else _WEB_CLIENT,
            updated_q if closed else _NULL, token[:9].upper(), contact_b, created_b, sub_b, sub_set, disc_b, disc_set,
            total_b, total_set, b"1" if pos else _NULL,
            b'[{"code":"WELCOME10","amount":"%s","type":"fixed_amount"}]' % disc_b if discount else _EMPTY_LIST,
            email_b, financial.encode(), b'"%s"' % fulfillment.encode() if fulfillment else _NULL,
            _NULL if pos else b'"/"', b"%d" % location if pos else _NULL, 1000 + number,
            _DELIVERY_SLOT if not pos and rand() < 0.1 else _EMPTY_LIST, number, 1000 + number,
            token, token[::-1], _PAYMENT[pos], phone_b, created_b,
            _NULL if pos else b'"https://www.google.com/"', b"pos" if pos else b"web", sub_b, sub_set, token,
            disc_b, disc_set, sub_b, sub_set, b"0.00" if paid else total_b, total_b, total_set, ship_set, weight,
            updated_b, b"%d" % (110_000 + shops.index(location)) if pos else _NULL, address_b, embed_b,
            fulfillments, b",".join(lines), _NULL if pos else address_b, shipping_lines)
        meta[oid] = (created, updated, closed, cancelled, financial, fulfillment)
        if not cancelled:
            person["orders_count"] += 1
            person["_spent"] = person.get("_spent", 0) + (total if paid else 0)
            person["last_order_id"], person["last_order_name"] = oid, f"#{1000 + number}"
            person["_last"] = created
    store.orders.keys.extend(raw)  # ids were generated ascending
    for person in people:
        person["total_spent"] = _money(person.pop("_spent", 0))
        last = person.pop("_last", None)
        if last is not None and parse_ts(person["updated_at"]) < last:
            person["updated_at"] = ts(last)  # placing an order updates the customer
