"""Identity tables and their bulk reads and writes (issue 8).

- ``person`` (``core/tables.py`` ``PersonRow``): one golden record per person;
- ``identity_member``: each source customer's person. Keyed by the customer row's id (stable for a binding),
  with its ref, stream, the rule that brought it in and the row hash it was resolved at (changed records are
  found by comparing hashes);
- ``identity_link``: the audit trail. Every ``auto`` link that joined two records and every ``possible`` link held
  back for review, with rule, value, score, evidence and the run that made it;
- ``identity_override``: stored ``merge`` / ``split`` decisions as must-link / cannot-link pairs of refs, with who
  and when; they outlive every re-run;
- ``identity_block``: (hash of a block key, customer row id), so an incremental run fetches the stored
  candidates of a new record with an indexed lookup instead of reading a million records. The keys of a record
  that changed or went stay until the next full run: they can only add a candidate, never a link;
- ``identity_run``: when each resolve ran, full or incremental, its counts and the highest person id issued.

Bulk writes go through ``BatchWriter.insert_rows`` (executemany on SQLite, COPY on PostgreSQL). A full run
replaces the tables and builds the large indexes after the rows are in, which is much cheaper than keeping a
random-keyed index up to date row by row.
"""

from __future__ import annotations

import zlib
from sys import intern
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from .identity_config import GOLDEN_FIELDS
from .identity_blocking import BLOCKS
from .identity_features import Features
from .identity_golden import SourceRecord
from .identity_match import IdentityRecord, Link, Ref
from .tables import ENTITY_TABLES, JsonType, PersonRow, UtcDateTime, json_text, to_utc_text

if TYPE_CHECKING:
    from .store import Store
    from .writer import BatchWriter

__all__ = ["Customers", "IdentityBlockRow", "IdentityLinkRow", "IdentityMemberRow", "IdentityOverrideRow",
           "IdentityRunRow", "Member", "add_overrides", "block_rows", "build_indexes", "changed_customers",
           "clear_all", "export_rows", "fail_run", "finish_run", "insert_chunked", "last_run", "link_row",
           "live_customers", "load_customers", "max_person_id", "members", "override_rows", "overrides",
           "person_of_records", "person_row", "start_run", "upgrade_person_table"]

CUSTOMER = ENTITY_TABLES["customer"]


class IdentityMemberRow(SQLModel, table=True):
    """One source customer in one person."""

    __tablename__ = "identity_member"
    __table_args__ = (Index("ix_identity_member_person_id", "person_id"),)
    record_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # customer.id
    connector_id: str = Field(max_length=64)
    stream: str = Field(max_length=64)
    external_id: str = Field(max_length=255)
    person_id: int
    rule: str = Field(max_length=16)  # a rule of identity_match or identity_bridge, manual or single
    row_hash: str = Field(max_length=32)


class IdentityLinkRow(SQLModel, table=True):
    """Why two records are (``auto``) or might be (``possible``) one person."""

    __tablename__ = "identity_link"
    __table_args__ = (Index("ix_identity_link_person_id", "person_id"),
                      Index("ix_identity_link_other_person_id", "other_person_id"))
    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    kind: str = Field(max_length=8)  # auto | possible
    person_id: int  # the person of ``a``
    other_person_id: int  # the person of ``b`` (the same for auto links)
    a_record: int
    b_record: int
    rule: str = Field(max_length=16)
    value: str = Field(sa_type=Text)
    score: float = 1.0
    evidence: list = Field(default_factory=list, sa_type=JsonType)


class IdentityOverrideRow(SQLModel, table=True):
    """A manual decision: ``must_link`` (from ``merge``) or ``cannot_link`` (from ``split``) between two refs."""

    __tablename__ = "identity_override"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    a_connector_id: str = Field(max_length=64)
    a_external_id: str = Field(max_length=255)
    b_connector_id: str = Field(max_length=64)
    b_external_id: str = Field(max_length=255)
    command: str = Field(sa_type=Text)
    who: str = Field(max_length=128)
    created_at: datetime = Field(sa_type=UtcDateTime)


class IdentityBlockRow(SQLModel, table=True):
    """A record stored under one block key (as a 64-bit hash), for incremental candidate lookup."""

    __tablename__ = "identity_block"
    __table_args__ = (Index("ix_identity_block_key_hash", "key_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    key_hash: int = Field(sa_column=Column(BigInteger, nullable=False))
    record_id: int


class IdentityRunRow(SQLModel, table=True):
    """One ``identities resolve``."""

    __tablename__ = "identity_run"
    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    full: bool = True
    mode: str = Field(max_length=16)
    status: str = Field(default="running", max_length=16)
    counts: dict = Field(default_factory=dict, sa_type=JsonType)
    max_person_id: int = 0


MEMBER = IdentityMemberRow.__table__  # type: ignore[attr-defined]
LINK = IdentityLinkRow.__table__  # type: ignore[attr-defined]
OVERRIDE = IdentityOverrideRow.__table__  # type: ignore[attr-defined]
BLOCK = IdentityBlockRow.__table__  # type: ignore[attr-defined]
RUN = IdentityRunRow.__table__  # type: ignore[attr-defined]
PERSON = PersonRow.__table__  # type: ignore[attr-defined]

#: the large indexes a full run drops and builds again after the rows are in: name -> (table, column)
_BULK_INDEXES = {"ix_identity_member_person_id": ("identity_member", "person_id"),
                 "ix_identity_block_key_hash": ("identity_block", "key_hash"),
                 "ix_identity_link_person_id": ("identity_link", "person_id"),
                 "ix_identity_link_other_person_id": ("identity_link", "other_person_id")}
MEMBER_COLS = ["record_id", "connector_id", "stream", "external_id", "person_id", "rule", "row_hash"]
LINK_COLS = ["run_id", "kind", "person_id", "other_person_id", "a_record", "b_record", "rule", "value", "score",
             "evidence"]
PERSON_COLS = ["id", "attributes", "updated_at", "records", *GOLDEN_FIELDS]


def block_rows(feats: Features, record_ids: np.ndarray,
               max_block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(key hash, customer row id) of every block key of the records ``feats`` describes, for all at once.

    The keys are the matcher's own (``identity_blocking.BLOCKS`` over ``identity_features.extract``), each
    hashed to a signed 64-bit integer from its values, so the same key hashes the same in every run (a collision
    only adds a candidate; it never links anything). With ``max_block``, keys held by more records than that are
    left out: the matcher never compares within such a block, so storing it would only cost rows.
    """
    value_hash = {f: _value_hashes(feats.values[f]) for f in {f for _n, fields in BLOCKS for f in fields}}
    hashes, owners = [], []
    for name, fields in BLOCKS:
        key = np.full(feats.n, _text_hash(name), dtype=np.uint64)
        missing = np.zeros(feats.n, dtype=bool)
        for f in fields:
            codes = feats.codes[f]
            missing |= codes < 0
            key = key * _MIX + value_hash[f][np.maximum(codes, 0)] if len(value_hash[f]) else key
        present = np.flatnonzero(~missing)
        key = key[present]
        if max_block is not None and len(key):
            _uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
            small = counts[inverse] <= max_block
            key, present = key[small], present[small]
        hashes.append(key.view(np.int64))
        owners.append(record_ids[present])
    if not hashes:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(hashes), np.concatenate(owners)


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _text_hash(text: str) -> int:
    data = text.encode()
    return (zlib.crc32(data) << 32) | zlib.adler32(data)


def _value_hashes(values: np.ndarray) -> np.ndarray:
    """A 64-bit hash per distinct value (tuples joined with a unit separator)."""
    return np.fromiter((_text_hash("\x1f".join(map(str, v)) if isinstance(v, tuple) else str(v)) for v in values),
                       dtype=np.uint64, count=len(values))


# -- reading customers --------------------------------------------------------------------------------------

_C = CUSTOMER.c
_CUSTOMER_COLS = [_C.id, _C.connector_id, _C.stream, _C.external_id, _C.row_hash, _C.updated_at, _C.member_id,
                  _C.email, _C.phone, _C.first_name, _C.last_name, _C.full_name, _C.birth_date, _C.address_line1,
                  _C.address_line2, _C.city, _C.postal_code, _C.country_code, _C.language, _C.sms_consent,
                  _C.email_consent]


@dataclass
class Customers:
    """Source customers loaded for resolution: the matcher's view, survivorship's view, and bookkeeping."""

    records: list[IdentityRecord] = field(default_factory=list)
    sources: dict[Ref, SourceRecord] = field(default_factory=dict)
    hashes: list[str] = field(default_factory=list)  # row hash of each record, in ``records`` order
    duplicates: list[Ref] = field(default_factory=list)  # a ref seen in a second stream of its connector

    def add_row(self, row: Any) -> None:
        (rid, cid, stream, ext, digest, updated, member, email, phone, first, last, full, birth, line1, line2,
         city, postal, country, language, sms, mail, national_id) = row
        # the driver makes a new string per row even for a value every row repeats: share the repeated ones
        cid, stream = _shared(cid), _shared(stream)
        city, country, language, birth = _shared(city), _shared(country), _shared(language), _shared(birth)
        first, last, postal = _shared(first), _shared(last), _shared(postal)
        ref = (cid, ext)
        if ref in self.sources:
            self.duplicates.append(ref)
            return
        updated = _aware(updated)
        address = f"{line1} {line2}" if line1 and line2 else line1 or line2
        self.records.append(IdentityRecord(cid, ext, member, email, phone, first, last, _date(birth), stream, full,
                                           address, city, postal, updated,
                                           str(national_id) if national_id is not None else None))
        self.sources[ref] = SourceRecord(rid, cid, updated, (
            first, last, email, phone, member, birth, language, line1, city, postal, country,
            None if sms is None else bool(sms), None if mail is None else bool(mail)))  # SQLite gives 0/1
        self.hashes.append(digest)


def load_customers(store: Store, ids: Iterable[int] | None = None, *, chunk: int = 5000) -> Customers:
    """The live (not deleted) stored customers of every connector; only the row ``ids`` given, if any."""
    out = Customers()
    base = sa.select(*_CUSTOMER_COLS, _national_id(store.dialect)).where(sa.or_(_C.deleted.is_(None), ~_C.deleted))
    with store.read() as conn:
        if ids is None:  # every customer: plain DB-API rows (add_row converts), a third of SQLAlchemy's cost
            sql = str(base.order_by(_C.id).compile(conn, compile_kwargs={"literal_binds": True}))
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute(sql)
            while rows := cursor.fetchmany(10_000):
                for row in rows:
                    out.add_row(row)
            return out
        wanted = sorted(set(ids))
        for i in range(0, len(wanted), chunk):
            for row in conn.execute(base.where(_C.id.in_(wanted[i:i + chunk])).order_by(_C.id)):
                out.add_row(row)
    return out


def live_customers(store: Store) -> int:
    """How many customers the store holds that are not deleted."""
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(CUSTOMER).where(
            sa.or_(_C.deleted.is_(None), ~_C.deleted))).scalar_one()


def _national_id(dialect: str) -> Any:
    """``attributes.national_id`` of a customer (a government id a mapping may keep, e.g. HKID), read in SQL."""
    if dialect == "sqlite":
        return sa.literal_column("json_extract(customer.attributes, '$.national_id')")
    return sa.literal_column("customer.attributes ->> 'national_id'")


def changed_customers(store: Store) -> tuple[list[int], list[tuple[int, int]]]:
    """What changed since the last resolve, found by joins on the row ids (no full read into Python):

    - customer row ids to match: live customers without a membership, or whose row hash changed;
    - (row id, person id) of memberships to drop: the record changed, was deleted or is gone from the store.
    """
    m = MEMBER.c
    live = sa.or_(_C.deleted.is_(None), ~_C.deleted)
    fresh = (sa.select(_C.id).select_from(CUSTOMER.outerjoin(MEMBER, m.record_id == _C.id))
             .where(live, sa.or_(m.record_id.is_(None), m.row_hash != _C.row_hash)).order_by(_C.id))
    leaving = (sa.select(m.record_id, m.person_id).select_from(MEMBER.outerjoin(CUSTOMER, _C.id == m.record_id))
               .where(sa.or_(_C.id.is_(None), ~live, m.row_hash != _C.row_hash)))
    with store.read() as conn:
        return list(conn.execute(fresh).scalars()), [tuple(r) for r in conn.execute(leaving)]  # type: ignore[misc]


def _shared(value: str | None) -> str | None:
    return intern(value) if value is not None else None


@lru_cache(maxsize=65536)
def _date(value: str | None) -> date | str | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return value


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- membership ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Member:
    record_id: int
    connector_id: str
    stream: str
    external_id: str
    person_id: int
    rule: str
    row_hash: str

    @property
    def ref(self) -> Ref:
        return (self.connector_id, self.external_id)


def members(store: Store, *, person_ids: Iterable[int] | None = None, ref: Ref | None = None,
            chunk: int = 5000) -> list[Member]:
    """Stored memberships: all, those of ``person_ids``, or the one of ``ref``."""
    m = MEMBER.c
    query = sa.select(*(m[c] for c in MEMBER_COLS))
    with store.read() as conn:
        if ref is not None:
            rows = conn.execute(query.where(m.connector_id == ref[0], m.external_id == ref[1])).all()
        elif person_ids is None:
            rows = conn.execute(query).all()
        else:
            wanted = sorted(set(person_ids))
            rows = [r for i in range(0, len(wanted), chunk)
                    for r in conn.execute(query.where(m.person_id.in_(wanted[i:i + chunk])))]
    return [Member(*r) for r in rows]


def person_of_records(store: Store) -> dict[int, int]:
    """customer row id -> person id, for every stored member (the previous run's answer)."""
    with store.read() as conn:
        return dict(conn.execute(sa.select(MEMBER.c.record_id, MEMBER.c.person_id)).all())


def max_person_id(store: Store) -> int:
    """The highest person id ever issued (ids of merged-away persons are not given out again)."""
    with store.read() as conn:
        issued = conn.execute(sa.select(sa.func.max(RUN.c.max_person_id))).scalar() or 0
        held = conn.execute(sa.select(sa.func.max(PERSON.c.id))).scalar() or 0
    return max(issued, held)


# -- overrides ----------------------------------------------------------------------------------------------

def overrides(store: Store) -> tuple[list[tuple[Ref, Ref]], list[tuple[Ref, Ref]]]:
    """The stored (must_link, cannot_link) pairs, oldest first."""
    o = OVERRIDE.c
    must: list[tuple[Ref, Ref]] = []
    cannot: list[tuple[Ref, Ref]] = []
    with store.read() as conn:
        for kind, ac, ae, bc, be in conn.execute(sa.select(o.kind, o.a_connector_id, o.a_external_id,
                                                           o.b_connector_id, o.b_external_id).order_by(o.id)):
            (must if kind == "must_link" else cannot).append(((ac, ae), (bc, be)))
    return must, cannot


def override_rows(store: Store, refs: set[Ref] | None = None) -> list[dict[str, Any]]:
    """Stored overrides as plain data (those touching ``refs``, if given)."""
    with store.read() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(OVERRIDE).order_by(OVERRIDE.c.id)).mappings()]
    if refs is None:
        return rows
    return [r for r in rows if (r["a_connector_id"], r["a_external_id"]) in refs
            or (r["b_connector_id"], r["b_external_id"]) in refs]


def add_overrides(w: BatchWriter, kind: str, pairs: list[tuple[Ref, Ref]], command: str, who: str) -> None:
    """Store must-link or cannot-link pairs (inside the caller's transaction)."""
    at = datetime.now(UTC)
    stamp = to_utc_text(at) if w.dialect == "sqlite" else at
    w.insert_rows("identity_override", ["kind", "a_connector_id", "a_external_id", "b_connector_id",
                                        "b_external_id", "command", "who", "created_at"],
                  [[kind, a[0], a[1], b[0], b[1], command, who, stamp] for a, b in pairs])


# -- writing ------------------------------------------------------------------------------------------------

def clear_all(w: BatchWriter) -> None:
    """Empty the resolution tables (not the overrides) and drop their large indexes, before a full rewrite."""
    for name in _BULK_INDEXES:
        w.conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    for table in ("identity_member", "identity_link", "identity_block", "person"):
        w.conn.exec_driver_sql(f"TRUNCATE {table}" if w.dialect == "postgresql" else f"DELETE FROM {table}")


def build_indexes(w: BatchWriter) -> None:
    """Build the indexes ``clear_all`` dropped, now that the rows are in."""
    for name, (table, column) in _BULK_INDEXES.items():
        w.conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})")


def link_row(run_id: int, kind: str, link: Link, record_a: int, record_b: int, person_a: int,
             person_b: int) -> list[Any]:
    """A link as an ``identity_link`` row (``LINK_COLS`` order). A government id is stored masked to its last four
    characters: the audit trail and ``explain`` need to say *that* the numbers agree, not repeat them."""
    value, evidence = link.value, list(link.evidence)
    if link.rule == "national_id" and len(value) > 4:
        masked = "*" * (len(value) - 4) + value[-4:]
        value, evidence = masked, [e.replace(link.value, masked) for e in evidence]
    return [run_id, kind, person_a, person_b, record_a, record_b, link.rule, value, float(link.score),
            json_text(evidence)]


def insert_chunked(w: BatchWriter, table: str, cols: list[str], rows: Iterable[list[Any]],
                   size: int = 50_000) -> int:
    """Insert rows from an iterable ``size`` at a time (bounded memory); return how many."""
    total = 0
    it = iter(rows)
    while batch := list(islice(it, size)):
        w.insert_rows(table, cols, batch)
        total += len(batch)
    return total


def person_row(person_id: int, golden: dict[str, Any], records: int, now: Any) -> list[Any]:
    """A golden record as a ``person`` row (``PERSON_COLS`` order)."""
    return [person_id, "{}", now, records, *(golden[f] for f in GOLDEN_FIELDS)]


def start_run(store: Store, *, full: bool, mode: str) -> int:
    with store.engine.begin() as conn:
        return int(conn.execute(sa.insert(RUN).values(started_at=datetime.now(UTC), full=full, mode=mode,
                                                      status="running", counts={}, max_person_id=0))
                   .inserted_primary_key[0])


def finish_run(w: BatchWriter, run_id: int, counts: dict[str, Any], max_id: int) -> None:
    w.conn.execute(sa.update(RUN).where(RUN.c.id == run_id).values(
        finished_at=datetime.now(UTC), status="ok", counts=counts, max_person_id=max_id))


def fail_run(store: Store, run_id: int, error: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.update(RUN).where(RUN.c.id == run_id).values(
            finished_at=datetime.now(UTC), status="failed", counts={"error": error[:2000]}))


def last_run(store: Store) -> dict[str, Any] | None:
    with store.read() as conn:
        row = conn.execute(sa.select(RUN).where(RUN.c.status == "ok").order_by(RUN.c.id.desc()).limit(1)
                           ).mappings().first()
    return dict(row) if row else None


def upgrade_person_table(store: Store) -> list[str]:
    """Add the golden columns to a ``person`` table made by an earlier storesync (no migrations before 1.0)."""
    present = {c["name"] for c in sa.inspect(store.engine).get_columns("person")}
    missing = [c for c in PERSON.columns if c.name not in present]
    with store.engine.begin() as conn:
        for column in missing:
            conn.exec_driver_sql(f'ALTER TABLE person ADD COLUMN "{column.name}" '
                                 f"{column.type.compile(dialect=store.engine.dialect)}")
    return [c.name for c in missing]


def export_rows(store: Store) -> Iterator[tuple[str, str, str, int, str]]:
    """(connector id, stream, external id, person id, rule) of every resolved record, by person."""
    m = MEMBER.c
    query = sa.select(m.connector_id, m.stream, m.external_id, m.person_id, m.rule).order_by(m.person_id,
                                                                                             m.record_id)
    with store.read() as conn:
        for row in conn.execution_options(yield_per=10000).execute(query):
            yield tuple(row)  # type: ignore[misc]
