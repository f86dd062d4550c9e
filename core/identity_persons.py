"""Resolving the stored customers into persons, and the manual overrides (issue 8).

``resolve_store`` runs the matcher (``core/identity_match.py``) over the store's customers and writes persons,
golden records, memberships, links and block keys (``core/identity_store.py``):

- **full** (``--full``, and the first run): every live customer is matched again from scratch;
- **incremental** (default): customers that are new or changed since they were resolved (their row hash differs)
  are matched against the stored persons that share a block key with them, passed to the matcher as ``known``.
  A changed or deleted record leaves its person first; the rest of that person stays together.

Person ids are stable: a resolved person keeps the id that most of its records had (ties: the lower id), so
re-running without changes changes no id. New persons get ids above any ever issued.

``merge`` and ``split`` store must-link / cannot-link pairs (which every later run passes to the matcher) and
apply them at once: a merge moves the smaller person's records into the larger; a split moves one record out
into a person of its own.
"""

from __future__ import annotations

import gc
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from .errors import StoresyncError
from .identity_config import IdentitySettings
from .identity_features import Features, extract
from .identity_golden import choose
from .identity_match import Link, Ref, Resolution, resolve
from . import identity_store as db
from .identity_store import Customers, load_customers
from .lock import connector_lock

__all__ = ["IdentityNotFound", "LOCK", "ResolveSummary", "assign_ids", "find_person", "merge", "parse_ref",
           "refresh_golden", "resolve_store", "split", "write_full"]

#: the lock a resolve, merge or split holds (``core/lock.py``): one of them at a time per store
LOCK = "_identities"

#: which rule names a record's membership when several links touch it (strongest first)
_STRENGTH = {"manual": 0, "member_id": 1, "national_id": 2, "email": 3, "phone+name": 4, "similar name": 5,
             "birth date": 6, "known name": 7, "fuzzy": 8, "phone owner": 9}

Progress = Callable[[str], None]


class IdentityNotFound(StoresyncError):
    """A person id or record named on the command line is not in the store (exit code 1)."""


@dataclass
class ResolveSummary:
    """What one resolve did, for the CLI summary and ``--json``."""

    run_id: int
    full: bool
    mode: str
    records: int = 0  # records matched in this run (incremental: the new and changed ones)
    against: int = 0  # incremental: stored records they were matched against (the candidates' persons)
    changed: int = 0  # records that left their person (changed or deleted) before matching
    persons: int = 0  # persons written in this run (incremental: new ones and those the new records touched)
    multi: int = 0  # of those, persons joining more than one record
    largest: int = 0
    links: dict[str, int] = field(default_factory=dict)  # auto links by rule
    possible: int = 0
    duplicates: int = 0  # refs found in a second customer stream of their connector (left out)
    seconds: float = 0.0
    total_persons: int = 0
    total_records: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def resolve_store(store: Any, settings: IdentitySettings, *, full: bool = False,
                  progress: Progress | None = None) -> ResolveSummary:
    """Resolve the store's customers (incrementally unless ``full`` or never resolved); write the result.

    Raises ``LockedError`` (exit code 4) when another resolve, merge or split of this store is running.
    """
    with connector_lock(store, LOCK):
        return _resolve_locked(store, settings, full=full, progress=progress)


def _resolve_locked(store: Any, settings: IdentitySettings, *, full: bool,
                    progress: Progress | None) -> ResolveSummary:
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    db.upgrade_person_table(store)
    full = full or db.last_run(store) is None
    run_id = db.start_run(store, full=full, mode=settings.mode)
    summary = ResolveSummary(run_id, full, settings.mode)
    try:
        with _no_cycle_collection():
            (_full if full else _incremental)(store, settings, summary, say)
    except BaseException as exc:
        db.fail_run(store, run_id, f"{type(exc).__name__}: {exc}")
        raise
    summary.seconds = round(time.perf_counter() - started, 2)
    with store.read() as conn:
        summary.total_persons = conn.execute(sa.select(sa.func.count()).select_from(db.PERSON)).scalar_one()
        summary.total_records = conn.execute(sa.select(sa.func.count()).select_from(db.MEMBER)).scalar_one()
    return summary


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """A resolve holds millions of long-lived objects without reference cycles (records, tuples, arrays); the
    cycle collector would scan them again on every full collection as they pile up, so it is off for the run."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- full ---------------------------------------------------------------------------------------------------

def _full(store: Any, settings: IdentitySettings, summary: ResolveSummary, say: Progress) -> None:
    say("reading customers")
    customers = load_customers(store)
    summary.duplicates = len(customers.duplicates)
    must, cannot = _pairs_within(db.overrides(store), customers.sources)
    say(f"matching {len(customers.records):,} records")
    match = settings.match_settings()
    write_full(store, settings, summary, customers, resolve(customers.records, match, must_link=must,
                                                            cannot_link=cannot), cannot, say)


def write_full(store: Any, settings: IdentitySettings, summary: ResolveSummary, customers: Customers,
               res: Resolution, cannot: list[tuple[Ref, Ref]], say: Progress) -> None:
    """Replace the stored resolution with ``res`` in one transaction (person ids kept where membership allows)."""
    old = db.person_of_records(store)
    next_id = db.max_person_id(store)
    match = settings.match_settings()
    feats = getattr(res, "features", None)  # the matcher's interned features, when the resolution carries them
    say("clearing the previous resolution")
    with store.write() as w:
        db.clear_all(w)
        say("choosing person ids")
        _write(w, settings, summary, customers, res, old, next_id, old_links=[], cannot=cannot, say=say)
        del res, old  # the caller holds no reference: the links and the old ids are freed before the block keys
        say("writing block keys")
        _write_blocks(w, customers, feats if feats is not None else extract(customers.records, match.region), match,
                      full=True)
        say("building indexes")
        db.build_indexes(w)


def _pairs_within(pairs: tuple[list[tuple[Ref, Ref]], list[tuple[Ref, Ref]]],
                  present: Any) -> tuple[list[tuple[Ref, Ref]], list[tuple[Ref, Ref]]]:
    """The stored (must, cannot) pairs whose two records are both among ``present``."""
    must, cannot = pairs
    return ([p for p in must if p[0] in present and p[1] in present],
            [p for p in cannot if p[0] in present and p[1] in present])


def _write(w: Any, settings: IdentitySettings, summary: ResolveSummary, customers: Customers, res: Resolution,
           old: dict[int, int], next_id: int, *, old_links: list[tuple[Any, ...]],
           cannot: list[tuple[Ref, Ref]], old_rules: dict[int, str] | None = None,
           say: Progress = lambda _msg: None) -> None:
    """Write persons, memberships and links of ``res`` (the tables hold nothing of these records).

    Rows are generated and inserted in chunks, so a million records never sit in memory as rows at once.
    ``old_rules``: record id -> the rule it was stored with, kept for known records no new link touches.
    """
    sources = customers.sources
    ids, max_id = assign_ids(res.persons, sources, old, next_id)
    person_of = {ref: pid for refs, pid in zip(res.persons, ids) for ref in refs}
    rules = _member_rules(res.links)
    if old_rules:
        for ref, src in sources.items():
            if ref not in rules and src.record_id in old_rules:
                rules[ref] = old_rules[src.record_id]
    say(f"writing {len(person_of):,} memberships")
    db.insert_chunked(w, "identity_member", db.MEMBER_COLS, _member_rows(customers, person_of, rules))
    say(f"writing {len(ids):,} golden records")
    db.insert_chunked(w, "person", db.PERSON_COLS, _person_rows(settings, res.persons, ids, sources, w.now_param))
    say(f"writing {len(res.links) + len(res.possible):,} links")
    run = summary.run_id
    decided = {frozenset(pair) for pair in cannot}  # a pair split by hand is no longer a question
    possible = [x for x in res.possible
                if person_of[x.a] != person_of[x.b] and frozenset((x.a, x.b)) not in decided]
    db.insert_chunked(w, "identity_link", db.LINK_COLS, (
        db.link_row(run, kind, x, sources[x.a].record_id, sources[x.b].record_id, person_of[x.a], person_of[x.b])
        for kind, links in (("auto", res.links), ("possible", possible)) for x in links))
    _repoint_links(w, old_links, {sources[r].record_id: p for r, p in person_of.items()} if old_links else {})
    summary.records = len(person_of)
    summary.persons = len(ids)
    summary.multi = sum(len(p) > 1 for p in res.persons)
    summary.largest = max((len(p) for p in res.persons), default=0)
    summary.links = dict(Counter(x.rule for x in res.links))
    summary.possible = len(possible)
    db.finish_run(w, summary.run_id, {k: v for k, v in summary.as_dict().items() if k != "seconds"}, max_id)


def _member_rows(customers: Customers, person_of: dict[Ref, int], rules: dict[Ref, str]) -> Iterable[list[Any]]:
    # records, sources and hashes were filled together, so their orders agree
    for r, src, digest in zip(customers.records, customers.sources.values(), customers.hashes):
        ref = (r.connector_id, r.external_id)
        yield [src.record_id, r.connector_id, r.stream, r.external_id, person_of[ref], rules.get(ref, "single"),
               digest]


def _person_rows(settings: IdentitySettings, persons: list[list[Ref]], ids: list[int], sources: dict[Ref, Any],
                 now: Any) -> Iterable[list[Any]]:
    """Golden ``person`` rows in id order (appends to the table's key, not random inserts); a one-record person
    is its record's values (no survivorship to run)."""
    for i in np.argsort(np.asarray(ids, dtype=np.int64), kind="stable").tolist():
        refs, pid = persons[i], ids[i]
        if len(refs) == 1:
            yield [pid, "{}", now, 1, *sources[refs[0]].values]
        else:
            yield db.person_row(pid, choose([sources[r] for r in refs], settings.survivorship).values, len(refs),
                                now)


def assign_ids(persons: list[list[Ref]], sources: Mapping[Ref, Any], old: dict[int, int],
               next_id: int) -> tuple[list[int], int]:
    """A person id per person: the old id most of its records had (each old id used once), else a new one.

    ``sources``: ref -> its ``SourceRecord`` (for the customer row id). Returns the ids and the highest id issued.
    """
    votes: list[tuple[int, int, int]] = []
    for i, refs in enumerate(persons if old else ()):
        held = [pid for pid in (old.get(sources[ref].record_id) for ref in refs) if pid is not None]
        if held and held.count(held[0]) == len(held):  # the usual case: one old person
            votes.append((-len(held), held[0], i))
            continue
        votes += [(-n, pid, i) for pid, n in Counter(held).items()]
    votes.sort()
    ids = [0] * len(persons)
    taken: set[int] = set()
    for _n, pid, i in votes:
        if not ids[i] and pid not in taken:
            ids[i] = pid
            taken.add(pid)
    for i, pid in enumerate(ids):
        if not pid:
            next_id += 1
            ids[i] = next_id
    return ids, next_id


def _member_rules(links: Iterable[Link]) -> dict[Ref, str]:
    """The strongest rule of the links touching each record (the rule that brought it into its person)."""
    rules: dict[Ref, str] = {}
    for link in links:
        for ref in (link.a, link.b):
            current = rules.get(ref)
            if current is None or _STRENGTH.get(link.rule, len(_STRENGTH)) < _STRENGTH.get(current, len(_STRENGTH)):
                rules[ref] = link.rule
    return rules


def _write_blocks(w: Any, customers: Customers, feats: Features, match: Any, *, full: bool) -> None:
    """Store the block keys of ``customers`` (a full run leaves out keys too common for the matcher to use)."""
    ids = np.fromiter((customers.sources[r.ref].record_id for r in customers.records), dtype=np.int64,
                      count=len(customers.records))
    hashes, owners = db.block_rows(feats, ids, match.max_block if full else None)
    db.insert_chunked(w, "identity_block", ["key_hash", "record_id"],
                      ([h, r] for h, r in zip(hashes.tolist(), owners.tolist())))


def _repoint_links(w: Any, links: list[tuple[Any, ...]], person_of: dict[int, int]) -> None:
    """Stored links of re-resolved records follow their records' new persons (a record not in ``person_of``
    stays where it is); an auto link whose records now sit in two persons (a split) becomes ``undone``."""
    rows = []
    for link_id, a, b, kind, old_a, old_b in links:
        pa, pb = person_of.get(a, old_a), person_of.get(b, old_b)
        if (pa, pb) == (old_a, old_b):
            continue
        rows.append([pa, pb, "undone" if kind == "auto" and pa != pb else kind, link_id])
    if rows:
        p = "?" if w.dialect == "sqlite" else "%s"
        w.dbapi.cursor().executemany(f"UPDATE identity_link SET person_id = {p}, other_person_id = {p}, "
                                     f"kind = {p} WHERE id = {p}", rows)


# -- incremental --------------------------------------------------------------------------------------------

def _incremental(store: Any, settings: IdentitySettings, summary: ResolveSummary, say: Progress) -> None:
    say("comparing customers with the last resolve")
    fresh_ids, leaving = db.changed_customers(store)
    summary.changed = len(leaving)
    if leaving:
        _leave(store, settings, leaving)
    if not fresh_ids:
        issued = db.max_person_id(store)
        with store.write() as w:
            db.finish_run(w, summary.run_id, {"records": 0, "changed": len(leaving)}, issued)
        return
    match = settings.match_settings()
    fresh = load_customers(store, fresh_ids)
    summary.duplicates = len(fresh.duplicates)
    say(f"looking up candidates of {len(fresh.records):,} new or changed records")
    fresh_feats = extract(fresh.records, match.region)
    keys = set(db.block_rows(fresh_feats, np.zeros(len(fresh.records), dtype=np.int64))[0].tolist())
    candidates = _candidate_persons(store, keys, set(leaving), match.max_block)
    involved = db.members(store, person_ids=candidates)
    known_customers = load_customers(store, [m.record_id for m in involved])
    known = {m.ref: m.person_id for m in involved if m.ref in known_customers.sources}
    everyone = _combine(known_customers, fresh)
    must, cannot = _pairs_within(db.overrides(store), everyone.sources)
    say(f"matching {len(fresh.records):,} records against {len(known):,} stored ones")
    res = resolve(everyone.records, match, known=known, must_link=must, cannot_link=cannot,
                  population=db.live_customers(store))  # the prior odds are the whole store's, not the subset's
    res.links = [x for x in res.links if not (x.a in known and x.b in known and known[x.a] == known[x.b])]
    old = {m.record_id: m.person_id for m in involved}
    next_id = db.max_person_id(store)
    with store.write() as w:
        old_links = _links_of(w, candidates)
        w.delete_in("identity_member", "record_id", [m.record_id for m in involved])
        w.delete_in("person", "id", sorted(candidates))
        _write(w, settings, summary, everyone, res, old, next_id, old_links=old_links, cannot=cannot,
               old_rules={m.record_id: m.rule for m in involved})
        _write_blocks(w, fresh, fresh_feats, match, full=False)
    summary.records, summary.against = len(fresh.records), len(known)


def _leave(store: Any, settings: IdentitySettings, leaving: list[tuple[int, int]]) -> None:
    """Take changed and deleted records (record id, person id) out of their persons; their auto links become
    ``undone``; recompute those persons' golden records."""
    ids = {rid for rid, _pid in leaving}
    persons = {pid for _rid, pid in leaving}
    with store.write() as w:
        w.delete_in("identity_member", "record_id", sorted(ids))
        undo = [[link_id] for link_id, a, b, kind, _pa, _pb in _links_of(w, persons)
                if kind == "auto" and (a in ids or b in ids)]
        p = "?" if w.dialect == "sqlite" else "%s"
        w.dbapi.cursor().executemany(f"UPDATE identity_link SET kind = 'undone' WHERE id = {p}", undo)
    refresh_golden(store, settings, persons)


def _candidate_persons(store: Any, key_hashes: set[int], leaving: set[int], max_block: int,
                       chunk: int = 2000) -> set[int]:
    """Person ids of stored records sharing a block key with the new ones (keys held by more than ``max_block``
    stored records are skipped, as the matcher skips such blocks)."""
    hashes = sorted(key_hashes)
    by_key: dict[int, list[int]] = defaultdict(list)
    b = db.BLOCK.c
    with store.read() as conn:
        for i in range(0, len(hashes), chunk):
            query = sa.select(b.key_hash, b.record_id).where(b.key_hash.in_(hashes[i:i + chunk]))
            for key, rid in conn.execute(query):
                by_key[key].append(rid)
        rids = sorted({r for group in by_key.values() if len(group) <= max_block for r in group} - leaving)
        m = db.MEMBER.c
        persons: set[int] = set()
        for i in range(0, len(rids), chunk):
            persons.update(conn.execute(sa.select(m.person_id).where(m.record_id.in_(rids[i:i + chunk]))).scalars())
    return persons


def _combine(a: Customers, b: Customers) -> Customers:
    """Stored and fresh customers together (disjoint: a fresh record has no membership), orders kept aligned."""
    return Customers(a.records + b.records, {**a.sources, **b.sources}, a.hashes + b.hashes,
                     a.duplicates + b.duplicates)


def _links_of(w: Any, person_ids: Iterable[int]) -> list[tuple[Any, ...]]:
    """(id, a_record, b_record, kind, person_id, other_person_id) of the stored links of these persons."""
    ids = sorted(set(person_ids))
    out: list[tuple[Any, ...]] = []
    link = db.LINK.c
    for i in range(0, len(ids), 2000):
        chunk = ids[i:i + 2000]
        out += [tuple(r) for r in w.conn.execute(sa.select(
            link.id, link.a_record, link.b_record, link.kind, link.person_id, link.other_person_id).where(
            sa.or_(link.person_id.in_(chunk), link.other_person_id.in_(chunk))))]
    return out


# -- golden records and overrides ---------------------------------------------------------------------------

def refresh_golden(store: Any, settings: IdentitySettings, person_ids: Iterable[int]) -> None:
    """Recompute the golden records of these persons from their current members (a person left empty goes)."""
    ids = sorted(set(person_ids))
    if not ids:
        return
    found = db.members(store, person_ids=ids)
    customers = load_customers(store, [m.record_id for m in found])
    groups: dict[int, list[Any]] = defaultdict(list)
    for m in found:
        if m.ref in customers.sources:
            groups[m.person_id].append(customers.sources[m.ref])
    with store.write() as w:
        w.delete_in("person", "id", ids)
        w.insert_rows("person", db.PERSON_COLS, [
            db.person_row(pid, choose(srcs, settings.survivorship).values, len(srcs), w.now_param)
            for pid, srcs in groups.items()])


def find_person(store: Any, target: str) -> int:
    """A person id from ``PERSON_ID`` or ``CONNECTOR_ID:EXTERNAL_ID``; ``IdentityNotFound`` if none."""
    if target.isdigit():
        with store.read() as conn:
            if conn.execute(sa.select(db.PERSON.c.id).where(db.PERSON.c.id == int(target))).first():
                return int(target)
        raise IdentityNotFound(f"no person {target}", hint="see `storesync identities export` for person ids")
    ref = parse_ref(target)
    found = db.members(store, ref=ref)
    if not found:
        raise IdentityNotFound(f"no resolved customer record {target}",
                               hint="give CONNECTOR_ID:EXTERNAL_ID of a stored customer, then run "
                                    "`storesync identities resolve` if it is new")
    return found[0].person_id


def parse_ref(target: str) -> Ref:
    cid, sep, ext = target.partition(":")
    if not sep or not cid or not ext:
        raise IdentityNotFound(f"{target!r} is neither a person id nor CONNECTOR_ID:EXTERNAL_ID")
    return (cid, ext)


def merge(store: Any, settings: IdentitySettings, a: str, b: str, who: str) -> tuple[int, int]:
    """Store ``merge A B`` and apply it: the smaller person's records join the larger. Returns (kept, gone)."""
    with connector_lock(store, LOCK):
        return _merge(store, settings, a, b, who)


def _merge(store: Any, settings: IdentitySettings, a: str, b: str, who: str) -> tuple[int, int]:
    pa, pb = find_person(store, a), find_person(store, b)
    if pa == pb:
        raise IdentityNotFound(f"{a} and {b} are already one person ({pa})")
    ma, mb = db.members(store, person_ids=[pa]), db.members(store, person_ids=[pb])
    (keep, _keep_m), (gone, _gone_m) = sorted([(pa, ma), (pb, mb)], key=lambda x: (-len(x[1]), x[0]))
    anchor_a, anchor_b = _anchor(a, ma), _anchor(b, mb)
    run = db.last_run(store)
    with store.write() as w:
        db.add_overrides(w, "must_link", [(anchor_a.ref, anchor_b.ref)], f"merge {a} {b}", who)
        w.conn.execute(sa.update(db.MEMBER).where(db.MEMBER.c.person_id == gone).values(person_id=keep))
        w.conn.execute(sa.update(db.MEMBER).where(db.MEMBER.c.record_id.in_(
            [anchor_a.record_id, anchor_b.record_id]), db.MEMBER.c.rule == "single").values(rule="manual"))
        for column in ("person_id", "other_person_id"):
            w.conn.execute(sa.update(db.LINK).where(db.LINK.c[column] == gone).values({column: keep}))
        manual = Link(anchor_a.ref, anchor_b.ref, "manual", f"merge {a} {b}", 1.0, (f"merged by hand by {who}",))
        w.insert_rows("identity_link", db.LINK_COLS, [db.link_row(
            run["id"] if run else 0, "auto", manual, anchor_a.record_id, anchor_b.record_id, keep, keep)])
    refresh_golden(store, settings, [keep, gone])
    return keep, gone


def split(store: Any, settings: IdentitySettings, person: str, record: str, who: str) -> tuple[int, int]:
    """Store ``split PERSON RECORD`` and apply it: the record leaves into a person of its own.

    Returns (person id, the record's new person id).
    """
    with connector_lock(store, LOCK):
        return _split(store, settings, person, record, who)


def _split(store: Any, settings: IdentitySettings, person: str, record: str, who: str) -> tuple[int, int]:
    pid = find_person(store, person)
    ref = parse_ref(record)
    found = db.members(store, person_ids=[pid])
    mine = [m for m in found if m.ref == ref]
    if not mine:
        raise IdentityNotFound(f"record {record} is not in person {pid}")
    if len(found) == 1:
        raise IdentityNotFound(f"person {pid} has only the record {record}; nothing to split")
    new_id = db.max_person_id(store) + 1
    rid = mine[0].record_id
    run = db.last_run(store)
    with store.write() as w:
        db.add_overrides(w, "cannot_link", [(ref, m.ref) for m in found if m.ref != ref], f"split {pid} {record}",
                         who)
        w.conn.execute(sa.update(db.MEMBER).where(db.MEMBER.c.record_id == rid).values(person_id=new_id,
                                                                                         rule="manual"))
        _repoint_links(w, _links_of(w, [pid]), {m.record_id: (new_id if m.record_id == rid else pid)
                                               for m in found})
        if run is not None:
            w.conn.execute(sa.update(db.RUN).where(db.RUN.c.id == run["id"]).values(max_person_id=new_id))
    refresh_golden(store, settings, [pid, new_id])
    return pid, new_id


def _anchor(target: str, found: list[Any]) -> Any:
    """The record a merge names: the one given, or the first of the person."""
    if not target.isdigit():
        ref = parse_ref(target)
        return next(m for m in found if m.ref == ref)
    return min(found, key=lambda m: m.record_id)
