"""``[inventory]`` settings: locations and their sources, channels, rules, and every mistake named by key."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from storesync.core.config import load_config
from storesync.core.errors import ConfigError
from storesync.core.inventory_config import inventory_issues, inventory_settings

CONNECTORS = """
[connectors.shop]
type = "files"
directory = "x"

[connectors.tills]
type = "files"
directory = "y"

[connectors.erp]
type = "files"
directory = "z"
"""

GOOD = """
[inventory]
tolerance = 1

[inventory.locations.cwb]
name = "Causeway Bay"
authority = "tills"
sources = { tills = "L1CWB", shop = "7" }
latitude = 22.2803
longitude = 114.1838
safety_stock = 1

[inventory.locations.warehouse]
authority = "erp"
sources = { erp = "WH/Stock", shop = "9" }
latitude = 22.36
longitude = 114.11

[inventory.channels.shop]
locations = ["cwb", "warehouse"]

[[inventory.safety_stock]]
tag = "fragile"
quantity = 2

[[inventory.policies]]
tag = "limited"
oversell = "deny"

[[inventory.policies]]
sku = "TEA-001"
oversell = "allow"
allow_limit = 5

[[inventory.preorders]]
sku = "MOONCAKE-2027"
limit = 200
expected = 2027-08-01
pickup_location = "cwb"
"""


def config(tmp_path: Path, inventory: str):
    path = tmp_path / "plugins.toml"
    path.write_text(CONNECTORS + textwrap.dedent(inventory), encoding="utf-8")
    return load_config(path)


def test_a_complete_table_reads_into_settings(tmp_path: Path) -> None:
    settings = inventory_settings(config(tmp_path, GOOD))
    assert settings.canonical_location("shop", "7") == "cwb" and settings.canonical_location("erp", "WH/Stock") == \
        "warehouse"
    assert settings.canonical_location("shop", "8") is None
    assert settings.safety_stock_for("cwb", "VASE-1", frozenset({"fragile"})) == 3  # location 1 + tag 2
    assert settings.safety_stock_for("warehouse", "TEA-001") == 0
    assert settings.policy_for("TEA-001").allow_limit == 5
    assert settings.policy_for("X", frozenset({"limited"})).oversell == "deny"
    assert settings.policy_for("Y").oversell == "deny"  # the default policy
    assert settings.preorders[0].expected == date(2027, 8, 1)


def test_an_empty_table_has_no_issues(tmp_path: Path) -> None:
    assert inventory_issues(config(tmp_path, "")) == []


def test_every_mistake_is_named_by_key_with_a_suggestion(tmp_path: Path) -> None:
    bad = GOOD.replace('authority = "erp"', 'authority = "shop"').replace(
        'sources = { erp = "WH/Stock", shop = "9" }', 'sources = { erp = "WH/Stock", shop = "7", tils = "2" }').replace(
        'locations = ["cwb", "warehouse"]', 'locations = ["cwb", "warehous"]').replace(
        'pickup_location = "cwb"', 'pickup_location = "mk"')
    issues = [f"{i.key}: {i.message}" for i in inventory_issues(config(tmp_path, bad))]
    assert "inventory.locations.warehouse.sources.tils: no connector 'tils' is configured; did you mean 'tills'?" in \
        issues
    assert "inventory.locations.warehouse.sources.shop: shop location '7' is already location 'cwb'" in issues
    assert ("inventory.channels.shop.locations[1]: no location 'warehous' under [inventory.locations]; "
            "did you mean 'warehouse'?") in issues
    assert "inventory.preorders[0].pickup_location: no location 'mk' under [inventory.locations]" in issues


@pytest.mark.parametrize(("change", "key", "text"), [
    (('oversell = "allow"\nallow_limit = 5', 'oversell = "allow"'), "inventory.policies.1",
     "oversell = 'allow' needs allow_limit"),
    (('authority = "tills"', 'authority = "erp"'), "inventory.locations.cwb", "authority 'erp' must be one of"),
    (('tag = "fragile"', 'tag = "fragile"\nsku = "X"'), "inventory.safety_stock.0", "exactly one of sku or tag"),
    (("tolerance = 1", "tolerance = 1\ntolerence = 2"), "inventory.tolerence", "did you mean 'tolerance'?"),
    (("latitude = 22.36\n", ""), "inventory.locations.warehouse", "both latitude and longitude"),
])
def test_invalid_values_are_reported_with_their_key(tmp_path: Path, change, key, text) -> None:
    issues = inventory_issues(config(tmp_path, GOOD.replace(*change)))
    assert any(i.key == key and text in i.message for i in issues), [(i.key, i.message) for i in issues]


def test_nearest_needs_coordinates_and_priority_needs_a_list(tmp_path: Path) -> None:
    no_coords = GOOD.replace("latitude = 22.36\nlongitude = 114.11\n", "")
    assert [i.key for i in inventory_issues(config(tmp_path, no_coords))] == ["inventory.allocation.strategy"]
    priority = no_coords + '\n[inventory.allocation]\nstrategy = "priority"\n'
    assert [i.key for i in inventory_issues(config(tmp_path, priority))] == ["inventory.allocation.priority"]
    ranked = no_coords + '\n[inventory.allocation]\nstrategy = "priority"\npriority = ["warehouse", "cwb"]\n'
    assert inventory_issues(config(tmp_path, ranked)) == []


def test_inventory_settings_raises_one_error_with_all_issues(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        inventory_settings(config(tmp_path, GOOD.replace('pickup_location = "cwb"', 'pickup_location = "mk"')))
    assert "inventory.preorders[0].pickup_location" in str(info.value)


def test_config_check_reports_inventory_issues_with_the_rest(tmp_path: Path) -> None:
    from storesync.core.operations import Session

    path = tmp_path / "plugins.toml"
    path.write_text('[connectors.shop]\ntype = "files"\ndirectory = "."\n[connectors.shop.files]\nall = "*.csv"\n\n'
                    '[inventory.channels.shop]\nlocations = ["cwb"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Session.open(str(path)).check_config()
    assert "inventory.channels.shop.locations[0]: no location 'cwb'" in str(info.value)
