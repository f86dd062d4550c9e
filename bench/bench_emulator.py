"""How many 250-order pages per minute the Shopify emulator serves (target: >= 2,000 on a 2-core machine).

    python bench/bench_emulator.py [--orders 25000] [--seconds 20] [--clients 1]

Each client walks ``orders.json?status=any&limit=250`` through the Link headers, over and over, reading the whole
body (and, with --parse, decoding the JSON) as a connector would.
"""

from __future__ import annotations

import argparse
import re
import threading
import time

import httpx
import orjson

from storesync.connectors.shopify.emulator import ShopifyEmulator

NEXT = re.compile(r'<([^>]+)>; rel="next"')


def walker(shop: ShopifyEmulator, deadline: float, parse: bool, counts: list[int], slot: int) -> None:
    with httpx.Client(headers={"X-Shopify-Access-Token": shop.token}, timeout=30) as client:
        url = shop.url("orders.json") + "?status=any&limit=250"
        while time.monotonic() < deadline:
            response = client.get(url)
            response.raise_for_status()
            if parse:
                assert len(orjson.loads(response.content)["orders"]) <= 250
            counts[slot] += 1
            found = NEXT.search(response.headers.get("link", ""))
            url = found.group(1) if found else shop.url("orders.json") + "?status=any&limit=250"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=25_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--parse", action="store_true", help="also decode each page's JSON in the client")
    args = parser.parse_args()
    started = time.monotonic()
    with ShopifyEmulator(orders=args.orders, seed=1, rate_limit=None) as shop:
        print(f"generated {args.orders} orders in {time.monotonic() - started:.1f}s")
        counts = [0] * args.clients
        deadline = time.monotonic() + args.seconds
        began = time.monotonic()
        threads = [threading.Thread(target=walker, args=(shop, deadline, args.parse, counts, i))
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - began
    pages = sum(counts)
    print(f"{pages} pages of 250 orders in {elapsed:.1f}s with {args.clients} client(s): "
          f"{pages / elapsed * 60:,.0f} pages/minute")


if __name__ == "__main__":
    main()
