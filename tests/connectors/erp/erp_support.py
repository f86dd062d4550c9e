"""Helpers of the ``odoo`` end-to-end tests: a plugins.toml writer, running the CLI, order files."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))

from e2e_support import explain, parse_json, scalar, shopify_order  # noqa: E402

from storesync.connectors.erp.emulator import OdooEmulator  # noqa: E402

KEY = "odoo_e2e_key_0123456789abcdef"
TABLES = {"partners": "customer", "products": "variant", "locations": "location", "quants": "inventory_level",
          "sale_orders": "orders"}
FAST_HTTP = {"max_retries": 10, "retry_budget": 2000, "backoff_base": 0.01, "backoff_max": 0.05, "read_timeout": 10.0}


def project(root: Path, database: str, erp_id: str, odoo: OdooEmulator, *, transport: str = "jsonrpc",
            shop: str | None = None, **settings: object) -> None:
    """plugins.toml with one odoo connector (and, with ``shop``, a files connector whose orders it takes)."""
    http = settings.pop("http", None)
    lines = ["[storesync]", f"database = {json.dumps(database)}", "batch_size = 50", "",
             f"[connectors.{erp_id}]", 'type = "odoo"', f'url = "{odoo.url}"', f'database = "{odoo.database}"',
             f'login = "{odoo.login}"', 'api_key = "${ODOO_API_KEY}"', f'transport = "{transport}"']
    if shop:
        lines.append(f'forward_orders_from = ["{shop}"]')
    lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    if http:
        lines += ["", f"[connectors.{erp_id}.http]", *(f"{k} = {json.dumps(v)}" for k, v in http.items())]
    if shop:
        lines += ["", f"[connectors.{shop}]", 'type = "files"', 'directory = "exports"', "",
                  f"[connectors.{shop}.files.orders]", 'pattern = "orders*.jsonl"']
        (root / "exports").mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / "plugins.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(cli, root: Path, *args: str, expect: int = 0) -> list[dict]:
    proc = cli(*args, "--json", cwd=root, env={"ODOO_API_KEY": KEY}, timeout=180)
    assert proc.returncode == expect, explain(proc)
    assert KEY not in proc.stdout + proc.stderr
    return parse_json(proc)


def streams(report: dict) -> dict[str, dict]:
    return {s["stream"]: s for s in report["streams"]}


def erp_id() -> str:
    return f"erp_{uuid.uuid4().hex[:8]}"


def count(url: str, table: str, connector: str) -> int:
    return scalar(url, f"SELECT count(*) FROM {table} WHERE connector_id = :c", c=connector)


def write_orders(root: Path, numbers: range, *, name: str = "orders.jsonl", unknown_sku: bool = False) -> None:
    with open(root / "exports" / name, "w", encoding="utf-8") as fh:
        for i in numbers:
            order = shopify_order(i)
            if unknown_sku:
                order["line_items"][0]["sku"] = "NOT-IN-ODOO"
            fh.write(json.dumps(order) + "\n")
