"""The ``shopify`` connector end to end: the real CLI syncing from the local Shopify emulator into SQLite/PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))

from e2e_support import explain, parse_json, rows, scalar  # noqa: E402

from storesync.connectors.shopify.emulator import Faults, LeakyBucket, ShopifyEmulator  # noqa: E402

TOKEN = "shpat_e2e_token_1234567890"
STREAMS = ("customers", "products", "orders", "locations", "inventory_levels")
TABLES = {"customers": "customer", "products": "product", "orders": "orders", "locations": "location",
          "inventory_levels": "inventory_level"}


def project(root: Path, database: str, connectors: dict[str, dict]) -> None:
    """plugins.toml with one shopify connector per entry (id -> settings; an `http` dict becomes a subtable)."""
    lines = ["[storesync]", f"database = {json.dumps(database)}", "batch_size = 200"]
    for cid, settings in connectors.items():
        http = settings.pop("http", None)
        lines += ["", f"[connectors.{cid}]", 'type = "shopify"', 'shop = "harbour-goods-hk.myshopify.com"',
                  'access_token = "${SHOPIFY_TOKEN}"']
        lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
        if http:
            lines += ["", f"[connectors.{cid}.http]", *(f"{k} = {json.dumps(v)}" for k, v in http.items())]
    root.mkdir(parents=True, exist_ok=True)
    (root / "plugins.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def sync(cli, root: Path, *args: str) -> dict[str, dict]:
    """Run one sync; exit 0 expected; return {stream: report} of the (single) connector."""
    proc = cli("sync", "--json", "--no-progress", *args, cwd=root, env={"SHOPIFY_TOKEN": TOKEN}, timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert TOKEN not in proc.stdout + proc.stderr
    (report,) = parse_json(proc)
    assert report["status"] == "ok", report
    return {s["stream"]: s for s in report["streams"]}


def cid() -> str:
    return f"web_{uuid.uuid4().hex[:8]}"


def count(url: str, table: str, connector: str) -> int:
    return scalar(url, f"SELECT count(*) FROM {table} WHERE connector_id = :c", c=connector)


def expected_counts(shop: ShopifyEmulator) -> dict[str, int]:
    s = shop.store
    return {"customers": len(s.customers), "products": len(s.products), "orders": len(s.orders),
            "locations": len(s.locations), "inventory_levels": len(s.inventory_levels)}


def assert_store_matches(url: str, connector: str, shop: ShopifyEmulator) -> None:
    for stream, n in expected_counts(shop).items():
        assert count(url, TABLES[stream], connector) == n, stream
    assert count(url, "variant", connector) == len(shop.store.variants)
    lines = sum(len(shop.store.orders[k]["line_items"]) for k in shop.store.orders)
    assert count_lines(url, connector) == lines


def count_lines(url: str, connector: str) -> int:
    return scalar(url, "SELECT count(*) FROM order_line l JOIN orders o ON o.id = l.order_id "
                       "WHERE o.connector_id = :c", c=connector)


def test_full_then_incremental_sync(cli, store_url: str, tmp_path: Path) -> None:
    web = cid()
    with ShopifyEmulator(orders=300, seed=11, token=TOKEN, rate_limit=None) as shop:
        project(tmp_path, store_url, {web: {"base_url": shop.base_url, "page_size": 25, "pacing": False}})

        first = sync(cli, tmp_path)
        first_requests = shop.requests.total
        for stream, n in expected_counts(shop).items():
            assert (first[stream]["inserted"], first[stream]["quarantined"]) == (n, 0), (stream, first[stream])
        assert_store_matches(store_url, web, shop)
        assert shop.requests["orders.json"] == 12  # 300 orders in pages of 25
        assert shop.requests["shop.json"] == 0

        second = sync(cli, tmp_path)
        for stream in STREAMS:
            assert (second[stream]["inserted"], second[stream]["updated"]) == (0, 0), (stream, second[stream])
        second_requests = shop.requests.total - first_requests

        touched = shop.store.orders.keys[10:13]
        for key in touched:
            shop.touch("orders", key)
        customer = shop.store.customers.keys[5]
        shop.touch("customers", customer)
        before = shop.requests.total
        third = sync(cli, tmp_path)
        third_requests = shop.requests.total - before

    assert (third["orders"]["inserted"], third["orders"]["updated"]) == (0, 3), third["orders"]
    assert (third["customers"]["inserted"], third["customers"]["updated"]) == (0, 1), third["customers"]
    for stream in ("products", "locations", "inventory_levels"):
        assert (third[stream]["inserted"], third[stream]["updated"]) == (0, 0), (stream, third[stream])
    assert third["orders"]["read"] <= 10  # only what changed since the cursor, not all 300
    stamps = {r[0] for r in rows(store_url, "SELECT external_id FROM orders WHERE connector_id = :c "
                                            "ORDER BY updated_at DESC LIMIT 3", c=web)}
    assert stamps == {str(k) for k in touched}
    assert third_requests <= second_requests <= 8 and third_requests * 3 < first_requests, \
        (first_requests, second_requests, third_requests)
    assert_store_matches(store_url, web, shop)


def test_paced_sync_under_a_tight_leaky_bucket_loses_nothing(cli, store_url: str, tmp_path: Path) -> None:
    web = cid()
    # a bucket of 10 leaking 20/s: ~100 requests cannot fit without pacing; the pacer keeps under it
    with ShopifyEmulator(orders=300, seed=12, token=TOKEN, rate_limit=LeakyBucket(10, 20.0)) as shop:
        project(tmp_path, store_url, {web: {"base_url": shop.base_url, "page_size": 5, "pacing": True,
                                            "bucket_size": 10, "leak_rate": 20.0,
                                            "http": {"max_retries": 8, "retry_budget": 50}}})
        reports = sync(cli, tmp_path)
        made = shop.requests.total
    assert made >= 90, made
    for stream, n in expected_counts(shop).items():
        assert (reports[stream]["inserted"], reports[stream]["quarantined"]) == (n, 0), stream
    assert_store_matches(store_url, web, shop)
    # every page was asked for once: pacing avoided the 429s (each would have been a logged extra request)
    pages = -(-300 // 5) + -(-len(shop.store.customers) // 5) + -(-len(shop.store.products) // 5)
    assert shop.requests["orders.json"] + shop.requests["customers.json"] + shop.requests["products.json"] \
        <= pages + 2, shop.requests


@pytest.mark.slow
@pytest.mark.parametrize("pacing", [True, False], ids=["paced", "unpaced"])
def test_a_standard_plan_bucket_never_fails_the_sync(cli, tmp_path: Path, pacing: bool) -> None:
    """Shopify's real Standard plan: a bucket of 40 leaking 2 calls/s, and ~70 calls to make.

    Paced, storesync stays under the bucket; unpaced, it runs into 429s and waits out each Retry-After.
    Either way every record lands and the run succeeds.
    """
    web, url = cid(), f"sqlite:///{tmp_path / 'standard.db'}"
    bucket = LeakyBucket(40, 2.0)
    with ShopifyEmulator(orders=120, seed=14, token=TOKEN, rate_limit=bucket) as shop:
        project(tmp_path, url, {web: {"base_url": shop.base_url, "page_size": 5, "pacing": pacing,
                                      "bucket_size": 40, "leak_rate": 2.0,
                                      "http": {"max_retries": 10, "retry_budget": 200}}})
        reports = sync(cli, tmp_path)
        made = shop.requests.total
    assert made - bucket.refused > 40, made  # more calls than the bucket holds
    if pacing:
        assert bucket.refused <= 2, bucket.refused
    else:
        assert bucket.refused > 0
    for stream, n in expected_counts(shop).items():
        assert (reports[stream]["inserted"], reports[stream]["quarantined"]) == (n, 0), stream
    assert_store_matches(url, web, shop)


def test_faults_end_in_the_same_store_as_a_clean_run(cli, store_url: str, tmp_path: Path) -> None:
    clean, faulty = cid(), cid()
    http = {"max_retries": 8, "retry_budget": 1000, "backoff_base": 0.01, "backoff_max": 0.05,
            "read_timeout": 5.0}
    with ShopifyEmulator(orders=200, seed=13, token=TOKEN, rate_limit=None) as good, \
            ShopifyEmulator(orders=200, seed=13, token=TOKEN, rate_limit=None,
                            faults=Faults(error_rate=0.10, truncate_rate=0.05, seed=5)) as bad:
        project(tmp_path / "clean", store_url, {clean: {"base_url": good.base_url, "page_size": 20,
                                                        "pacing": False}})
        project(tmp_path / "faulty", store_url, {faulty: {"base_url": bad.base_url, "page_size": 20,
                                                          "pacing": False, "http": http}})
        sync(cli, tmp_path / "clean")
        sync(cli, tmp_path / "faulty")
        clean_requests, faulty_requests = good.requests.total, bad.requests.total

    assert faulty_requests > clean_requests  # faults happened and were retried
    for table in ("orders", "customer", "product", "variant", "inventory_level", "location"):
        sql = f"SELECT external_id, row_hash FROM {table} WHERE connector_id = :c"
        want, got = set(rows(store_url, sql, c=clean)), set(rows(store_url, sql, c=faulty))
        assert want and got == want, table
    assert count_lines(store_url, faulty) == count_lines(store_url, clean) > 0


def test_the_emulator_started_as_a_user_would_and_its_printed_table_sync(cli, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "storesync.connectors.shopify.emulator", "--orders", "120",
                             "--token", TOKEN], stdout=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        while "[connectors.shop]\n" not in lines or lines[-1].strip():  # the banner, then the table to its end
            line = proc.stdout.readline()
            assert line, f"the emulator stopped printing: {lines}"
            lines.append(line)
        table = "".join(lines[lines.index("[connectors.shop]\n"):])
        (tmp_path / "plugins.toml").write_text(f'[storesync]\ndatabase = "sqlite:///{tmp_path / "s.db"}"\n\n{table}',
                                               encoding="utf-8")
        first = sync(cli, tmp_path)
        second = sync(cli, tmp_path)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert first["orders"]["inserted"] == 120 and first["customers"]["inserted"] > 0
    assert all(s["inserted"] == 0 and s["updated"] == 0 for s in second.values())
