"""The ``square`` connector end to end: the real CLI syncing from the local Square emulator into SQLite/PostgreSQL,
stock pushed back through the emulator, and webhook events resolved to the records the streams yield."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))

from e2e_support import explain, parse_json, rows, scalar  # noqa: E402

from storesync.connectors.pos import SquareConnector, SquareSettings  # noqa: E402
from storesync.connectors.pos.emulator import Faults, LeakyBucket, SquareEmulator  # noqa: E402
from storesync.core.capabilities import StockUpdate  # noqa: E402
from storesync.core.connector import ConnectorContext  # noqa: E402

TOKEN = "sq_e2e_token_abcdef0123456789"
TABLES = {"locations": "location", "catalog": "product", "inventory": "inventory_level", "orders": "orders",
          "customers": "customer"}


def project(root: Path, database: str, connectors: dict[str, dict]) -> None:
    """plugins.toml with one square connector per entry (id -> settings; an `http` dict becomes a subtable)."""
    lines = ["[storesync]", f"database = {json.dumps(database)}", "batch_size = 200"]
    for cid, settings in connectors.items():
        http = settings.pop("http", None)
        lines += ["", f"[connectors.{cid}]", 'type = "square"', 'access_token = "${SQUARE_TOKEN}"']
        lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
        if http:
            lines += ["", f"[connectors.{cid}.http]", *(f"{k} = {json.dumps(v)}" for k, v in http.items())]
    root.mkdir(parents=True, exist_ok=True)
    (root / "plugins.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def sync(cli, root: Path, *args: str) -> dict[str, dict]:
    """Run one sync; exit 0 expected; return {stream: report} of the (single) connector."""
    proc = cli("sync", "--json", "--no-progress", *args, cwd=root, env={"SQUARE_TOKEN": TOKEN}, timeout=180)
    assert proc.returncode == 0, explain(proc)
    assert TOKEN not in proc.stdout + proc.stderr
    (report,) = parse_json(proc)
    assert report["status"] == "ok", report
    return {s["stream"]: s for s in report["streams"]}


def cid() -> str:
    return f"tills_{uuid.uuid4().hex[:8]}"


def count(url: str, table: str, connector: str) -> int:
    return scalar(url, f"SELECT count(*) FROM {table} WHERE connector_id = :c", c=connector)


def expected(pos: SquareEmulator) -> dict[str, int]:
    s = pos.store
    return {"locations": len(s.locations), "catalog": len(s.items), "orders": len(s.orders),
            "inventory": len({(k[0], k[1]) for k in s.ledger.counts}), "customers": len(s.customers)}


def order_lines(url: str, connector: str) -> int:
    return scalar(url, "SELECT count(*) FROM order_line l JOIN orders o ON o.id = l.order_id "
                       "WHERE o.connector_id = :c", c=connector)


def assert_store_matches(url: str, connector: str, pos: SquareEmulator) -> None:
    for stream, n in expected(pos).items():
        assert count(url, TABLES[stream], connector) == n, stream
    assert count(url, "variant", connector) == len(pos.store.variation_item)
    lines = sum(len(json.loads(raw)["line_items"]) for raw in pos.store.orders.values())
    assert order_lines(url, connector) == lines


def on_hand(url: str, connector: str, variation: str, location: str) -> int:
    return scalar(url, "SELECT on_hand FROM inventory_level WHERE connector_id = :c AND variant_external_id = :v "
                       "AND location_external_id = :l", c=connector, v=variation, l=location)


def test_sync_tills_full_then_incremental(cli, store_url: str, tmp_path: Path) -> None:
    with SquareEmulator(orders=300, seed=21, token=TOKEN) as pos:
        project(tmp_path, store_url, {"tills": {"base_url": pos.base_url, "order_page_size": 40,
                                                "customer_page_size": 30}})
        first = sync(cli, tmp_path, "tills")
        first_requests = pos.requests.total
        for stream, n in expected(pos).items():
            assert (first[stream]["inserted"], first[stream]["quarantined"]) == (n, 0), (stream, first[stream])
        assert_store_matches(store_url, "tills", pos)
        assert pos.requests["/v2/orders/search"] == 8  # 300 orders in pages of 40

        second = sync(cli, tmp_path, "tills")
        for stream in TABLES:
            assert (second[stream]["inserted"], second[stream]["updated"]) == (0, 0), (stream, second[stream])
        assert second["orders"]["read"] <= 3 and second["customers"]["read"] <= 3
        second_requests = pos.requests.total - first_requests

        orders = [oid for _u, oid in pos.store.order_index[100:103]]
        for oid in orders:
            pos.touch("orders", oid, state="COMPLETED")
        pos.touch("customers", pos.store.customer_ids[7], given_name="Renamed")
        item = next(iter(pos.store.items))
        pos.touch("catalog", item, is_deleted=True)
        variation, location = pos.store.items[item]["item_data"]["variations"][0]["id"], pos.store.location_ids[0]
        pos.sell(variation, location, 2)
        before = pos.requests.total
        third = sync(cli, tmp_path, "tills")
        third_requests = pos.requests.total - before

        assert on_hand(store_url, "tills", variation, location) == pos.in_stock(variation, location)
    assert (third["orders"]["inserted"], third["orders"]["updated"]) == (0, 3), third["orders"]
    assert (third["customers"]["updated"], third["catalog"]["updated"], third["inventory"]["updated"]) == (1, 1, 1)
    assert third["orders"]["read"] <= 6 and third["locations"]["updated"] == 0
    assert scalar(store_url, "SELECT deleted FROM product WHERE connector_id = 'tills' AND external_id = :i",
                  i=item) in (1, True)
    deleted_variants = rows(store_url, "SELECT external_id FROM variant WHERE connector_id = 'tills' AND deleted = :t",
                            t=True)
    assert {v for (v,) in deleted_variants} == {v["id"] for v in pos.store.items[item]["item_data"]["variations"]}
    assert third_requests <= second_requests + 2 and third_requests * 2 < first_requests, \
        (first_requests, second_requests, third_requests)
    assert_store_matches(store_url, "tills", pos)


def test_faults_and_rate_limits_end_in_the_same_store_as_a_clean_run(cli, store_url: str, tmp_path: Path) -> None:
    clean, faulty = cid(), cid()
    http = {"max_retries": 10, "retry_budget": 2000, "backoff_base": 0.01, "backoff_max": 0.05, "read_timeout": 5.0}
    with SquareEmulator(orders=250, seed=22, token=TOKEN) as good, \
            SquareEmulator(orders=250, seed=22, token=TOKEN, rate_limit=LeakyBucket(3, 20.0),
                           faults=Faults(error_rate=0.12, truncate_rate=0.06, seed=5)) as bad:
        settings = {"order_page_size": 20, "customer_page_size": 15, "count_page_size": 50, "catalog_page_size": 10}
        project(tmp_path / "clean", store_url, {clean: {"base_url": good.base_url, **settings}})
        project(tmp_path / "faulty", store_url, {faulty: {"base_url": bad.base_url, **settings, "http": http}})
        sync(cli, tmp_path / "clean")
        sync(cli, tmp_path / "faulty")
        clean_requests, faulty_requests, refused = good.requests.total, bad.requests.total, bad.rate_limit.refused
        assert_store_matches(store_url, faulty, bad)

    assert refused > 0 and faulty_requests > clean_requests + refused  # 429s and faults happened, were retried
    for table in ("orders", "customer", "product", "variant", "inventory_level", "location"):
        sql = f"SELECT external_id, row_hash FROM {table} WHERE connector_id = :c"
        want, got = set(rows(store_url, sql, c=clean)), set(rows(store_url, sql, c=faulty))
        assert want and got == want, table
    assert order_lines(store_url, faulty) == order_lines(store_url, clean) > 0


def connector(pos: SquareEmulator, **settings) -> SquareConnector:
    values = {"access_token": TOKEN, "base_url": pos.base_url, **settings}
    return SquareConnector("tills", SquareSettings.model_validate(values), ConnectorContext())


def test_push_from_stored_rows_applies_once_per_key_and_refuses_stale_expectations(cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with SquareEmulator(orders=100, seed=23, token=TOKEN) as pos:
        project(tmp_path, url, {"tills": {"base_url": pos.base_url}})
        sync(cli, tmp_path)
        # what the inventory reconciler has: the variant's inventory_item_id and the location's external_id
        (item_id, location_id, stored), *_ = rows(url, """
            SELECT v.inventory_item_id, l.external_id, i.on_hand FROM variant v
            JOIN inventory_level i ON i.variant_external_id = v.external_id AND i.connector_id = v.connector_id
            JOIN location l ON l.external_id = i.location_external_id AND l.connector_id = i.connector_id
            WHERE v.connector_id = 'tills' ORDER BY v.external_id, l.external_id""")
        assert stored == pos.in_stock(item_id, location_id)
        conn = connector(pos)
        update = StockUpdate(item_id=item_id, location_id=location_id, quantity=stored + 10, expected=stored,
                             idempotency_key="push-1")
        (first,) = conn.push_inventory([update])
        (again,) = conn.push_inventory([update])  # a retried push, a second later: occurred_at differs
        assert (first.status, first.actual) == ("applied", stored + 10)
        assert pos.in_stock(item_id, location_id) == stored + 10
        assert (again.status, again.detail) == ("applied", "already at this quantity")  # no second write
        plain = StockUpdate(item_id=item_id, location_id=location_id, quantity=5, idempotency_key="push-2")
        assert conn.push_inventory([plain])[0].status == "applied"
        pos.sell(item_id, location_id, 1)
        (replayed,) = conn.push_inventory([plain])  # same key later: Square refuses it, the sale stays
        assert replayed.status == "failed" and "IDEMPOTENCY_KEY_REUSED" in replayed.detail
        assert pos.in_stock(item_id, location_id) == 4
        (stale,) = conn.push_inventory([StockUpdate(item_id=item_id, location_id=location_id, quantity=50,
                                                    expected=5, idempotency_key="push-3")])
        assert (stale.status, stale.actual) == ("conflict", 4) and pos.in_stock(item_id, location_id) == 4
        keys = [w.body["idempotency_key"] for w in pos.writes]
        assert keys == ["push-1", "push-2"]  # the refused replay wrote nothing


def test_push_through_cut_short_replies_changes_stock_once_per_key() -> None:
    with SquareEmulator(orders=100, seed=25, token=TOKEN, faults=Faults(truncate_rate=0.5, error_rate=0.2,
                                                                         seed=3)) as pos:
        conn = connector(pos, http={"max_retries": 10, "backoff_base": 0.01, "backoff_max": 0.02})
        pairs = sorted({k[:2] for k in pos.store.ledger.counts})[:12]
        updates = [StockUpdate(item_id=v, location_id=loc, quantity=100 + i, idempotency_key=f"cut-{i}")
                   for i, (v, loc) in enumerate(pairs)]
        outcomes = conn.push_inventory(updates)
        assert [o.status for o in outcomes] == ["applied"] * len(updates)
        assert [pos.in_stock(v, loc) for v, loc in pairs] == [u.quantity for u in updates]
        keys = [w.body["idempotency_key"] for w in pos.writes]
        assert len(keys) > len(updates)  # some replies were cut short and the same request was sent again
        for v, loc in pairs:  # ... yet each key recorded one physical count (plus the opening count)
            entries = pos.store.ledger.entries[(v, loc, "IN_STOCK")]
            assert sum(e.is_count for e in entries) == 2


def test_webhook_events_resolve_to_what_the_streams_yield() -> None:
    with SquareEmulator(orders=60, seed=24, token=TOKEN) as pos:
        conn = connector(pos)
        oid = pos.store.order_index[5][1]
        variation, location = next(iter(pos.store.ledger.counts))[:2]
        order_event = {"event_id": "ev-1", "type": "order.updated", "merchant_id": pos.store.merchant_id,
                       "data": {"type": "order_updated", "id": oid, "object": {"order_updated": {"order_id": oid}}}}
        count_event = {"event_id": "ev-2", "type": "inventory.count.updated", "data": {"object": {
            "inventory_counts": [{"catalog_object_id": variation, "location_id": location, "state": "IN_STOCK",
                                  "quantity": "1", "calculated_at": "2025-01-01T00:00:00.000Z"}]}}}
        (order,) = conn.resolve_event(json.dumps(order_event)).records
        (level,) = conn.resolve_event(count_event).records
        streamed_orders = {o["id"]: o for o in conn.stream("orders").read(None)}
        streamed_levels = {r["id"]: r for r in conn.stream("inventory").read(None)}
    assert order == ("orders", streamed_orders[oid])
    assert level == ("inventory", streamed_levels[f"{variation}@{location}"])
