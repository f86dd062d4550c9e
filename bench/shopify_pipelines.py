"""The two pipelines bench_shopify.py compares storesync against, each reading the same Shopify emulator.

    python bench/shopify_pipelines.py baseline BASE_URL TOKEN DB_PATH [--transforms same|minimal]
    python bench/shopify_pipelines.py dlt BASE_URL TOKEN WORK_DIR

* ``baseline``: the hand-written minimal pipeline. One httpx client with keep-alive walks customers, products and
  orders (``status=any``, 250 a page) through the ``Link`` headers, orjson decodes each page, hand-written
  functions map the same fields as ``mappings/shopify.toml``, pydantic validates the canonical models, and
  ``sqlite3.executemany`` upserts each page in one transaction. No raw payload, quarantine, cursor or run log:
  the floor storesync is measured against. ``--transforms same`` (default) calls storesync's own transform
  functions for email, phone, datetime and decimal, so the ratio measures the machinery, not the checks;
  ``minimal`` uses stdlib one-liners (see baseline_pipeline.py).
* ``dlt``: ``dlt.resource``s over dlt's ``RESTClient`` with its ``HeaderLinkPaginator``, ``write_disposition=
  "merge"`` on ``id``, into dlt's duckdb destination: the usual way to write this job with dlt.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import baseline_pipeline as bp  # noqa: E402

from storesync.core.models import Customer, Order, Product  # noqa: E402

API = "/admin/api/2024-07"
CUSTOMER_COLS = ["external_id", "email", "phone", "first_name", "last_name", "city", "country_code", "tags",
                 "sms_consent", "created_at", "updated_at"]
PRODUCT_COLS = ["external_id", "title", "vendor", "product_type", "status", "tags", "created_at", "updated_at"]
VARIANT_COLS = ["external_id", "product_external_id", "sku", "title", "price", "inventory_item_id",
                "inventory_policy", "updated_at"]


def pages(client: httpx.Client, resource: str, params: dict[str, Any]):
    url: str | None = f"{API}/{resource}.json"
    query: dict[str, Any] | None = params
    while url:
        response = client.get(url, params=query)
        response.raise_for_status()
        yield orjson.loads(response.content)[resource]
        url, query = response.links.get("next", {}).get("url"), None


def map_customer(r: dict[str, Any]) -> dict[str, Any]:
    address = r.get("default_address") or {}
    return {"external_id": str(r["id"]), "email": bp._email(r.get("email")), "phone": bp._phone(r.get("phone")),
            "first_name": r.get("first_name"), "last_name": r.get("last_name"), "city": address.get("city"),
            "country_code": (address.get("country_code") or "").upper() or None,
            "tags": [t.strip() for t in (r.get("tags") or "").split(",") if t.strip()],
            "sms_consent": ((r.get("sms_marketing_consent") or {}).get("state") == "subscribed"),
            "created_at": bp._dt(r.get("created_at")), "updated_at": bp._dt(r.get("updated_at"))}


def map_product(r: dict[str, Any]) -> dict[str, Any]:
    return {"external_id": str(r["id"]), "title": r.get("title"), "vendor": r.get("vendor"),
            "product_type": r.get("product_type"), "status": r.get("status"),
            "tags": [t.strip() for t in (r.get("tags") or "").split(",") if t.strip()],
            "created_at": bp._dt(r.get("created_at")), "updated_at": bp._dt(r.get("updated_at")),
            "variants": [{"external_id": str(v["id"]), "product_external_id": str(v["product_id"]),
                          "sku": v.get("sku"), "title": v.get("title"), "price": bp._dec(v.get("price")),
                          "currency": "HKD", "inventory_item_id": str(v["inventory_item_id"]),
                          "inventory_policy": v.get("inventory_policy"), "updated_at": bp._dt(v.get("updated_at"))}
                         for v in r.get("variants") or []]}


def _ts(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def run_baseline(base_url: str, token: str, db: str, transforms: str) -> None:
    if transforms == "same":
        bp._same_transforms()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    tables = {"customer": (CUSTOMER_COLS, ["external_id"]), "product": (PRODUCT_COLS, ["external_id"]),
              "variant": (VARIANT_COLS, ["external_id"]), "orders": (bp.ORDER_COLS, ["external_id"]),
              "order_line": (bp.LINE_COLS, ["order_external_id", "line_id"])}
    sql = {}
    for table, (cols, key) in tables.items():
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(cols)}, UNIQUE ({', '.join(key)}))")
        sql[table] = bp._upsert_sql(table, cols, key, ", ".join("?" * len(cols)))
    with httpx.Client(base_url=base_url, headers={"X-Shopify-Access-Token": token}, timeout=60) as client:
        for page in pages(client, "customers", {"limit": 250}):
            rows = []
            for raw in page:
                c = Customer.model_validate(map_customer(raw))
                rows.append([c.external_id, c.email, c.phone, c.first_name, c.last_name, c.city, c.country_code,
                             orjson.dumps(c.tags).decode(), c.sms_consent, _ts(c.created_at), _ts(c.updated_at)])
            _write(conn, [(sql["customer"], rows)])
        for page in pages(client, "products", {"limit": 250}):
            rows, variants = [], []
            for raw in page:
                p = Product.model_validate(map_product(raw))
                rows.append([p.external_id, p.title, p.vendor, p.product_type, p.status,
                             orjson.dumps(p.tags).decode(), _ts(p.created_at), _ts(p.updated_at)])
                variants += [[v.external_id, v.product_external_id, v.sku, v.title, str(v.price),
                              v.inventory_item_id, v.inventory_policy, _ts(v.updated_at)] for v in p.variants]
            _write(conn, [(sql["product"], rows), (sql["variant"], variants)])
        for page in pages(client, "orders", {"limit": 250, "status": "any"}):
            rows, lines = [], []
            for raw in page:
                row, line_rows = bp.rows_of(Order.model_validate(bp.map_order(raw)), sqlite=True)
                rows.append(row)
                lines += line_rows
            _write(conn, [(sql["orders"], rows), (sql["order_line"], lines)])
    conn.close()


def _write(conn: sqlite3.Connection, batches: list[tuple[str, list]]) -> None:
    conn.execute("BEGIN")
    for statement, rows in batches:
        conn.executemany(statement, rows)
    conn.execute("COMMIT")


def run_dlt(base_url: str, token: str, work: str) -> None:
    import dlt
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator

    client = RESTClient(base_url=base_url + API, headers={"X-Shopify-Access-Token": token},
                        paginator=HeaderLinkPaginator())

    def resource(name: str, **params: Any):
        @dlt.resource(name=name, write_disposition="merge", primary_key="id")
        def read():
            yield from client.paginate(f"/{name}.json", params={"limit": 250, **params}, data_selector=name)
        return read

    pipeline = dlt.pipeline(pipeline_name="shopify_bench", pipelines_dir=str(Path(work) / "pipelines"),
                            destination=dlt.destinations.duckdb(str(Path(work) / "shopify.duckdb")),
                            dataset_name="shop", progress=None)
    pipeline.run([resource("customers")(), resource("products")(), resource("orders", status="any")()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["baseline", "dlt"])
    parser.add_argument("base_url")
    parser.add_argument("token")
    parser.add_argument("target")
    parser.add_argument("--transforms", choices=["same", "minimal"], default="same")
    args = parser.parse_args()
    if args.which == "baseline":
        run_baseline(args.base_url, args.token, args.target, args.transforms)
    else:
        run_dlt(args.base_url, args.token, args.target)


if __name__ == "__main__":
    main()
