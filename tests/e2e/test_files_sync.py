"""The ``files`` connector end to end, through the real CLI: incremental syncs, quarantine and retry, the README job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from e2e_support import (
    CUSTOMER_HEADER,
    DEFAULT_MAPPING,
    REPO,
    append_orders,
    customer_row,
    explain,
    parse_json,
    rows,
    scalar,
    shopify_order,
    stream_report,
    sync,
    unique_id,
    write_customers,
    write_jsonl,
    write_project,
)


def _counts(s: dict) -> tuple[int, int, int, int]:
    return s["inserted"], s["updated"], s["quarantined"], s["deleted"]


def test_second_sync_inserts_nothing_and_appended_rows_are_inserted_once(cli, store_url: str,
                                                                         tmp_path: Path) -> None:
    cid = unique_id()
    write_project(tmp_path, store_url, cid, {"customers": "customers*.csv", "orders": "orders*.jsonl"})
    exports = tmp_path / "exports"
    write_customers(exports / "customers.csv", 0, 20)
    write_jsonl(exports / "orders.jsonl", 20)

    first = sync(cli, tmp_path)
    assert first[0]["status"] == "ok"
    assert _counts(stream_report(first, "customers")) == (20, 0, 0, 0)
    assert _counts(stream_report(first, "orders")) == (20, 0, 0, 0)

    second = sync(cli, tmp_path)
    for stream in ("customers", "orders"):
        assert _counts(stream_report(second, stream)) == (0, 0, 0, 0), second

    # 10 more customers appended to the CSV: exactly those 10 are inserted, nothing updated
    write_customers(exports / "customers.csv", 20, 10, header=False, append=True)
    third = sync(cli, tmp_path)
    customers = stream_report(third, "customers")
    assert _counts(customers) == (10, 0, 0, 0), third
    assert customers["read"] == 10, "only the appended rows should be read"
    assert _counts(stream_report(third, "orders")) == (0, 0, 0, 0), third

    # separately, 10 more orders appended to the JSON Lines file
    append_orders(exports / "orders.jsonl", 20, 10)
    fourth = sync(cli, tmp_path)
    orders = stream_report(fourth, "orders")
    assert _counts(orders) == (10, 0, 0, 0), fourth
    assert orders["read"] == 10, "only the appended lines should be read"
    assert _counts(stream_report(fourth, "customers")) == (0, 0, 0, 0), fourth

    status = parse_json(cli("status", "--json", cwd=tmp_path))
    assert status["records"]["customer"] == 30
    assert status["records"]["order"] == 30
    assert scalar(store_url, "SELECT COUNT(*) FROM order_line") == 30 * 3
    assert rows(store_url, "SELECT external_id, COUNT(*) FROM customer GROUP BY external_id HAVING COUNT(*) > 1") == []

    fifth = sync(cli, tmp_path)
    for stream in ("customers", "orders"):
        assert _counts(stream_report(fifth, stream)) == (0, 0, 0, 0), fifth


def test_bad_rows_are_quarantined_with_a_reason_and_retried_after_a_mapping_fix(cli, store_url: str,
                                                                                tmp_path: Path) -> None:
    cid = unique_id()
    mapping = tmp_path / "my.toml"
    shutil.copy(DEFAULT_MAPPING, mapping)
    write_project(tmp_path, store_url, cid, {"customers": "customers*.csv", "orders": "orders*.jsonl"},
                  mapping="my.toml")
    exports = tmp_path / "exports"
    no_total = shopify_order(5)
    del no_total["total_price"]
    lines = [json.dumps(shopify_order(i)) for i in range(5)]
    lines.insert(2, json.dumps(no_total))
    lines.insert(4, '{"id": 99, "name": broken')  # line 5 of the file
    (exports / "orders.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (exports / "customers.csv").write_text("\n".join([CUSTOMER_HEADER, customer_row(1),
                                                      customer_row(2, email="not-an-email"),
                                                      customer_row(3)]) + "\n", encoding="utf-8")

    first = sync(cli, tmp_path, expect=1)
    assert first[0]["status"] == "quarantined"
    assert _counts(stream_report(first, "orders"))[:3] == (5, 0, 2)
    assert _counts(stream_report(first, "customers"))[:3] == (2, 0, 1)
    status = parse_json(cli("status", "--json", cwd=tmp_path))
    assert (status["records"]["order"], status["records"]["customer"]) == (5, 2)

    listed = parse_json(cli("quarantine", "list", cid, "--json", cwd=tmp_path))
    by_key = {(q["stream"], q["external_id"]): q for q in listed}
    assert len(listed) == 3, listed
    total = by_key[("orders", str(no_total["id"]))]
    assert total["field"] == "total" and "total" in total["reason"], total
    email = by_key[("customers", "C00002")]
    assert email["field"] == "email" and "email" in email["reason"], email
    assert email["raw"]["email"] == "not-an-email"
    (broken,) = [q for q in listed if q["stream"] == "orders" and q["field"] is None]
    assert "invalid JSON" in broken["reason"] and "line 5" in broken["reason"], broken
    assert "broken" in json.dumps(broken["raw"])

    # fix the mapping: total_price no longer required; customers' email no longer mapped
    text = mapping.read_text(encoding="utf-8")
    fixed = text.replace('total = { path = "total_price", transform = "decimal", required = true }',
                         'total = { path = "total_price", transform = "decimal" }')
    fixed = fixed.replace('email = { path = "email", transform = "email" }\n', "", 1)
    assert fixed.count("required = true") == text.count("required = true") - 1
    assert "transform = \"email\" }\n" not in fixed.split("[products]")[0]
    mapping.write_text(fixed, encoding="utf-8")

    # customers only: everything quarantined there is fixable -> nothing remains -> exit 0
    proc = cli("quarantine", "retry", cid, "--stream", "customers", "--json", cwd=tmp_path)
    assert proc.returncode == 0, explain(proc)
    assert _counts(stream_report(parse_json(proc), "customers"))[:3] == (1, 0, 0)

    # all streams: the order without a total lands; the broken JSON line can never be fixed by a mapping
    proc = cli("quarantine", "retry", cid, "--json", cwd=tmp_path)
    assert proc.returncode == 1, explain(proc)
    assert _counts(stream_report(parse_json(proc), "orders"))[:3] == (1, 0, 1)
    status = parse_json(cli("status", "--json", cwd=tmp_path))
    assert (status["records"]["order"], status["records"]["customer"]) == (6, 3)
    assert scalar(store_url, "SELECT total FROM orders WHERE external_id = :e", e=str(no_total["id"])) is None
    assert scalar(store_url, "SELECT email FROM customer WHERE external_id = 'C00002'") is None

    remaining = parse_json(cli("quarantine", "list", cid, "--json", cwd=tmp_path))
    assert [(q["stream"], q["record_key"]) for q in remaining] == [("orders", broken["record_key"])]
    assert remaining[0]["attempts"] == 2
    assert "line" in remaining[0]["reason"] and "invalid JSON" in remaining[0]["reason"]  # the reason survives retries
    assert "broken" in json.dumps(remaining[0]["raw"])

    # still there after another retry; a normal sync finds nothing new and succeeds
    assert cli("quarantine", "retry", cid, cwd=tmp_path).returncode == 1
    assert len(parse_json(cli("quarantine", "list", cid, "--json", cwd=tmp_path))) == 1
    again = sync(cli, tmp_path)
    assert _counts(stream_report(again, "orders")) == (0, 0, 0, 0)


def test_readme_example_config_syncs_all_four_streams(cli, tmp_path: Path) -> None:
    shutil.copy(REPO / "plugins.toml", tmp_path / "plugins.toml")
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    proc = cli("sync", "--json", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, explain(proc)
    (report,) = parse_json(proc)
    assert report["status"] == "ok" and report["error"] is None
    streams = {s["stream"]: s for s in report["streams"]}
    assert set(streams) == {"customers", "products", "inventory", "orders"}
    for name, s in streams.items():
        assert s["read"] > 0 and s["inserted"] == s["read"], (name, s)
        assert (s["quarantined"], s["error"]) == (0, None), (name, s)
    records = parse_json(cli("status", "--json", cwd=tmp_path))["records"]
    assert records["customer"] == streams["customers"]["inserted"]
    assert records["variant"] == streams["products"]["inserted"]
    assert records["inventory_level"] == streams["inventory"]["inserted"]
    assert records["order"] == streams["orders"]["inserted"]
    assert (tmp_path / "storesync.db").is_file(), "the relative SQLite path resolves next to plugins.toml"

    # the human-readable form works too (no --json), and a second run has nothing to insert
    proc = cli("sync", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, explain(proc)
    assert "cwb_till" in proc.stdout and "Traceback" not in proc.stderr
