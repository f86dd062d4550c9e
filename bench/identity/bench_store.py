"""Time the identity store's part of a resolve for N customers (reading them, writing the result), against a
same-run baseline.

    python bench/identity/bench_store.py [--records 1000000] [--database sqlite|postgresql URL]

The store part is what ``identities resolve --full`` does around the matcher: ``load_customers`` (every live
customer as matcher and survivorship records) and ``write_full`` (memberships, golden records, the audit trail of
links, block keys, then the indexes). The matcher is not run: persons come from the generator's ground truth
(1 to 4 records each, 4 systems), linked in a chain by rule ``email``, so the rows written have the shape of a
real run; the matcher's interned features are computed beforehand (timed and printed apart) and handed over as
a real resolution hands them. Baselines, in the same run and database:

- read: a plain DB-API ``SELECT`` of the same columns, fetched as tuples;
- write: plain ``executemany`` (COPY on PostgreSQL) of the same member, person, link and block rows, prepared
  beforehand, into tables without indexes.

Figures: seconds for each, the ratio ours / baseline, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import tempfile
import time

import numpy as np
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from storesync.core import identity_store as db  # noqa: E402
from storesync.core.identity_config import IdentitySettings  # noqa: E402
from storesync.core.identity_features import extract  # noqa: E402
from storesync.core.identity_match import Link, Resolution  # noqa: E402
from storesync.core.identity_persons import ResolveSummary, write_full  # noqa: E402
from storesync.core.store import Store  # noqa: E402
from storesync.core.tables import ENTITY_TABLES, json_text, to_utc_text  # noqa: E402

SYSTEMS = ("shop", "tills", "erp", "sms")
GIVEN = ["Tai Man", "Siu Ming", "Ka Yan", "Wing Sze", "Chi Keung", "Mei Ling", "Tommy", "Karen", "Kelvin", "Winnie"]
SURNAMES = ["Chan", "Wong", "Lee", "Cheung", "Lau", "Ho", "Ng", "Leung", "Lam", "Tsang"]


def generate(n: int, seed: int = 7) -> tuple[list[list], list[list[tuple[str, str]]]]:
    """Customer rows (write order of ``COLUMNS``) and the persons they form."""
    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows, persons, i = [], [], 0
    while i < n:
        size = min(n - i, rng.choice((1, 1, 1, 2, 2, 3, 4)))
        given, surname = rng.choice(GIVEN), rng.choice(SURNAMES)
        phone = f"+852{rng.randrange(50_000_000, 99_999_999)}"
        email = f"{given.replace(' ', '').lower()}.{surname.lower()}{i}@example.com"
        refs = []
        for k in range(size):
            cid = SYSTEMS[k % 4]
            ext = f"{cid[0]}{i + k}"
            updated = to_utc_text(t0 + timedelta(minutes=rng.randrange(500_000)))
            rows.append([cid, "customers", ext, f"{i + k:024x}", "{}", updated, False, updated,
                         email if cid != "sms" else None, phone if cid != "erp" else None, given, surname,
                         f"M{i + k}" if cid == "tills" else None, "1990-01-01" if rng.random() < 0.3 else None,
                         "1 Queen's Road" if cid == "erp" else None, "Hong Kong", "en", rng.random() < 0.5, None])
            refs.append((cid, ext))
        persons.append(refs)
        i += size
    return rows, persons


COLUMNS = ["connector_id", "stream", "external_id", "row_hash", "attributes", "synced_at", "deleted", "updated_at",
           "email", "phone", "first_name", "last_name", "member_id", "birth_date", "address_line1", "city",
           "language", "sms_consent", "email_consent"]


def seed_store(store: Store, rows: list[list]) -> None:
    with store.write() as w:
        db.insert_chunked(w, ENTITY_TABLES["customer"].name, COLUMNS, iter(rows))


def baseline_read(store: Store) -> float:
    cols = ", ".join(c.name for c in db._CUSTOMER_COLS)
    started = time.perf_counter()
    with store.engine.connect() as conn:
        cur = conn.connection.driver_connection.cursor()
        cur.execute(f"SELECT {cols} FROM customer")
        got = cur.fetchall()
    assert got
    return time.perf_counter() - started


def baseline_write(url: str, dialect: str, tables: dict[str, tuple[list[str], list[list]]]) -> float:
    """Plain bulk inserts of prepared rows into index-free copies of the tables."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name, (cols, _rows) in tables.items():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS plain_{name}")
            conn.exec_driver_sql(f"CREATE TABLE plain_{name} AS SELECT {', '.join(cols)} FROM {name} WHERE 1 = 0")
    started = time.perf_counter()
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        for name, (cols, rows) in tables.items():
            if dialect == "postgresql":
                with raw.cursor() as cur, cur.copy(f"COPY plain_{name} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                raw.cursor().executemany(f"INSERT INTO plain_{name} ({', '.join(cols)}) VALUES "
                                         f"({', '.join('?' * len(cols))})", rows)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def written_rows(store: Store) -> dict[str, tuple[list[str], list[list]]]:
    """What write_full wrote, read back as plain rows (the baseline inserts exactly these)."""
    out = {}
    with store.engine.connect() as conn:
        for name, cols in (("identity_member", db.MEMBER_COLS), ("person", db.PERSON_COLS),
                           ("identity_link", db.LINK_COLS), ("identity_block", ["key_hash", "record_id"])):
            cur = conn.connection.driver_connection.cursor()
            cur.execute(f"SELECT {', '.join(cols)} FROM {name}")
            out[name] = (cols, [[json_text(v) if isinstance(v, dict | list) else v for v in r]  # JSONB comes
                                for r in cur.fetchall()])                                    # back parsed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--database", help="store URL (default: a new SQLite file in a temporary folder)")
    args = parser.parse_args()
    gc.disable()  # as resolve_store runs (no reference cycles among the records); ours and baselines alike
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store(url)
        rows, truth = generate(args.records)
        seed_store(store, rows)
        del rows
        settings = IdentitySettings()
        match = settings.match_settings()

        started = time.perf_counter()
        customers = db.load_customers(store)
        read_s = time.perf_counter() - started
        read_base = baseline_read(store)

        links = [Link(a, b, "email", "x@example.com", 1.0, ("same email x@example.com",))
                 for refs in truth for a, b in zip(refs, refs[1:])]
        res = Resolution([sorted(p) for p in truth], links)
        started = time.perf_counter()
        res.features = extract(customers.records, match.region)  # the matcher's features, as a real run has them
        extract_s = time.perf_counter() - started
        keys = len(db.block_rows(res.features, np.zeros(len(customers.records), np.int64))[0])
        run_id = db.start_run(store, full=True, mode="strict")
        started = time.perf_counter()
        write_full(store, settings, ResolveSummary(run_id, True, "strict"), customers, res, [], lambda _m: None)
        write_s = time.perf_counter() - started
        plain = written_rows(store)
        del customers, res, links
        write_base = baseline_write(store.url, store.dialect, plain)
        store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = {name: len(r) for name, (_c, r) in plain.items()}
    print(f"records {args.records:,}; rows written: {counts}; block keys before oversized blocks are dropped: "
          f"{keys:,}")
    print(f"read customers   : {read_s:7.2f} s   baseline plain SELECT {read_base:6.2f} s   ratio "
          f"{read_s / read_base:5.2f}")
    print(f"write resolution : {write_s:7.2f} s   baseline plain bulk insert {write_base:6.2f} s   ratio "
          f"{write_s / write_base:5.2f}")
    print(f"features (extract, the matcher's; the write reuses them when the resolution carries them): "
          f"{extract_s:.2f} s")
    print(f"peak RSS         : {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
