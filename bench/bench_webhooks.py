"""Webhooks accepted per second by ``storesync serve``, and latency from a web sale to the tills' stock.

    python bench/bench_webhooks.py [--deliveries 2000] [--concurrency 4] [--sales 10]

1. **Accepted per second.** ``storesync serve`` (a real process, SQLite store) receives ``--deliveries`` signed
   Shopify ``orders/create`` deliveries (a real order body from the emulator, each with its own webhook id) from
   an ``httpx.AsyncClient`` keeping ``--concurrency`` requests in flight; each 200 means the delivery was verified
   and committed to the queue. Its worker applies the queue meanwhile, on the same two cores. The baseline is a
   bare Starlette endpoint on uvicorn that reads the body and answers 200 (no signature, no store), driven the
   same way in the same run. The time for the worker to apply the whole queue is printed too. The client is one
   asyncio process: on this 2-core machine httpx's pool gets slower past a few connections (bare Starlette: ~135
   requests/s at 2-4 in flight, ~55 at 32), so the default keeps 4 in flight.
2. **Sale to push-back.** Shopify, Square and Odoo emulators; the warehouse counted by the ERP, sold by the web
   shop and the tills. Per sale: ``place_order`` on the Shopify emulator, then the time until the Square
   warehouse's IN_STOCK has dropped: the webhook, the queue, the order stored, the SKU reconciled and pushed. The
   baseline is what a merchant without webhooks runs after each sale: ``storesync sync shop`` then ``storesync
   inventory reconcile --push --sku`` (the time of those two commands, not counting the wait for the next cron).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from webhook_scenario import free_port, run_env, warehouse  # noqa: E402  (bench/webhook_scenario.py)

SECRET = "shpss_bench_secret"
SECRETS = {"SHOPIFY_TOKEN": "shpat_bench", "SQUARE_TOKEN": "sq_bench", "ODOO_API_KEY": "odoo_bench",
           "SHOPIFY_WEBHOOK_SECRET": SECRET}


def env() -> dict[str, str]:
    return run_env(SECRETS)


def start(args: list[str], cwd: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, cwd=cwd, env=env(), stdout=subprocess.DEVNULL, stderr=open(cwd / f"{port}.log", "w"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{args} did not start; see {cwd / f'{port}.log'}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)


# -- 1. accepted per second ---------------------------------------------------------------------------------

def bare_app() -> None:
    """The baseline server (run as ``bench_webhooks.py --bare PORT``): read the body, answer 200."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def receive(request):  # type: ignore[no-untyped-def]
        await request.body()
        return JSONResponse({"queued": 1, "duplicate": False})

    async def health(request):  # type: ignore[no-untyped-def]
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/webhooks/{cid}", receive, methods=["POST"]), Route("/healthz", health)])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)


def order_body() -> bytes:
    from storesync.connectors.shopify.emulator import ShopifyEmulator

    shop = ShopifyEmulator(orders=1, customers=1, products=1, seed=11)
    shop.add_product("BENCH-1", "Bench Tea", stock={next(iter(shop.store.locations.keys)): 100})
    return json.dumps(shop.store.orders[shop.place_order([("BENCH-1", 1)])]).encode()


async def fire(port: int, bodies: list[bytes], concurrency: int) -> float:
    """POST every body (signed, with its own webhook id); seconds until the last 200."""
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
        async def one(i: int, body: bytes) -> None:
            signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
            async with sem:
                reply = await client.post("/webhooks/shop", content=body, headers={
                    "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": signature,
                    "X-Shopify-Webhook-Id": f"bench-{i}", "Content-Type": "application/json"})
            if reply.status_code != 200:
                raise SystemExit(f"delivery {i}: HTTP {reply.status_code} {reply.text[:200]}")
        started = time.perf_counter()
        await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
        return time.perf_counter() - started


def accepted_per_second(n: int, concurrency: int) -> None:
    template = json.loads(order_body())
    bodies = []
    for i in range(n):  # distinct orders, so the worker stores n rows
        template["id"], template["name"] = 6_000_000_000_000 + i, f"#B{i}"
        bodies.append(json.dumps(template).encode())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "plugins.toml").write_text(
            '[storesync]\ndatabase = "sqlite:///store.db"\n\n[connectors.shop]\ntype = "shopify"\n'
            'shop = "bench.myshopify.com"\naccess_token = "${SHOPIFY_TOKEN}"\nbase_url = "http://127.0.0.1:9"\n'
            'webhook_secret = "${SHOPIFY_WEBHOOK_SECRET}"\n', encoding="utf-8")
        port = free_port()
        bare = start([sys.executable, __file__, "--bare", str(port)], root, port)
        try:
            asyncio.run(fire(port, bodies[:50], concurrency))  # warm-up
            base_s = asyncio.run(fire(port, bodies, concurrency))
        finally:
            stop(bare)
        port = free_port()
        server = start([sys.executable, "-m", "storesync.cli", "serve", "--port", str(port)], root, port)
        try:
            serve_s = asyncio.run(fire(port, bodies, concurrency))
            started = time.perf_counter()
            while httpx.get(f"http://127.0.0.1:{port}/metrics?format=json").json()["queue_depth"]:
                time.sleep(0.05)
            drained = time.perf_counter() - started
        finally:
            stop(server)
        with sqlite3.connect(root / "store.db") as db:
            stored = db.execute("SELECT count(*) FROM orders").fetchone()[0]
            states = dict(db.execute("SELECT state, count(*) FROM webhook_delivery GROUP BY state").fetchall())
    print(f"accepted: {n} signed orders/create deliveries, {concurrency} in flight, SQLite")
    print(f"  storesync serve  {n / serve_s:8.0f} deliveries/s  ({serve_s:.2f}s; each verified and committed "
          "before its 200)")
    print(f"  bare Starlette   {n / base_s:8.0f} deliveries/s  ({base_s:.2f}s; body read, 200, nothing else)")
    print(f"  ratio serve/bare {base_s / serve_s:8.2f}")
    print(f"  queue applied {drained:.2f}s after the last 200; orders stored {stored}; states {states}")


# -- 2. sale to push-back --------------------------------------------------------------------------------------

def cli(root: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "storesync.cli", *args], cwd=root, env=env(), capture_output=True,
                          text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{args}: exit {proc.returncode}\n{proc.stderr}")


def sale_to_push(sales: int) -> None:
    from storesync.connectors.erp.emulator import OdooEmulator
    from storesync.connectors.pos.emulator import SquareEmulator
    from storesync.connectors.shopify.emulator import ShopifyEmulator

    with tempfile.TemporaryDirectory() as tmp, \
            ShopifyEmulator(orders=2, customers=2, products=2, seed=5, token=SECRETS["SHOPIFY_TOKEN"],
                            webhook_secret=SECRET, rate_limit=None) as shop, \
            SquareEmulator(orders=2, customers=2, items=2, seed=5, token=SECRETS["SQUARE_TOKEN"]) as pos, \
            OdooEmulator(partners=2, products=2, orders=1, api_key=SECRETS["ODOO_API_KEY"]) as erp:
        root = Path(tmp)
        w = warehouse(root, shop, pos, erp, "LAMP-1", "Paper Lamp", on_hand=10 * sales)
        variation, wh_shop, wh_till = w.variation, w.wh_shop, w.wh_till
        cli(root, "sync", "--no-progress")
        cli(root, "inventory", "reconcile", "--push", "--sku", "LAMP-1")

        def one_sale() -> int:
            before = pos.in_stock(variation, wh_till)
            shop.place_order([("LAMP-1", 1)], location_id=wh_shop)
            return before

        polled = []
        for _ in range(sales):  # baseline: the two commands a poll runs after a sale
            before = one_sale()
            started = time.perf_counter()
            cli(root, "sync", "--no-progress", "shop")
            cli(root, "inventory", "reconcile", "--push", "--sku", "LAMP-1")
            polled.append(time.perf_counter() - started)
            assert pos.in_stock(variation, wh_till) == before - 1, "the poll did not push"

        port = free_port()
        server = start([sys.executable, "-m", "storesync.cli", "serve", "--port", str(port)], root, port)
        pushed = []
        try:
            cli(root, "webhooks", "register", "shop", "--url", f"http://127.0.0.1:{port}/webhooks/shop")
            for _ in range(sales):
                before = one_sale()
                started = time.perf_counter()
                while pos.in_stock(variation, wh_till) != before - 1:
                    if time.perf_counter() - started > 60:
                        raise SystemExit("no push-back within 60 s")
                    time.sleep(0.005)
                pushed.append(time.perf_counter() - started)
                time.sleep(0.5)  # let the echo deliveries (the push's own level updates) settle
        finally:
            stop(server)
    print(f"sale to push-back: {sales} web sales, Square warehouse IN_STOCK observed every 5 ms")
    print(f"  storesync serve       median {statistics.median(pushed):6.2f}s  max {max(pushed):6.2f}s")
    print(f"  poll (sync+reconcile) median {statistics.median(polled):6.2f}s  max {max(polled):6.2f}s  "
          "(plus the wait for the next poll)")
    print(f"  ratio poll/serve      {statistics.median(polled) / statistics.median(pushed):6.2f}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--bare":
        return bare_app()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--sales", type=int, default=10)
    args = parser.parse_args()
    accepted_per_second(args.deliveries, args.concurrency)
    sale_to_push(args.sales)


if __name__ == "__main__":
    main()
