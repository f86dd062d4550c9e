"""Reconciliation over plain records (core/inventory.py): authority counts, uncounted demand, conflicts, ATP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storesync.core.inventory import Demand, LevelReport, reconcile
from storesync.core.inventory_config import InventorySettings

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

SETTINGS = InventorySettings.model_validate({
    "tolerance": 1,
    "locations": {
        "cwb": {"authority": "tills", "sources": {"tills": "L1", "shop": "7"}, "safety_stock": 1},
        "mk": {"authority": "tills", "sources": {"tills": "L2", "shop": "8"}},
        "warehouse": {"authority": "erp", "sources": {"erp": "WH", "shop": "9"}},
    },
    "channels": {"shop": {"locations": ["cwb", "warehouse"]}, "tills": {"locations": ["cwb", "mk"]}},
    "safety_stock": [{"tag": "fragile", "quantity": 2}],
    "allocation": {"strategy": "priority", "priority": ["warehouse", "cwb", "mk"]},
})


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_the_authority_counts_and_demand_after_its_report_is_committed() -> None:
    reports = [LevelReport("tills", "L1", "TEA", 10, 0, at(0)),
               LevelReport("shop", "7", "TEA", 9, None, at(1)),  # not the authority here: compared, not used
               LevelReport("erp", "WH", "TEA", 50, 4, at(0))]
    demand = [Demand("tills", "r1", at(-5), "TEA", 2, "L1"),  # before the till's count: already in it
              Demand("tills", "r2", at(5), "TEA", 3, "L1"),
              Demand("erp", "so1", at(5), "TEA", 1, "WH")]
    result = reconcile(SETTINGS, reports, demand)

    cwb, wh = result.positions[("TEA", "cwb")], result.positions[("TEA", "warehouse")]
    assert (cwb.on_hand, cwb.committed, cwb.safety_stock, cwb.available) == (10, 3, 1, 6)
    assert (wh.on_hand, wh.reported_committed, wh.uncounted, wh.available) == (50, 4, 1, 45)
    assert [d.order_id for d in cwb.demand] == ["r2"]
    assert result.conflicts == []  # the web shop's 9 is within the tolerance of 1


def test_systems_disagreeing_beyond_the_tolerance_is_a_conflict_naming_both() -> None:
    result = reconcile(SETTINGS, [LevelReport("tills", "L2", "CUP", 5, 0, at(0)),
                                  LevelReport("shop", "8", "CUP", 2, None, at(0))], [])
    (conflict,) = result.conflicts
    assert (conflict.kind, conflict.sku, conflict.location) == ("disagree", "CUP", "mk")
    assert "shop reports 2 on hand, tills (the authority) 5" in conflict.detail


def test_the_last_unit_sold_twice_is_an_oversell_with_the_later_order_beyond_stock() -> None:
    reports = [LevelReport("tills", "L2", "VASE", 1, 0, at(0))]
    demand = [Demand("tills", "till-b", at(1.5), "VASE", 1, "L2"), Demand("tills", "till-a", at(1.0), "VASE", 1, "L2")]
    result = reconcile(SETTINGS, reports, demand)
    (conflict,) = result.conflicts
    assert conflict.kind == "oversell" and "2 committed against 1 on hand (1 short)" in conflict.detail
    assert [(line.order_id, verdict) for line, verdict in conflict.orders] == [("till-a", "within stock"),
                                                                                ("till-b", "beyond stock")]
    assert result.positions[("VASE", "mk")].available == 0


def test_available_to_sell_per_channel_sums_its_locations_less_unplaced_web_demand() -> None:
    reports = [LevelReport("tills", "L1", "MUG", 4, 0, at(0)), LevelReport("tills", "L2", "MUG", 7, 0, at(0)),
               LevelReport("erp", "WH", "MUG", 20, 0, at(2))]
    demand = [Demand("shop", "w1", at(1), "MUG", 5),  # before the warehouse count (the oldest the shop uses: 0)
              Demand("shop", "w2", at(-1), "MUG", 9)]  # before every count: already counted
    result = reconcile(SETTINGS, reports, demand, tags={"MUG": frozenset({"fragile"})})
    # cwb: 4 - safety (1 + fragile 2) = 1; warehouse 20 - 2 = 18; mk 7 - 2 = 5
    assert result.available_to_sell[("shop", "MUG")] == 1 + 18 - 5
    assert result.available_to_sell[("tills", "MUG")] == 1 + 5


def test_a_report_from_an_unclaimed_location_is_an_unmapped_conflict() -> None:
    result = reconcile(SETTINGS, [LevelReport("shop", "99", "MUG", 3)], [])
    assert [(c.kind, c.location) for c in result.conflicts] == [("unmapped", "99")]
    assert result.positions == {}


def test_demand_at_a_location_without_any_report_is_an_oversell_of_everything() -> None:
    result = reconcile(SETTINGS, [], [Demand("tills", "r9", at(0), "NEW", 2, "L1")])
    assert result.positions[("NEW", "cwb")].committed == 2
    assert [c.kind for c in result.conflicts] == ["oversell"]


def test_only_orders_the_authority_knows_can_be_in_its_count() -> None:
    """A till counts its own sales and the ERP reserves forwarded orders; a web order allocated to a shop floor is
    never in the till's count, however old it is, so it stays committed."""
    reports = [LevelReport("tills", "L1", "TEA", 10, 0, at(0)), LevelReport("erp", "WH", "TEA", 20, 2, at(0))]
    demand = [Demand("tills", "own-before", at(-5), "TEA", 1, "L1"),
              Demand("shop", "web-at-cwb", at(-5), "TEA", 2, allocated_to="cwb", allocated_at=at(-4),
                     state="allocated"),
              Demand("shop", "forwarded", at(-5), "TEA", 2, "9", forwarded_to=("erp",)),
              Demand("shop", "not-forwarded", at(-5), "TEA", 3, "9")]
    result = reconcile(SETTINGS, reports, demand)
    cwb, wh = result.positions[("TEA", "cwb")], result.positions[("TEA", "warehouse")]
    assert [d.order_id for d in cwb.demand] == ["web-at-cwb"] and cwb.committed == 2
    assert [d.order_id for d in wh.demand] == ["not-forwarded"] and wh.committed == 2 + 3
