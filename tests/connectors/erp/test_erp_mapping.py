"""The default ``erp.toml`` mapping on the records the ``odoo`` streams yield, with values spot-checked; and the
forwarding settings checked before anything is sent."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from erp_support import KEY, erp_id, project  # noqa: E402

from storesync.connectors.erp import OdooConnector, OdooSettings  # noqa: E402
from storesync.connectors.erp.emulator import OdooEmulator  # noqa: E402
from storesync.core.connector import ConnectorContext  # noqa: E402
from storesync.core.mapping import load_mapping  # noqa: E402
from storesync.core.transforms import TransformContext, builtin_transforms  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def mapped():
    """stream -> {external id: canonical model} for everything the emulator's streams yield."""
    mapping = load_mapping(REPO / "mappings" / "erp.toml", registry=builtin_transforms(),
                           ctx=TransformContext(timezone="Asia/Hong_Kong", default_region="HK"))
    with OdooEmulator(api_key=KEY, partners=20, products=8, orders=6) as odoo:
        odoo.odoo_call("sale.order", "action_cancel", ids=[2])
        conn = OdooConnector("erp", OdooSettings(url=odoo.url, database=odoo.database, login=odoo.login, api_key=KEY),
                             ConnectorContext())
        out = {}
        for stream in conn.streams():
            smap = mapping.stream(stream.name)
            out[stream.name] = {m.external_id: m for m in (smap.to_model(r) for r in stream.read(None)
                                                           if isinstance(r, dict))}
        yield out


def test_partners(mapped) -> None:
    alice = mapped["partners"]["2"]
    assert (alice.full_name, alice.email, alice.phone, alice.member_id) == \
        ("Wong Mei Ling 1", "partner1@example.com.hk", "+85290000001", "P0001")
    assert alice.updated_at == datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC) and alice.country_code == "HK"
    assert mapped["partners"]["17"].deleted and not alice.deleted  # archived in Odoo
    assert mapped["partners"]["1"].email is None and mapped["partners"]["1"].attributes["is_company"] is True


def test_products_and_locations(mapped) -> None:
    tea = mapped["products"]["1"]
    assert (tea.sku, tea.inventory_item_id, tea.price, tea.product_external_id, tea.tracked) == \
        ("TEA-JAS-100", "1", Decimal("88.0"), "1", True)
    assert {loc.name for loc in mapped["locations"].values()} == {"WH/Stock", "WH/Stock/Shelf 1"}
    assert mapped["locations"]["2"].attributes == {"usage": "internal", "warehouse": "Main Warehouse"}


def test_quants_and_orders(mapped) -> None:
    level = mapped["quants"]["1@2"]
    assert level.sku == "TEA-JAS-100" and level.location_external_id == "2" and level.variant_external_id == "1"
    assert level.available == level.on_hand - level.committed
    orders = mapped["sale_orders"]
    assert orders["2"].status == "cancelled" and orders["1"].status == "open"
    first = orders["1"]
    assert first.currency == "HKD" and first.number == "S00001" and first.attributes["client_order_ref"] == "SEED-00000"
    assert first.total == sum(line.total for line in first.lines) and all(line.sku for line in first.lines)


def test_forwarding_from_an_unknown_connector_is_a_config_error(cli, tmp_path: Path) -> None:
    cid = erp_id()
    with OdooEmulator(api_key=KEY, orders=0) as odoo:
        project(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", cid, odoo)
        toml = (tmp_path / "plugins.toml").read_text(encoding="utf-8")
        (tmp_path / "plugins.toml").write_text(toml.replace('transport = "jsonrpc"', 'transport = "jsonrpc"\n'
                                                            'forward_orders_from = ["shpo"]'), encoding="utf-8")
        proc = cli("orders", "forward", cid, cwd=tmp_path, env={"ODOO_API_KEY": KEY})
        assert proc.returncode == 2, proc.stderr
        assert "unknown connector 'shpo'" in proc.stderr and not odoo.writes
        check = cli("config", "check", cwd=tmp_path, env={"ODOO_API_KEY": KEY})
    assert check.returncode == 2 and f"connectors.{cid}.forward_orders_from: unknown connector 'shpo'" in check.stderr
