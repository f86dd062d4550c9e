"""The whole-catalogue reconciliation in SQL (core/inventory_bulk.py) against the reference (core/inventory.py).

Random small stores (seeded): every position must equal the reference's, each push channel's target rows must
add up to the reference's available-to-sell, the exceptions must name the SKUs of the reference's conflicts, and
an incremental refresh after random changes must leave exactly what a full one computes.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from storesync.core.forwarded import ForwardedOrderRow
from storesync.core.inventory import reconcile
from storesync.core.inventory_ledger import AllocationRow
from storesync.core.inventory_bulk import changed_skus, exception_skus, load_tags, reconcile_bulk, refresh
from storesync.core.inventory_config import InventorySettings
from storesync.core.inventory_store import load_demand, load_reports
from storesync.core.inventory_tables import EXCEPTION, POSITION, STATE, TARGET
from storesync.core.models import InventoryLevel, Order, OrderLine, Product, Variant
from storesync.core.store import Store
from storesync.core.tables import ENTITY_TABLES
from storesync.core.writer import Item

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SKUS = [f"S{i}" for i in range(6)]

#: no channel is the authority where it sells (so its targets add up to the reference's figure); the shop has no
#: location id at "mk" (folded into its default, "cwb"); "kiosk" sells only where it has no id (no targets); the
#: ERP's count at "cwb" is compared (a disagreement), the channels' own levels where they sell are not
SETTINGS = {
    "locations": {
        "wh": {"authority": "erp", "sources": {"erp": "WH", "shop": "9", "tills": "TW"}},
        "cwb": {"authority": "tills", "sources": {"tills": "T1", "shop": "7", "erp": "E7"}, "safety_stock": 1},
        "mk": {"authority": "tills", "sources": {"tills": "T2"}},
        "pop": {"authority": "shop", "sources": {"shop": "5", "tills": "T3"}, "safety_stock": 2},
    },
    "channels": {"shop": {"locations": ["cwb", "wh", "mk"]}, "tills": {"locations": ["wh", "pop"]},
                 "kiosk": {"locations": ["mk"]}, "erp": {"locations": ["wh"], "push": False}},
    "allocation": {"strategy": "priority", "priority": ["wh", "cwb", "mk", "pop"]},
}
LOCATION_IDS = {"erp": ["WH", "E7", "ZZ"], "tills": ["T1", "T2", "T3", "TW", "ZZ"], "shop": ["9", "7", "5", "ZZ"]}


def settings_for(rng: random.Random) -> InventorySettings:
    raw = {**SETTINGS, "tolerance": rng.randrange(3)}
    raw["safety_stock"] = [{"sku": rng.choice(SKUS), "quantity": rng.randrange(1, 4)},
                           {"tag": "fragile", "quantity": rng.randrange(1, 4)},
                           {"tag": "big", "quantity": rng.randrange(1, 4)}][:rng.randrange(4)]
    return InventorySettings.model_validate(raw)


def at(rng: random.Random) -> datetime:
    return T0 + timedelta(minutes=rng.randrange(30))


def variants(rng: random.Random) -> dict[str, list[tuple[str, Variant]]]:
    """Per connector (stream, variant): most SKUs have one; now and then a second stream's variant shares a key
    with another SKU's (the last stored wins)."""
    out: dict[str, list[tuple[str, Variant]]] = {"shop": [], "tills": [], "erp": []}
    for cid, made in out.items():
        for sku in SKUS:
            if rng.random() < 0.8:
                item = f"I-{sku}" if cid == "shop" else None
                made.append(("variants", Variant(external_id=f"V-{sku}", sku=sku, inventory_item_id=item,
                                                 product_external_id=f"P-{sku}", deleted=rng.random() < 0.05)))
        if rng.random() < 0.3:
            sku = rng.choice(SKUS)
            made.append(("variants2", Variant(external_id=f"V-{rng.choice(SKUS)}", sku=sku,
                                              product_external_id=f"P-{sku}",
                                              inventory_item_id=f"I-{rng.choice(SKUS)}" if cid == "shop" else None)))
    return out


def levels(rng: random.Random, n: int, skus: list[str] = SKUS, prefix: str = "L") -> dict[str, list[InventoryLevel]]:
    out: dict[str, list[InventoryLevel]] = {"shop": [], "tills": [], "erp": []}
    for i in range(n):
        cid = rng.choice(list(out))
        sku = rng.choice(skus)
        on_hand = rng.randrange(8)
        fields = {"external_id": f"{prefix}{i}", "location_external_id": rng.choice(LOCATION_IDS[cid]),
                  "on_hand": on_hand if rng.random() < 0.85 else None, "available": rng.randrange(8),
                  "committed": rng.choice([None, 0, 1, 2]), "as_of": at(rng) if rng.random() < 0.9 else None,
                  "deleted": rng.random() < 0.05}
        if cid == "erp":
            fields["sku"] = sku
        elif cid == "tills":
            fields["variant_external_id"] = f"V-{sku}"
        else:
            fields["attributes"] = {"inventory_item_id": f"I-{sku}"}
        out[cid].append(InventoryLevel(**fields))
    return out


def orders(rng: random.Random, n: int, prefix: str = "O", skus: list[str] = SKUS) -> dict[str, list[Order]]:
    out: dict[str, list[Order]] = {"shop": [], "tills": [], "erp": []}
    for i in range(n):
        cid = rng.choice(list(out))
        where = rng.choice([None, None, *LOCATION_IDS[cid]])
        lines = []
        for _ in range(rng.randrange(1, 4)):
            sku = rng.choice(skus)
            by_variant = rng.random() < 0.4
            lines.append(OrderLine(sku=None if by_variant else sku, variant_external_id=f"V-{sku}" if by_variant
                                   else None, quantity=rng.randrange(1, 4),
                                   fulfilled_quantity=rng.choice([None, 0, 1])))
        out[cid].append(Order(external_id=f"{prefix}{i}", currency="HKD", created_at=at(rng),
                              status=rng.choice(["open", "open", "open", "closed"]), deleted=rng.random() < 0.05,
                              location_external_id=where, lines=lines))
    return out


def products(rng: random.Random) -> list[Product]:
    return [Product(external_id=f"P-{sku}", tags=rng.sample(["fragile", "big", "tea"], rng.randrange(3)))
            for sku in SKUS]


def fill(store: Store, rng: random.Random, n_levels: int = 30, n_orders: int = 25) -> None:
    with store.write() as w:
        for cid, made in variants(rng).items():
            for stream in ("variants", "variants2"):
                w.upsert(cid, stream, "variant", [Item(v.external_id, v, None) for s, v in made if s == stream])
            w.upsert(cid, "products", "product", [Item(p.external_id, p, None) for p in products(rng)])
        for cid, rows in levels(rng, n_levels).items():
            w.upsert(cid, "levels", "inventory_level", [Item(x.external_id, x, None) for x in rows])
        placed = orders(rng, n_orders)
        for cid, rows in placed.items():
            w.upsert(cid, "orders", "order", [Item(x.external_id, x, None) for x in rows])
        now = datetime.now(UTC)
        # ERP copies of web orders: the copy is no demand of its own, and the ERP's count knows the web order
        sources = [x.external_id for x in placed["shop"]]
        copies = [{"connector_id": "erp", "source_connector_id": "shop",
                   "source_external_id": rng.choice(sources) if sources and rng.random() < 0.7
                   else f"src{x.external_id}", "reference": x.external_id, "target_id": x.external_id,
                   "state": "created", "first_seen": now, "updated_at": now}
                  for x in placed["erp"] if rng.random() < 0.5]
        copies = list({(c["source_connector_id"], c["source_external_id"]): c for c in copies}.values())
        if copies:
            w.conn.execute(sa.insert(ForwardedOrderRow), copies)
        # what earlier reconciliations decided for some lines: allocated somewhere (demand there from then on),
        # parked or denied (no demand at a location)
        decided = {}
        for cid, rows in placed.items():
            for x in rows:
                for line in x.lines:
                    sku = line.sku or (line.variant_external_id or "")[2:]
                    if rng.random() < 0.3:
                        state = rng.choice(["allocated", "allocated", "preorder", "denied", "backordered"])
                        decided[(cid, x.external_id, sku)] = {
                            "connector_id": cid, "order_id": x.external_id, "sku": sku, "quantity": line.quantity,
                            "placed_at": x.created_at, "state": state, "origin": "order", "updated_at": at(rng),
                            "location": rng.choice(list(SETTINGS["locations"])) if state == "allocated" else None}
        if decided:
            w.conn.execute(sa.insert(AllocationRow), list(decided.values()))


def filled(tmp_path, seed: int) -> tuple[Store, InventorySettings]:
    """A random small SQLite store and settings."""
    rng = random.Random(seed)
    settings = settings_for(rng)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    fill(store, rng)
    return store, settings


def reference(store: Store, settings: InventorySettings):
    # the stored order, except that reports without a time come last: the bulk rule (latest as_of wins, one
    # without a time is the oldest) is the reference's outcome for that order (see core/inventory_bulk.py)
    reports = sorted(load_reports(store), key=lambda r: r.as_of is None)
    return reconcile(settings, reports, load_demand(store), load_tags(store))


def rows(store: Store, table: sa.Table) -> dict[tuple, tuple]:
    keys = [c.name for c in table.primary_key.columns]
    values = [c.name for c in table.columns if c.name not in keys and c.name != "computed_at"]
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(*[table.c[k] for k in keys + values])).all()
    return {tuple(r[:len(keys)]): tuple(r[len(keys):]) for r in found}


def compare_with_reference(store: Store, settings: InventorySettings) -> None:
    result = reconcile_bulk(store, settings)
    ref = reference(store, settings)
    ours = rows(store, POSITION)
    expected = {key: (p.authority, p.on_hand, p.reported_committed, p.uncounted, p.safety_stock, p.available,
                      p.shortfall, p.as_of) for key, p in ref.positions.items()}
    assert ours == expected
    totals: dict[tuple[str, str], int] = {}
    for (sku, channel, _loc), (_item, quantity) in rows(store, TARGET).items():
        totals[(channel, sku)] = totals.get((channel, sku), 0) + quantity
    with store.engine.connect() as conn:
        sold = {(cid, sku) for cid, sku in conn.execute(sa.text(
            "SELECT connector_id, sku FROM variant WHERE NOT deleted AND sku IS NOT NULL"))}
    pushed = {(ch, sku): n for (ch, sku), n in ref.available_to_sell.items()
              if ch in ("shop", "tills") and (ch, sku) in sold}
    assert totals == pushed
    kinds: dict[str, set[str]] = {"oversell": set(), "disagree": set(), "unmapped": set()}
    for conflict in ref.conflicts:
        if conflict.kind == "disagree":
            other = conflict.evidence[1]
            spec = settings.channels.get(other.connector_id)
            if spec is not None and spec.push and conflict.location in spec.locations:
                continue  # storesync writes that channel's level there itself
        kinds[conflict.kind].add(conflict.sku)
    assert {k: set(v) for k, v in result.exceptions.skus.items()} == kinds
    assert result.exceptions.counts == {k: len(v) for k, v in kinds.items()}
    assert result.positions == len(expected) and result.targets == len(rows(store, TARGET))


@pytest.mark.parametrize("seed", range(30))
def test_random_stores_reconcile_as_the_reference_does_on_sqlite(tmp_path, seed: int) -> None:
    compare_with_reference(*filled(tmp_path, seed))


@pytest.mark.postgres
@pytest.mark.parametrize("seed", range(8))
def test_random_stores_reconcile_as_the_reference_does_on_postgresql(pg_url: str, seed: int) -> None:
    rng = random.Random(1000 + seed)
    store = Store(pg_url)
    fill(store, rng)
    compare_with_reference(store, settings_for(rng))
    store.close()


def test_no_target_where_the_channel_is_the_authority_and_waiting_orders_come_off_the_default_first(
        tmp_path) -> None:
    settings = InventorySettings.model_validate({
        "locations": {"cwb": {"authority": "tills", "sources": {"tills": "T1", "shop": "7"}},
                      "wh": {"authority": "erp", "sources": {"erp": "WH", "shop": "9"}},
                      "pop": {"authority": "shop", "sources": {"shop": "5"}}},
        "channels": {"shop": {"locations": ["pop", "wh", "cwb"]}},
        "allocation": {"strategy": "priority", "priority": ["wh"]}})
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.write() as w:
        w.upsert("shop", "variants", "variant", [Item("v1", Variant(external_id="v1", sku="TEA",
                                                                    inventory_item_id="inv1"), None)])
        w.upsert("erp", "levels", "inventory_level", [Item("a", InventoryLevel(
            external_id="a", sku="TEA", location_external_id="WH", on_hand=3, as_of=T0), None)])
        w.upsert("tills", "levels", "inventory_level", [Item("b", InventoryLevel(
            external_id="b", sku="TEA", location_external_id="T1", on_hand=10, as_of=T0), None)])
        w.upsert("shop", "levels", "inventory_level", [Item("c", InventoryLevel(
            external_id="c", sku="TEA", location_external_id="5", on_hand=50, as_of=T0), None)])
        web = Order(external_id="w1", currency="HKD", created_at=T0 + timedelta(minutes=1),
                    lines=[OrderLine(sku="TEA", quantity=5)])
        w.upsert("shop", "orders", "order", [Item("w1", web, None)])
    result = reconcile_bulk(store, settings)
    # "wh" is the shop's default (the first of its locations where it is not the authority): the 5 waiting
    # units take its 3, then 2 of the 10 at "cwb"; nothing is pushed to "pop", where the shop is the truth
    assert rows(store, TARGET) == {("TEA", "shop", "9"): ("inv1", 0), ("TEA", "shop", "7"): ("inv1", 8)}
    assert result.targets == 2 and result.without_variant == {}


def modify(store: Store, rng: random.Random, hot: list[str]) -> None:
    """A few changes of ``hot`` SKUs of every kind: new levels and orders, a deleted order, a changed variant.

    (A stored row that changes its SKU, or an order edited to drop a line, leaves the old SKU stale until the
    next full refresh: ``refresh`` cannot see the SKU a row no longer names.)
    """
    with store.write() as w:
        for cid, made in levels(rng, 4, hot, prefix="N").items():
            w.upsert(cid, "levels", "inventory_level", [Item(x.external_id, x, None) for x in made])
        for cid, made in orders(rng, 3, prefix="N", skus=hot).items():
            w.upsert(cid, "orders", "order", [Item(x.external_id, x, None) for x in made])
        gone = [x.external_id for x in orders(rng, 40, skus=hot)["shop"]][:1]  # O<n>, if it exists, is deleted
        w.tombstone("shop", "orders", "order", gone)
        sku = rng.choice(hot)
        w.upsert("tills", "variants", "variant", [Item(f"V-{sku}", Variant(external_id=f"V-{sku}", sku=sku,
                                                                           title="renamed"), None)])


def computed_at(store: Store) -> dict[str, datetime]:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(POSITION.c.sku, POSITION.c.computed_at)).all())


@pytest.mark.parametrize("seed", range(12))
def test_an_incremental_refresh_leaves_what_a_full_one_computes(tmp_path, seed: int) -> None:
    incremental_equals_full(Store(f"sqlite:///{tmp_path / 'store.db'}"), random.Random(500 + seed))


@pytest.mark.postgres
@pytest.mark.parametrize("seed", range(3))
def test_an_incremental_refresh_leaves_what_a_full_one_computes_on_postgresql(pg_url: str, seed: int) -> None:
    store = Store(pg_url)
    incremental_equals_full(store, random.Random(700 + seed))
    store.close()


def incremental_equals_full(store: Store, rng: random.Random) -> None:
    settings = settings_for(rng)
    fill(store, rng, n_levels=60, n_orders=40)
    assert refresh(store, settings, lookback=timedelta(0)).full
    with store.engine.connect() as conn:
        mark = conn.execute(sa.select(STATE.c.high_water)).scalar_one()
    stamps = computed_at(store)
    modify(store, rng, hot=rng.sample(SKUS, 2))
    with store.engine.connect() as conn:
        expected = changed_skus(conn, mark)
    second = refresh(store, settings, lookback=timedelta(0))
    assert not second.full and second.skus_recomputed == len(expected) < len(SKUS)
    later = computed_at(store)
    assert {s for s in later if later[s] != stamps.get(s)} <= expected
    assert {s for s in stamps if s not in expected} <= {s for s in later if later[s] == stamps[s]}
    after = {t.name: rows(store, t) for t in (POSITION, TARGET, EXCEPTION)}
    reconcile_bulk(store, settings)
    assert after == {t.name: rows(store, t) for t in (POSITION, TARGET, EXCEPTION)}


def test_nothing_changed_recomputes_nothing_and_new_settings_recompute_everything(tmp_path) -> None:
    store, settings = filled(tmp_path, 7)
    assert refresh(store, settings, lookback=timedelta(0)).full
    again = refresh(store, settings, lookback=timedelta(0))
    assert (again.full, again.skus_recomputed, again.positions) == (False, 0, 0)
    changed = InventorySettings.model_validate({**settings.model_dump(), "tolerance": settings.tolerance + 5})
    assert refresh(store, changed, lookback=timedelta(0)).full


def test_exception_skus_finds_the_given_skus_with_an_exception_beyond_the_cap(tmp_path) -> None:
    store, settings = filled(tmp_path, 9)
    result = refresh(store, settings, cap=1)
    with store.engine.connect() as conn:
        stored = set(conn.execute(sa.select(EXCEPTION.c.sku)).scalars())
    assert len(stored) > len(result.exceptions.all_skus())  # the cap left some out of the listing
    assert exception_skus(store, SKUS) == stored and exception_skus(store, []) == set()
    assert exception_skus(store, [*sorted(stored)[-1:], "NO-SUCH-SKU"]) == set(sorted(stored)[-1:])


def test_a_full_refresh_comes_round_when_the_last_one_is_older_than_full_every(tmp_path) -> None:
    store, settings = filled(tmp_path, 8)
    assert refresh(store, settings).full
    assert not refresh(store, settings).full
    assert refresh(store, settings, full_every=timedelta(0)).full


def test_a_write_stamped_before_a_refresh_but_committed_after_it_is_looked_back_at(tmp_path) -> None:
    store, settings = filled(tmp_path, 9)
    refresh(store, settings, full=True)
    with store.engine.begin() as conn:
        mark = conn.execute(sa.select(STATE.c.high_water)).scalar_one()
        level = ENTITY_TABLES["inventory_level"]
        conn.execute(sa.insert(level).values(  # a batch prepared 30 s before the refresh began, committed after it
            connector_id="erp", stream="late", external_id="late", row_hash="h", synced_at=mark - timedelta(seconds=30),
            deleted=False, sku="S0", location_external_id="WH", on_hand=999, as_of=T0 + timedelta(days=1)))
    on_hand = sa.select(POSITION.c.on_hand).where(POSITION.c.sku == "S0", POSITION.c.location == "wh")
    refresh(store, settings, lookback=timedelta(0))
    with store.engine.connect() as conn:
        assert conn.execute(on_hand).scalar_one() != 999  # missed without the look-back
    refresh(store, settings)  # the default look-back reaches 30 s before the last refresh began
    with store.engine.connect() as conn:
        assert conn.execute(on_hand).scalar_one() == 999
