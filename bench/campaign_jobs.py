"""The jobs the fault and crash campaigns run: each a real ``storesync`` command against a connector's emulator.

Adding a kind of job is one entry in :data:`JOBS` (``inventory reconcile --push`` was added that way): a
:class:`Job` says how to build its emulator for a given :class:`Faults` and size, how to write its plugins.toml,
which fault-free commands prepare the store, the command under test, and how to observe its outcome. The
campaigns (``bench/fault_campaign.py``, ``bench/crash_campaign.py`` and ``tests/reliability/``) only ever go
through this table.

An outcome is a list of ``(key, value)`` pairs: store rows keyed by table, connector, stream and external id with
their row hash as the value, and for jobs that act outside the store, their effects (a sale order per reference
in the ERP, an SMS per recipient and text). :func:`compare` turns a reference outcome and a test outcome into
lost, duplicated and changed counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import datagen  # noqa: E402  (bench/datagen.py)

from storesync.connectors.erp.emulator import OdooEmulator  # noqa: E402
from storesync.connectors.pos.emulator import SquareEmulator  # noqa: E402
from storesync.connectors.shopify.emulator import ShopifyEmulator  # noqa: E402
from storesync.connectors.sms.emulator import TwilioEmulator  # noqa: E402
from storesync.core.emulation import Faults  # noqa: E402

__all__ = ["JOBS", "Job", "Live", "Outcome", "campaign_arguments", "compare", "fast_http", "observe_store",
           "run_cli", "write_combined_project"]

SHOPIFY_TOKEN = "shpat_campaign_token_0123456789"
SQUARE_TOKEN = "sq_campaign_token_0123456789"
ODOO_KEY = "odoo_campaign_key_0123456789"
TWILIO_SID, TWILIO_TOKEN = "AC" + "7" * 32, "twilio_campaign_token_0123"
#: every secret the jobs use: none may ever appear in output, logs or the store
SECRETS = (SHOPIFY_TOKEN, SQUARE_TOKEN, ODOO_KEY, TWILIO_TOKEN)
ENV = {"SHOPIFY_TOKEN": SHOPIFY_TOKEN, "SQUARE_TOKEN": SQUARE_TOKEN, "ODOO_API_KEY": ODOO_KEY,
       "TWILIO_AUTH_TOKEN": TWILIO_TOKEN}

Outcome = list[tuple[tuple[Any, ...], Any]]


def fast_http(**overrides: Any) -> dict[str, Any]:
    """``[connectors.X.http]`` for emulators: short backoff so a campaign spends its time on work, not sleep."""
    return {"max_retries": 8, "retry_budget": 1000, "backoff_base": 0.01, "backoff_max": 0.05,
            "read_timeout": 5.0, **overrides}


@dataclass
class Live:
    """One run's world: its project folder, store, running emulator and the HTTP settings it was written with."""

    root: Path
    store_url: str
    emulator: Any
    scale: int
    http: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """One kind of job the campaigns put through faults and crashes (see the module docstring)."""

    name: str
    connector: str  # the connector instance whose HTTP client the faults hit (named in failures)
    emulator: Callable[[Faults, int], Any]  # (faults, scale) -> an emulator, not yet started
    configure: Callable[[Live], str]  # writes files the job reads; returns plugins.toml's connector tables
    command: tuple[str, ...]
    observe: Callable[[Live], Outcome]
    effects: Callable[[Live], list[Any]] = lambda live: []  # outside effects: each key must occur once
    prepare: tuple[tuple[str, ...], ...] = ()  # fault-free commands first (e.g. sync the files the job forwards)
    max_runs: int = 1  # reruns allowed to converge (a non-idempotent POST cut short is settled on the next run)
    extra_toml: str = ""
    http: bool = True  # whether the connector has an HTTP client (an [connectors.X.http] table)
    tags: frozenset[str] = field(default_factory=frozenset)


def campaign_arguments(doc: str, tag: str, argv: list[str] | None,
                       add: Callable[[argparse.ArgumentParser], None]) -> tuple[argparse.Namespace, list[str]]:
    """The command line both campaign scripts share (``--scale``, ``--seed``, ``--job``; ``add`` adds the rest),
    and the names of the jobs to run: those given, or every job tagged ``tag``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1, help="data size multiplier (1: CI size)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--job", action="append", help=f"only this job (repeatable); default every {tag} job")
    add(parser)
    args = parser.parse_args(argv)
    return args, args.job or [name for name, job in JOBS.items() if tag in job.tags]


def run_cli(root: Path, *args: str, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``storesync ARGS`` in ``root`` as a user runs it, with the campaign's secrets (or ``env``) in the environment."""
    env = {**{k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}, **(ENV if env is None else env)}
    return subprocess.run([sys.executable, "-m", "storesync.cli", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)


def popen_cli(root: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**{k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}, **ENV}
    return subprocess.Popen([sys.executable, "-m", "storesync.cli", *args], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def write_project(live: Live, job: Job) -> None:
    """plugins.toml of ``job`` for this run: the store, the job's connector tables and its http settings."""
    live.root.mkdir(parents=True, exist_ok=True)
    tables = job.configure(live)
    http = "\n".join(f"{k} = {json.dumps(v)}" for k, v in live.http.items())
    if job.http:
        tables += f"\n[connectors.{job.connector}.http]\n{http}\n"
    text = f"[storesync]\ndatabase = {json.dumps(live.store_url)}\nbatch_size = 100\n\n{tables}\n{job.extra_toml}"
    (live.root / "plugins.toml").write_text(text, encoding="utf-8")


def write_combined_project(root: Path, store_url: str, emulators: dict[str, Any]) -> None:
    """One plugins.toml holding the connector tables of several jobs (job name -> its running emulator)."""
    tables = []
    for name, emu in emulators.items():
        write_project(Live(root, store_url, emu, 1, fast_http()), JOBS[name])  # the job's files, and its tables:
        tables.append((root / "plugins.toml").read_text(encoding="utf-8").split("\n\n", 1)[1])  # read back
    (root / "plugins.toml").write_text(f"[storesync]\ndatabase = {json.dumps(store_url)}\nbatch_size = 100\n\n"
                                       + "\n".join(tables), encoding="utf-8")


# -- observing outcomes -------------------------------------------------------------------------------------

def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    eng = _engine(url)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params).all()]
    finally:
        eng.dispose()


def observe_store(url: str, connector_ids: tuple[str, ...]) -> Outcome:
    """Every stored row of these connectors (keyed by binding, valued by hash and deleted flag) and order line."""
    from storesync.core.tables import ENTITY_TABLES

    found: Outcome = []
    for table in ENTITY_TABLES.values():
        for cid in connector_ids:
            for stream, ext, digest, deleted in _rows(
                    url, f"SELECT stream, external_id, row_hash, deleted FROM {table.name} "  # noqa: S608
                         "WHERE connector_id = :c", c=cid):
                found.append(((table.name, cid, stream, ext), (digest, bool(deleted))))
        found += [(("order_line", cid, ext, pos), (sku, str(qty)))
                  for cid in connector_ids
                  for ext, pos, sku, qty in _rows(
                      url, "SELECT o.external_id, l.position, l.sku, l.quantity FROM order_line l "
                           "JOIN orders o ON o.id = l.order_id WHERE o.connector_id = :c", c=cid)] \
            if table.name == "orders" else []
    return found


@dataclass
class Comparison:
    reference: int
    lost: int
    duplicated: int
    changed: int
    effects: int
    effects_lost: int
    effects_duplicated: int

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.changed or self.effects_lost or self.effects_duplicated)


def compare(reference: Outcome, got: Outcome, ref_effects: list[Any], got_effects: list[Any]) -> Comparison:
    """Lost: reference keys missing; duplicated: keys seen twice or never in the reference; changed: other value."""
    ref, seen = dict(reference), Counter(k for k, _v in got)
    values = dict(got)
    effect_counts = Counter(got_effects)
    return Comparison(
        reference=len(ref), lost=sum(1 for k in ref if k not in seen),
        duplicated=sum(c - 1 for c in seen.values()) + sum(1 for k in seen if k not in ref),
        changed=sum(1 for k, v in ref.items() if k in values and values[k] != v),
        effects=len(ref_effects), effects_lost=len(set(ref_effects) - set(effect_counts)),
        effects_duplicated=sum(c - 1 for c in effect_counts.values()))


# -- the jobs -----------------------------------------------------------------------------------------------

def _shopify_tables(live: Live) -> str:
    return (f'[connectors.shop]\ntype = "shopify"\nshop = "harbour-goods-hk.myshopify.com"\n'
            f'access_token = "${{SHOPIFY_TOKEN}}"\nbase_url = "{live.emulator.base_url}"\npage_size = 10\n'
            f"pacing = false\n")


def _square_tables(live: Live) -> str:
    return (f'[connectors.tills]\ntype = "square"\naccess_token = "${{SQUARE_TOKEN}}"\n'
            f'base_url = "{live.emulator.base_url}"\ncustomer_page_size = 10\norder_page_size = 5\n'
            f"catalog_page_size = 10\ncount_page_size = 20\n")


def _odoo_tables(live: Live, *, forward: bool = False) -> str:
    text = live.emulator.plugins_toml("erp") + "page_size = 5\n"
    if not forward:
        return text
    exports = live.root / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    with open(exports / "orders.jsonl", "w", encoding="utf-8") as fh:
        for i in range(1, 20 * live.scale + 1):
            fh.write(json.dumps(datagen.shopify_order(i)) + "\n")
    return (text + 'forward_orders_from = ["web"]\n\n[connectors.web]\ntype = "files"\ndirectory = "exports"\n'
            '[connectors.web.files.orders]\npattern = "orders.jsonl"\n')


NOTIFY_RULES = '''
[notifications]
connector = "sms"
settle_after_seconds = 0
rate_per_second = 200
[notifications.rules.order_confirmation]
event = "order.created"
templates.en = "Hi {first_name}, thanks for order {order_number} ({currency} {total})."
'''


def _notify_tables(live: Live) -> str:
    exports = live.root / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    n = 30 * live.scale
    people = ["id,email,phone,first_name,last_name,language,updated_at"]
    people += [f"C{i},c{i}@example.com,+8529{i:07d},Name{i},Chan,en,2024-05-01 10:00:00" for i in range(1, n + 1)]
    (exports / "customers.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
    created = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    orders = [{"id": i, "name": f"#{1000 + i}", "currency": "HKD", "total_price": "88.00", "created_at": created,
               "customer": {"id": f"C{i}"}, "line_items": [{"id": i, "sku": "TEA-JAS-100", "title": "Tea",
                                                            "quantity": 1, "price": "88.00"}]}
              for i in range(1, n + 1)]
    (exports / "orders.jsonl").write_text("".join(json.dumps(o) + "\n" for o in orders), encoding="utf-8")
    return ('[connectors.till]\ntype = "files"\ndirectory = "exports"\nstreams = ["customers", "orders"]\n'
            '[connectors.till.files.customers]\npattern = "customers.csv"\n'
            '[connectors.till.files.orders]\npattern = "orders.jsonl"\n\n'
            + live.emulator.plugins_toml("sms"))


def _files_tables(live: Live) -> str:
    exports = live.root / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    datagen.write_jsonl(exports / "orders.jsonl", 4000 * live.scale)
    return ('[connectors.till]\ntype = "files"\ndirectory = "exports"\ncheckpoint_every = 500\n'
            '[connectors.till.files.orders]\npattern = "orders.jsonl"\n')


def _forwarded(live: Live) -> Outcome:
    return [(("forwarded_order", src), "done" if state in ("created", "found") else state)
            for src, state in _rows(live.store_url, "SELECT source_external_id, state FROM forwarded_order")]


def _sale_order_refs(live: Live) -> list[Any]:
    with live.emulator.db.lock:
        return [r["client_order_ref"] for r in live.emulator.db.tables["sale.order"].values()
                if r.get("client_order_ref")]


def _messages(live: Live) -> Outcome:
    sent = {"queued", "sending", "sent", "delivered"}
    return [(("message", key), "sent" if status in sent else status)
            for key, status in _rows(live.store_url, "SELECT idempotency_key, status FROM message")]


def _sms_sent(live: Live) -> list[Any]:
    return [(m.to, m.body) for m in live.emulator.sends]


def _inventory_emulator(faults: Faults, scale: int) -> ShopifyEmulator:
    """A web shop selling from one warehouse, with stale levels for ``20 * scale`` SKUs the ERP counts."""
    shop = ShopifyEmulator(orders=0, customers=1, products=2, locations=3, seed=7, token=SHOPIFY_TOKEN, rate_limit=None,
                           faults=faults)
    warehouse = next(iter(shop.store.locations))
    for i in range(20 * scale):
        shop.add_product(f"INV-{i:04d}", f"Campaign item {i}", stock={warehouse: 50 + i})
    return shop


def _inventory_tables(live: Live) -> str:
    """The ERP (a files export: its counts are the truth at the warehouse) and the web shop that sells from it."""
    exports = live.root / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    rows = ["sku,location,on_hand,updated_at"]
    rows += [f"INV-{i:04d},WH,{(i * 7) % 23},2026-11-30 10:00:00" for i in range(20 * live.scale)]
    (exports / "inventory.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    warehouse, *shops = list(live.emulator.store.locations)
    own = "".join(f'[inventory.locations.shop{n}]\nauthority = "shop"\nsources = {{ shop = "{loc}" }}\n\n'
                  for n, loc in enumerate(shops))  # the web shop's other locations: its own counts, never pushed
    return (_shopify_tables(live) + "api_version = \"2026-04\"\n\n"
            '[connectors.erp]\ntype = "files"\ndirectory = "exports"\nstreams = ["inventory"]\n'
            '[connectors.erp.files.inventory]\npattern = "inventory.csv"\n\n'
            f'[inventory.locations.wh]\nauthority = "erp"\nsources = {{ erp = "WH", shop = "{warehouse}" }}\n\n'
            + own +
            '[inventory.channels.shop]\nlocations = ["wh"]\n\n'
            '[inventory.allocation]\nstrategy = "priority"\npriority = ["wh"]\n')


def _pushed_levels(live: Live) -> Outcome:
    """What the web shop shows per item and location, and what storesync recorded as pushed."""
    shop = live.emulator
    with shop.store.lock:
        levels = [((("shopify_level",) + tuple(map(str, key))), level["available"])
                  for key, level in ((k, shop.store.inventory_levels[k]) for k in list(shop.store.inventory_levels))]
    pushed = [(("inventory_pushed", ch, loc, item), qty) for ch, loc, item, qty in _rows(
        live.store_url, "SELECT channel, location_id, item_id, quantity FROM inventory_pushed")]
    return levels + pushed


JOBS: dict[str, Job] = {job.name: job for job in (
    Job("shopify sync", "shop",
        lambda faults, scale: ShopifyEmulator(orders=300 * scale, seed=7, token=SHOPIFY_TOKEN, rate_limit=None,
                                              faults=faults),
        _shopify_tables, ("sync", "shop", "--no-progress"), lambda live: observe_store(live.store_url, ("shop",)),
        tags=frozenset({"faults", "crash"})),
    Job("square sync", "tills",
        lambda faults, scale: SquareEmulator(orders=150 * scale, seed=7, token=SQUARE_TOKEN, faults=faults),
        _square_tables, ("sync", "tills", "--no-progress"), lambda live: observe_store(live.store_url, ("tills",)),
        tags=frozenset({"faults", "crash"})),
    Job("odoo sync", "erp",
        lambda faults, scale: OdooEmulator(api_key=ODOO_KEY, partners=30 * scale, products=20, orders=30 * scale,
                                           seed_value=7, faults=faults),
        _odoo_tables, ("sync", "erp", "--no-progress"), lambda live: observe_store(live.store_url, ("erp",)),
        tags=frozenset({"faults", "crash"})),
    Job("odoo order forwarding", "erp",
        lambda faults, scale: OdooEmulator(api_key=ODOO_KEY, partners=5, products=20, orders=2, seed_value=7,
                                           faults=faults),
        lambda live: _odoo_tables(live, forward=True), ("orders", "forward", "erp"), _forwarded,
        effects=_sale_order_refs, prepare=(("sync", "web", "--no-progress"),), max_runs=6, tags=frozenset({"faults", "crash"})),
    Job("twilio notify", "sms",
        lambda faults, scale: TwilioEmulator(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, delivery_seconds=0.05,
                                             faults=faults),
        _notify_tables, ("notify",), _messages, effects=_sms_sent, prepare=(("sync", "till", "--no-progress"),), max_runs=6,
        extra_toml=NOTIFY_RULES, tags=frozenset({"faults", "crash"})),
    Job("inventory reconcile --push", "shop", _inventory_emulator, _inventory_tables,
        ("inventory", "reconcile", "--push"), _pushed_levels,
        prepare=(("sync", "shop", "--no-progress"), ("sync", "erp", "--no-progress")), max_runs=4,
        tags=frozenset({"crash"})),  # a push is one request per 250 levels: too few to meet every kind of fault
    Job("files sync", "till", lambda faults, scale: _NoEmulator(faults), _files_tables, ("sync", "till", "--no-progress"),
        lambda live: observe_store(live.store_url, ("till",)), http=False, tags=frozenset({"crash"})),
)}


class _NoEmulator:
    """The files connector reads local files: nothing to serve, nothing to fault."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def __enter__(self) -> _NoEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
