"""Compiled TOML mapping vs. the equivalent hand-written Python, on generated Shopify orders.

    python bench/bench_mapping.py [--n 200000] [--pool 20000] [--rounds 2]

Both sides use the same built transform callables, so the ratio measures the mapping machinery only.
Records cycle through a pool of distinct generated orders to keep memory flat.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
try:
    import storesync  # noqa: F401
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from datagen import shopify_order  # noqa: E402

from storesync.core.errors import RecordMappingError  # noqa: E402
from storesync.core.mapping import load_mapping  # noqa: E402
from storesync.core.models import Order  # noqa: E402
from storesync.core.transforms import TransformContext, builtin_transforms  # noqa: E402

MAPPING = HERE.parent / "tests" / "fixtures" / "mappings" / "shopify_orders.toml"


def hand_written(ctx: TransformContext) -> Callable[[dict], dict]:
    """What a careful engineer would write by hand for the same mapping."""
    reg = builtin_transforms()
    build = lambda name: reg.build(name, ctx, {}, file="bench", key=name)  # noqa: E731
    email, phone, dec, dt, to_int, split = (build(n) for n in ("email", "phone_e164", "decimal", "datetime",
                                                                 "int", "split"))

    def line(e: dict) -> dict:
        n: dict[str, Any] = {}
        if (v := e.get("id")) is not None and v != "":
            n["external_id"] = str(v)
        for src, dst in (("sku", "sku"), ("variant_id", "variant_external_id"), ("title", "title")):
            if (v := e.get(src)) is not None:
                n[dst] = str(v) if dst == "variant_external_id" else v
        if (q := e.get("quantity")) is None or (q := to_int(q)) is None:
            raise RecordMappingError("quantity missing", field="lines.quantity")
        n["quantity"] = q
        if (v := e.get("price")) is not None:
            n["unit_price"] = dec(v)
        n["attributes"] = {"product_id": p} if (p := e.get("product_id")) is not None else {}
        return n

    def first(*values: Any) -> Any:
        for v in values:
            if v is not None and v != "":
                return v
        return values[-1]

    def order(r: dict) -> dict:
        if not isinstance(r, dict):
            raise RecordMappingError("not a record")
        key = r.get("id")
        try:
            o: dict[str, Any] = {"external_id": key if isinstance(key, str) else str(key)}
            c = r.get("customer")
            c = c if isinstance(c, dict) else {}
            if (v := r.get("name")) is not None:
                o["number"] = v
            if (v := first(r.get("email"), c.get("email"))) is not None:
                o["email"] = email(v)
            if (v := first(r.get("phone"), c.get("phone"))) is not None:
                o["phone"] = phone(v)
            if (v := c.get("id")) is not None:
                o["customer_external_id"] = str(v)
            o["currency"] = r.get("currency") or "HKD"
            if (v := r.get("subtotal_price")) is not None:
                o["subtotal"] = dec(v)
            o["total"] = dec(r["total_price"])
            cancelled = r.get("cancelled_at")
            o["status"] = "cancelled" if cancelled is not None else "open"
            for src in ("financial_status", "fulfillment_status"):
                if (v := r.get(src)) is not None:
                    o[src] = v
            if cancelled is not None:
                o["cancelled_at"] = dt(cancelled)
            o["created_at"] = dt(r["created_at"])
            if (v := r.get("updated_at")) is not None:
                o["updated_at"] = dt(v)
            if (v := r.get("location_id")) is not None:
                o["location_external_id"] = str(v)
            if (v := r.get("source_name")) is not None:
                o["source_name"] = v
            a = o["attributes"] = {}
            if (v := r.get("note")) is not None and v != "":
                a["note"] = v
            if (v := r.get("tags")) is not None and v != "":
                a["tags"] = split(v)
            o["lines"] = [line(e) for e in r.get("line_items") or ()]
            return o
        except RecordMappingError:
            raise
        except Exception as exc:
            raise RecordMappingError(str(exc), record_key=str(key)) from exc
    return order


def _time(fns: dict[str, Callable[[dict], Any]], records: list[dict], n: int, chunk: int = 5000) -> dict[str, float]:
    """Seconds each of ``fns`` takes over ``n`` records, interleaved in chunks so load spikes hit all alike."""
    totals = dict.fromkeys(fns, 0.0)
    pool = len(records)
    for first in range(0, n, chunk):
        batch = [records[i % pool] for i in range(first, min(first + chunk, n))]
        for name, fn in fns.items():
            start = time.perf_counter()
            for raw in batch:
                fn(raw)
            totals[name] += time.perf_counter() - start
    return totals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="records mapped per timing (default 200000)")
    parser.add_argument("--pool", type=int, default=20_000, help="distinct generated orders (default 20000)")
    parser.add_argument("--rounds", type=int, default=2, help="best of this many rounds (default 2)")
    args = parser.parse_args(argv)
    ctx = TransformContext(timezone="Asia/Hong_Kong", default_region="HK")
    compiled = load_mapping(MAPPING, registry=builtin_transforms(), ctx=ctx).stream("orders")
    hand = hand_written(ctx)
    records = [shopify_order(i) for i in range(args.pool)]
    for raw in records[:2000]:
        assert compiled(raw) == hand(raw), f"outputs differ on order {raw['id']}"
    to_model = lambda raw: Order.model_validate(hand(raw))  # noqa: E731
    fns = {"compiled": compiled, "hand": hand, "compiled+validate": compiled.to_model, "hand+validate": to_model}
    timings = dict.fromkeys(fns, float("inf"))
    for _ in range(args.rounds):
        for name, secs in _time(fns, records, args.n).items():
            timings[name] = min(timings[name], secs)
    print(f"{args.n} Shopify orders x 3 lines, best of {args.rounds} rounds (records/s)")
    for name, secs in timings.items():
        print(f"  {name:<18} {args.n / secs:>12,.0f}   ({secs / args.n * 1e6:.1f} us/record)")
    print(f"  ratio compiled/hand (map only):       {timings['hand'] / timings['compiled']:.2f}x")
    print(f"  ratio compiled/hand (map + validate): {timings['hand+validate'] / timings['compiled+validate']:.2f}x")


if __name__ == "__main__":
    main()
