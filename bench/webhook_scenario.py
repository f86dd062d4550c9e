"""The warehouse scenario of ``bench_webhooks.py`` and ``tests/e2e/test_serve.py``.

One SKU in a warehouse whose count the ERP (Odoo emulator) keeps; the web shop (Shopify emulator) and the tills
(Square emulator) both sell from it, so both are push channels there. A web sale must lower the tills' IN_STOCK.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CONFIG", "Warehouse", "free_port", "run_env", "warehouse"]

CONFIG = """
[storesync]
database = "sqlite:///store.db"
timezone = "Asia/Hong_Kong"

{shop}
{pos}
{erp}

[inventory.locations.warehouse]
name = "Kwai Chung Warehouse"
authority = "erp"
sources = {{ erp = "{wh_erp}", shop = "{wh_shop}", tills = "{wh_till}" }}
latitude = 22.3633
longitude = 114.1317

[inventory.channels.shop]
locations = ["warehouse"]

[inventory.channels.tills]
locations = ["warehouse"]
"""


def free_port() -> int:
    """A port nothing listens on now (for a server started next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_env(secrets: dict[str, str]) -> dict[str, str]:
    """The environment of a ``storesync`` subprocess: this one's, with ``secrets``, never another config."""
    return {**{k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}, **secrets}


@dataclass
class Warehouse:
    variation: str  # the Square catalog variation of the SKU
    item: int  # the Shopify inventory item of the SKU
    wh_shop: int  # the warehouse's Shopify location
    wh_till: str  # the warehouse's Square location


def warehouse(root: Path, shop: Any, pos: Any, erp: Any, sku: str, title: str, on_hand: int) -> Warehouse:
    """Write ``root/plugins.toml`` for the three emulators (secrets as ``${ENV}``) and put ``sku`` in each, with
    ``on_hand`` units counted by the ERP and none yet in the channels. Square's own events are not delivered
    during the set-up (its ``webhook_url`` is restored afterwards)."""
    wh_shop, wh_till = shop.location_id("Kwai Chung Warehouse"), pos.location_id("Kwai Chung Warehouse")
    wh_erp = erp.location_id("WH/Stock")
    table = pos.plugins_toml("tills").replace(f'"{pos.signature_key}"', '"${SQUARE_WEBHOOK_KEY}"')
    text = CONFIG.format(shop=shop.plugins_toml(secret_env="SHOPIFY_WEBHOOK_SECRET"), pos=table,
                         erp=erp.plugins_toml("erp"), wh_erp=wh_erp, wh_shop=wh_shop, wh_till=wh_till)
    (root / "plugins.toml").write_text(text, encoding="utf-8")
    url, pos.webhook_url = pos.webhook_url, None
    try:
        variation = pos.add_item(sku, title, counts={wh_till: 0})
    finally:
        pos.webhook_url = url
    item = shop.add_product(sku, title, stock={wh_shop: 0})["inventory_item_id"]
    erp.add_product(sku, title)
    erp.set_on_hand(sku, on_hand)
    return Warehouse(variation, item, wh_shop, wh_till)
