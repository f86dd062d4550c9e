"""Allocation and the oversell / pre-order / backorder policies over reconciled positions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from storesync.core.inventory import Demand, LevelReport, reconcile
from storesync.core.inventory_config import InventorySettings
from storesync.core.inventory_policy import decide

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def settings(**extra: object) -> InventorySettings:
    return InventorySettings.model_validate({
        "locations": {
            "cwb": {"authority": "tills", "sources": {"tills": "L1", "shop": "7"}, "latitude": 22.2803,
                    "longitude": 114.1838},
            "mk": {"authority": "tills", "sources": {"tills": "L2"}, "latitude": 22.3193, "longitude": 114.1694},
            "wh": {"authority": "erp", "sources": {"erp": "WH"}, "latitude": 22.3643, "longitude": 114.1327},
        },
        "channels": {"shop": {"locations": ["cwb", "mk", "wh"]}},
        **extra})


def web(order: str, sku: str, qty: int = 1, minute: float = 5, **kw: object) -> Demand:
    return Demand("shop", order, at(minute), sku, qty, **kw)  # type: ignore[arg-type]


def stock(**levels: int) -> list[LevelReport]:
    where = {"cwb": ("tills", "L1"), "mk": ("tills", "L2"), "wh": ("erp", "WH")}
    out = []
    for key, qty in levels.items():
        sku, loc = key.split("__")
        out.append(LevelReport(*where[loc], sku, qty, 0, at(0)))
    return out


def test_an_order_goes_whole_to_the_nearest_location_with_every_line() -> None:
    s = settings()
    # cwb has the tea but not the vase; mk (next nearest) has both: the order is not split
    recon = reconcile(s, stock(TEA__cwb=5, VASE__cwb=0, TEA__mk=2, VASE__mk=1, TEA__wh=9, VASE__wh=9),
                      [web("o1", "TEA"), web("o1", "VASE")])
    decisions, conflicts = decide(s, recon, [], NOW)
    assert {(d.line.sku, d.state, d.location) for d in decisions} == {("TEA", "allocated", "mk"),
                                                                     ("VASE", "allocated", "mk")}
    assert not conflicts and not recon.unplaced
    assert recon.positions[("VASE", "mk")].available == 0  # the next order sees it taken


def test_priority_strategy_and_first_come_first_served() -> None:
    s = settings(allocation={"strategy": "priority", "priority": ["wh", "cwb", "mk"]})
    recon = reconcile(s, stock(TEA__wh=1, TEA__cwb=1, TEA__mk=0),
                      [web("late", "TEA", minute=9), web("early", "TEA", minute=2), web("last", "TEA", minute=20)])
    decisions, conflicts = decide(s, recon, [], NOW)
    got = {d.line.order_id: (d.state, d.location) for d in decisions}
    assert got == {"early": ("allocated", "wh"), "late": ("allocated", "cwb"), "last": ("denied", None)}
    (conflict,) = conflicts
    assert conflict.kind == "oversell" and [(d.order_id, v) for d, v in conflict.orders][-1] == ("last", "beyond stock")
    denied = next(d for d in decisions if d.state == "denied")
    assert denied.event == "oversell_detected"


def test_backorder_and_allow_policies() -> None:
    s = settings(policies=[{"sku": "TEA", "oversell": "backorder"}, {"tag": "x", "oversell": "deny"},
                           {"sku": "VASE", "oversell": "allow", "allow_limit": 2}], backorder_days=10)
    recon = reconcile(s, stock(TEA__wh=0, VASE__wh=0),
                      [web("b1", "TEA"), web("a1", "VASE", minute=1), web("a2", "VASE", minute=2),
                       web("a3", "VASE", minute=3)])
    decisions, _ = decide(s, recon, [], NOW)
    got = {d.line.order_id: d for d in decisions}
    assert got["b1"].state == "backordered" and got["b1"].promise_date == date(2026, 12, 11)
    assert [got[o].state for o in ("a1", "a2", "a3")] == ["allowed", "allowed", "denied"]
    assert got["b1"].event is None  # nothing to tell yet


def test_preorders_take_orders_to_the_limit_then_get_stock_first_come_first_served() -> None:
    s = settings(preorders=[{"sku": "MOON", "limit": 2, "expected": "2027-08-01", "pickup_location": "mk"}])
    recon = reconcile(s, stock(MOON__wh=0), [web("p1", "MOON", minute=1), web("p2", "MOON", minute=2),
                                             web("p3", "MOON", minute=3)])
    decisions, _ = decide(s, recon, [], NOW)
    assert [(d.line.order_id, d.state) for d in decisions] == [("p1", "preorder"), ("p2", "preorder"),
                                                                ("p3", "denied")]
    # the ERP receives one unit at the warehouse: the earliest pre-order gets it, the other keeps waiting
    parked = [web("p1", "MOON", minute=1, state="preorder"), web("p2", "MOON", minute=2, state="preorder")]
    later = reconcile(s, [LevelReport("erp", "WH", "MOON", 1, 0, at(30))], parked)
    decisions, _ = decide(s, later, parked, NOW, preordered={"MOON": 2})
    (arrived,) = decisions
    assert (arrived.line.order_id, arrived.state, arrived.location) == ("p1", "allocated", "wh")
    assert arrived.event == "preorder_stock_arrived" and arrived.origin == "preorder"


def test_a_till_sale_in_the_same_minute_makes_the_allocated_web_order_give_way() -> None:
    s = settings()
    allocated = web("w1", "VASE", allocated_to="cwb", allocated_at=at(1), state="allocated")
    till = Demand("tills", "t1", at(1.5), "VASE", 1, "L1")
    recon = reconcile(s, stock(VASE__cwb=1), [allocated, till])
    assert recon.positions[("VASE", "cwb")].shortfall == 1
    decisions, conflicts = decide(s, recon, [], NOW)
    (d,) = decisions
    assert (d.line.order_id, d.state, d.event) == ("w1", "denied", "oversell_detected")
    assert recon.positions[("VASE", "cwb")].shortfall == 0  # the till sale keeps the unit
    assert conflicts and conflicts[0].orders[-1][0].order_id == "w1"


def test_a_sku_no_authority_counts_is_left_alone() -> None:
    s = settings()
    recon = reconcile(s, stock(TEA__cwb=1), [web("o1", "GIFTCARD"), web("o2", "TEA")])
    decisions, conflicts = decide(s, recon, [], NOW)
    assert [(d.line.order_id, d.state) for d in decisions] == [("o2", "allocated")] and not conflicts
    assert [d.order_id for d in recon.unplaced] == ["o1"]


def test_another_connectors_own_orders_are_not_decided() -> None:
    s = settings()
    erp_order = Demand("erp", "so1", at(5), "TEA", 1)  # the ERP's own sales order: it reserves it itself
    recon = reconcile(s, stock(TEA__wh=0), [erp_order, web("o1", "TEA")])
    decisions, _ = decide(s, recon, [], NOW)
    assert [(d.line.order_id, d.state) for d in decisions] == [("o1", "denied")]


def test_two_lines_of_one_order_for_one_sku_are_one_demand_per_order(tmp_path) -> None:
    from storesync.core.inventory_store import load_demand
    from storesync.core.models import Order, OrderLine
    from storesync.core.store import Store
    from storesync.core.writer import Item

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    order = Order(external_id="o1", currency="HKD", created_at=at(1),
                  lines=[OrderLine(sku="TEA", quantity=2), OrderLine(sku="TEA", quantity=3),
                         OrderLine(sku="CUP", quantity=1)])
    other = Order(external_id="o2", currency="HKD", created_at=at(2),
                  lines=[OrderLine(sku="CUP", quantity=4), OrderLine(sku="TEA", quantity=1),
                         OrderLine(sku="CUP", quantity=2)])
    with store.write() as w:
        w.upsert("shop", "orders", "order", [Item("o1", order, None), Item("o2", other, None)])
    got = sorted((d.order_id, d.sku, d.quantity) for d in load_demand(store))
    store.close()
    assert got == [("o1", "CUP", 1), ("o1", "TEA", 5), ("o2", "CUP", 6), ("o2", "TEA", 1)]
