"""Identity matching: source customer records linked into persons, every link explained (issue 8).

The contract (stable; fields and keyword arguments may be added, none removed)::

    resolve(records, settings=None, *, known=None, must_link=(), cannot_link=(), population=None) -> Resolution
    block_keys(record, settings) -> set[str]

- ``records``: ``IdentityRecord`` values; ``ref`` is ``(connector_id, external_id)`` and must be unique.
- ``settings``: ``MatchSettings`` (``core/identity_settings.py``); ``None`` means the defaults (strict mode).
- ``known``: ``ref -> person id`` of records already resolved. They start united by person id and are never
  re-split by rules; new links are looked for only where at least one side is not in ``known``. Incremental use:
  pass the new and changed records plus the stored records sharing a ``block_keys`` key with them, and
  ``population=`` the number of records in the store (fuzzy scores weigh a value by how common it is there).
- ``must_link``: pairs joined first, with the rule ``manual`` (stored overrides win over rules).
- ``cannot_link``: pairs that never end in one person: any link that would join them is refused and kept in
  ``possible``; a known person holding such a pair loses the later record of the pair.
- ``Resolution``: ``persons`` (lists of refs, sorted), ``links`` (what joined them: rule, value, score,
  evidence), ``possible`` (links held back: below the auto-merge threshold of the mode, over a guard or refused
  by ``cannot_link``; for review, never for routing), ``shared`` (identifier -> given names seen with it),
  ``stats`` (records, candidate pairs, oversized blocks skipped, seconds per phase).
- ``block_keys``: strings under which a record is stored so candidates of a new record can be fetched; two
  records can only be linked by rules if they share one (member id, email, phone, name/birth/address keys).

Rules have stable names, in order of strength:

1. ``member_id``: the same member number in the same system; ``national_id``: the same government id number
   (HKID, FEBRL's soc_sec_id) together with the same birth date or surname;
2. ``email``: the same mailbox (``email_key``), unless that address is *shared*: seen with more than
   ``max_given_names`` different given names (an office or family address);
3. ``phone+name``: the same number (``phone_key``) together with a compatible given name (the same folded name,
   or a nickname of it). A family phone is why a phone alone never links;
4. ``fuzzy``: a Fellegi-Sunter score (``core/identity_score.py``) of names, birth date, address, city, postcode,
   phone, email and national id over blocked candidate pairs (``core/identity_blocking.py``); merged when its
   probability reaches the mode's threshold, kept as possible from ``possible_threshold``;
5. the second pass (``core/identity_bridge.py``), over the persons rules 1-4 made: ``whole name`` (given name
   and surname at one phone or email, even a shared one), ``similar name`` (a typo
   apart at one phone or email), ``birth date`` (one phone or email, surname and birth date, whatever the given
   names), ``known name`` (a person's given names as an alias set) and ``phone owner`` (a phone-only record
   joins the one person at its number, where ``MatchSettings.phone_owner`` allows it: marketing by default),
   ``own phone`` (the same through the systems named in ``MatchSettings.own_phone_sources``, in both modes)
   and ``email name`` (an email spelling the other person's Chinese or English name, marketing by default);
6. ``manual``: a stored override.

Guards, as careful customer-data platforms use them:

- placeholder values are never keys (the normalisers drop them);
- a phone or email seen with more than ``max_given_names`` given names, an address seen with more than
  ``max_address_names``, or any of them on more than ``max_identifier_records`` records, is *shared* and
  ignored as evidence (it is listed in ``Resolution.shared``);
- a record without a name joins through an identifier only when that identifier is seen with one given name
  (spellings a typo apart count once), and through a phone only where ``phone_owner`` allows it (marketing by
  default; a child gives a parent's number at the till; the parent's SMS contact is then the number alone and
  would join the child), or where the number was given as the person's own in a system named in
  ``own_phone_sources``;
- when two records' given names clearly differ, their household fields count for nothing (strict: phone,
  email, address, city, postcode; marketing: phone, email), so families and twins are not merged;
- two persons of several records each are joined by a fuzzy link below the strict threshold only when a second
  link between them supports it (no chaining through one weak link);
- a link that would make a person bigger than ``max_cluster`` records is not made but kept as possible.
"""

from __future__ import annotations

import gc
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from .identity_blocking import candidate_pairs, key_strings
from .identity_bridge import bridge, mistyped, one_slip
from .identity_features import Features, extract
from .identity_score import (CONTACT_FIELDS, DIFFERENT, EXACT, HOUSEHOLD_FIELDS, MISSING, Scores, likely_pairs,
                             prior_bits)
from .identity_settings import MatchSettings

__all__ = ["IdentityRecord", "Link", "MatchSettings", "Ref", "Resolution", "block_keys", "resolve"]

Ref = tuple[str, str]


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """One source customer record, as the matcher sees it (raw values: the matcher normalises them)."""

    connector_id: str
    external_id: str
    member_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: date | str | None = None
    stream: str = "customers"
    full_name: str | None = None  # used when first/last are empty ("CHAN Tai Man", "Chan, Tai Man")
    address: str | None = None  # line1 and line2
    city: str | None = None
    postal_code: str | None = None
    updated_at: datetime | None = None
    national_id: str | None = None  # a government id comparable across systems (HKID; FEBRL's soc_sec_id)

    @property
    def ref(self) -> Ref:
        return (self.connector_id, self.external_id)


@dataclass(frozen=True, slots=True)
class Link:
    """Why two records are one person: the rule, the value it matched on, a probability and facts in words."""

    a: Ref
    b: Ref
    rule: str  # member_id | national_id | email | phone+name | fuzzy | manual
    value: str  # what they matched on
    score: float = 1.0
    evidence: tuple[str, ...] = ()


@dataclass
class Resolution:
    persons: list[list[Ref]]  # each person: its records, sorted
    links: list[Link]  # the links that made them
    possible: list[Link] = field(default_factory=list)  # links held back, for review
    shared: dict[str, set[str]] = field(default_factory=dict)  # identifier -> given names it was seen with
    stats: dict[str, Any] = field(default_factory=dict)  # pairs compared, blocks skipped, ...


class _Sets:
    """Union-find over record indexes with sizes and cannot-link partners per set."""

    def __init__(self, n: int, cannot: Iterable[tuple[int, int]]) -> None:
        self.parent = list(range(n))
        self.size = [1] * n
        self.apart: dict[int, set[int]] = defaultdict(set)  # root -> records its set may never join
        self.members: dict[int, list[int]] = {}  # root -> its records, for sets of more than one
        for a, b in cannot:
            self.apart[a].add(b)
            self.apart[b].add(a)

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def roots(self) -> np.ndarray:
        """Each record's root, by pointer jumping over all records at once (every record's parent becomes its
        root, as ``find`` would leave it)."""
        roots = np.asarray(self.parent, dtype=np.int64)
        while True:
            up = roots[roots]
            if np.array_equal(up, roots):
                self.parent = roots.tolist()
                return roots
            roots = up

    def _forbidden(self, ra: int, rb: int) -> bool:
        if not self.apart:
            return False
        small, big = (ra, rb) if len(self.apart.get(ra, ())) <= len(self.apart.get(rb, ())) else (rb, ra)
        return any(self.find(x) == big for x in self.apart.get(small, ()))

    def union(self, a: int, b: int, limit: int | None) -> bool | None:
        """Join the sets of ``a`` and ``b``: True if joined, None if already one, False if refused (over
        ``limit`` records, or a cannot-link pair would end in one set)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        if limit is not None and self.size[ra] + self.size[rb] > limit:
            return False
        if self._forbidden(ra, rb):
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        self.members.setdefault(ra, [ra]).extend(self.members.pop(rb, [rb]))
        if rb in self.apart:
            self.apart[ra] |= self.apart.pop(rb)
        return True


def block_keys(record: IdentityRecord, settings: MatchSettings | None = None) -> set[str]:
    """The keys under which ``record`` meets its candidates (opaque strings to the store: ``p:`` phone, ``e:``
    email, ``m:`` member, ``i:`` national id, and name/birth/address combinations)."""
    settings = settings or MatchSettings()
    return key_strings(extract([record], settings.region), 0)


def resolve(records: Iterable[IdentityRecord], settings: MatchSettings | None = None, *,
            known: Mapping[Ref, str] | None = None, must_link: Iterable[tuple[Ref, Ref]] = (),
            cannot_link: Iterable[tuple[Ref, Ref]] = (), population: int | None = None) -> Resolution:
    """Persons from ``records`` by the rules above (see the module docstring for the contract). ``population``:
    how many records the store holds in all; incremental runs pass it, since they give only a part of the
    records (it sets the prior odds and the term frequencies of fuzzy scores)."""
    with _collector_paused():
        return _Run(list(records), settings or MatchSettings(), known or {}, population).resolve(must_link,
                                                                                                  cannot_link)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while matching: the rules make millions of small sets and tuples, and each
    of its full passes walks every object the caller holds (a million records), which took a third of a
    million-record run. Matching makes no reference cycles; what it drops is freed as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Run:
    """One resolution: features, unions and the links that made them."""

    def __init__(self, recs: list[IdentityRecord], settings: MatchSettings, known: Mapping[Ref, str],
                 population: int | None) -> None:
        self.recs, self.settings, self.known = recs, settings, known
        self.refs = [r.ref for r in recs]
        self.index = {ref: k for k, ref in enumerate(self.refs)}
        if len(self.index) != len(recs):
            dup = next(ref for k, ref in enumerate(self.refs) if self.index[ref] != k)
            raise ValueError(f"record {dup[0]}:{dup[1]} is given twice; each (connector_id, external_id) once")
        started = time.perf_counter()
        self.feats: Features = extract(recs, settings.region)
        self.seconds = {"normalise": time.perf_counter() - started}
        self.is_known = np.fromiter((ref in known for ref in self.refs), bool, len(recs))
        self.prior = prior_bits(max(population or 0, len(recs)))
        self.feats.scale = max((population or 0) / max(len(recs), 1), 1.0)
        self.links: list[Link] = []
        self.possible: list[Link] = []
        self.stats: dict[str, Any] = {"records": len(recs)}
        self.held: set[tuple[int, int]] = set()  # pairs already kept as possible by a rule

    def resolve(self, must_link: Iterable[tuple[Ref, Ref]], cannot_link: Iterable[tuple[Ref, Ref]]) -> Resolution:
        pairs = [(self.index[a], self.index[b]) for a, b in cannot_link if a in self.index and b in self.index]
        self.sets = _Sets(len(self.recs), pairs)
        self._unite_known()
        for a, b in must_link:
            if a in self.index and b in self.index:
                link = Link(a, b, "manual", "stored override", 1.0, ("joined by hand",))
                refused = self.sets.union(self.index[a], self.index[b], None) is False
                (self.possible if refused else self.links).append(link)
        clock = time.perf_counter()
        ignored, shared = self._shared()
        self._deterministic(ignored)
        self.seconds["rules"] = time.perf_counter() - clock
        self._fuzzy(ignored)
        clock = time.perf_counter()
        bridge(self, ignored)
        self.seconds["bridge"] = time.perf_counter() - clock
        clock = time.perf_counter()
        find, index = self.sets.find, self.index
        self.possible = [p for p in self.possible if find(index[p.a]) != find(index[p.b])]
        persons: dict[int, list[Ref]] = defaultdict(list)
        for k, ref in enumerate(self.refs):
            persons[self.sets.find(k)].append(ref)
        self.stats["persons"] = len(persons)
        self.seconds["persons"] = time.perf_counter() - clock
        self.stats["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        return Resolution(sorted(sorted(p) for p in persons.values()), self.links, self.possible, shared,
                          self.stats)

    def _unite_known(self) -> None:
        """Records of one known person start as one set (no size cap: a stored person is kept whole)."""
        first_of: dict[str, int] = {}
        for k, ref in enumerate(self.refs):
            pid = self.known.get(ref)
            if pid is not None:
                self.sets.union(first_of.setdefault(pid, k), k, None)

    def _shared(self) -> tuple[dict[str, np.ndarray], dict[str, set[str]]]:
        """Identifiers seen with too many given names or records: no evidence. Returns per field the flags by
        value code, and the shared values with their given names."""
        feats, s = self.feats, self.settings
        given = feats.codes["given"]
        ignored: dict[str, np.ndarray] = {}
        shared: dict[str, set[str]] = {}
        width = len(feats.values["given"]) + 1
        for name, most in (("email", s.max_given_names), ("phone", s.max_given_names),
                           ("address", s.max_address_names)):
            codes = feats.codes[name]
            flags = feats.counts[name] > s.max_identifier_records
            has = (codes >= 0) & (given >= 0)
            combo = np.unique(codes[has].astype(np.int64) * width + given[has])
            flags |= _too_many_names(combo, width, feats.values["given"], len(flags), most)
            ignored[name] = flags
            combo = combo[flags[combo // width]]
            for code, g in zip(combo // width, combo % width, strict=True):
                shared.setdefault(str(feats.values[name][code]), set()).add(str(feats.values["given"][g]))
            for code in np.flatnonzero(flags):
                shared.setdefault(str(feats.values[name][code]), set())
        ignored["nid"] = feats.counts["nid"] > s.max_identifier_records
        self.stats["shared_identifiers"] = int(sum(int(f.sum()) for f in ignored.values()))
        return ignored, shared

    def join(self, a: int, b: int, link: Callable[[], Link]) -> None:
        """Join the persons of records ``a`` and ``b``, recording the link; a join that would pass
        ``max_cluster`` or a cannot-link pair is kept as possible instead (once per pair of records)."""
        pair = (min(a, b), max(a, b))
        if (self.is_known[a] and self.is_known[b]) or pair in self.held:
            return
        joined = self.sets.union(a, b, self.settings.max_cluster)
        if joined:
            self.links.append(link())
        elif joined is False:
            self.possible.append(link())
            self.held.add(pair)

    def _deterministic(self, ignored: dict[str, np.ndarray]) -> None:
        """member_id, national_id, then email and phone with a compatible given name (stars within each group,
        a new record at the centre so it reaches known persons)."""
        codes = self.feats.codes
        given, width = codes["given"], len(self.feats.values["given"]) + 1
        for name, rule in (("member", "member_id"), ("nid", "national_id"), ("email", "email"),
                           ("phone", "phone+name")):
            ids = codes[name].astype(np.int64)
            present = ids >= 0
            if name in ignored and present.any():
                ids[present] = np.where(ignored[name][ids[present]], -1, ids[present])
            if name == "member":
                keys = [ids]
            elif name == "nid":  # a typo can land on someone else's number: the birth date or surname too
                keys = [_pair_key(ids, codes["dob"]), _pair_key(ids, codes["surname"])]
            else:
                nameless = name == "email" or self.settings.phone_owner_joins
                keys = [_given_key(ids, given, width, nameless)]
            for key in keys:
                for a, b in zip(*_stars(key, self.is_known), strict=True):
                    self.join(int(a), int(b), _deterministic_link(self, int(a), int(b), rule, name))

    def _fuzzy(self, ignored: dict[str, np.ndarray]) -> None:
        """Scored candidate pairs: merge from the mode's threshold, keep as possible from the review one."""
        s = self.settings
        clock = time.perf_counter()
        i, j, skipped = candidate_pairs(self.feats, s.max_block, skip=self.is_known)
        self.seconds["block"] = time.perf_counter() - clock
        roots = self.sets.roots()
        apart = roots[i] != roots[j]
        i, j = i[apart], j[apart]
        self.stats.update(candidate_pairs=int(len(i)), blocks_skipped=skipped)
        household = HOUSEHOLD_FIELDS if s.mode == "strict" else CONTACT_FIELDS
        clock = time.perf_counter()
        i, j, prob, scores = likely_pairs(self.feats, i, j, self.prior, s.possible_threshold, ignored=ignored,
                                          household=household)
        self.seconds["score"] = time.perf_counter() - clock
        clock = time.perf_counter()
        order = np.argsort(-prob, kind="stable")
        support = _Adjacency(i, j, len(self.recs))
        auto = s.auto_threshold
        for k in order:
            a, b, p = int(i[k]), int(j[k]), float(prob[k])
            ra, rb = self.sets.find(a), self.sets.find(b)
            if ra == rb or (a, b) in self.held:
                continue
            link = Link(self.refs[a], self.refs[b], "fuzzy", f"score {p:.4f}", round(p, 6),
                        _evidence(self.feats, scores, k, a, b))
            if p < auto:
                self.possible.append(link)
                continue
            if (p < s.strict_threshold and self.sets.size[ra] > 1 and self.sets.size[rb] > 1
                    and not support.second_link(self.sets, a, b)):
                self.possible.append(link)  # no chaining two persons through one weak link
                continue
            (self.links if self.sets.union(a, b, s.max_cluster) else self.possible).append(link)
        self.stats["possible"] = len(self.possible)
        self.seconds["cluster"] = time.perf_counter() - clock


class _Adjacency:
    """The scored pairs worth a look, by record, to count links between two persons."""

    def __init__(self, i: np.ndarray, j: np.ndarray, n: int) -> None:
        src, dst = np.r_[i, j], np.r_[j, i]
        order = np.argsort(src, kind="stable")
        self.dst = dst[order]
        self.start = np.searchsorted(src[order], np.arange(n + 1))

    def second_link(self, sets: _Sets, a: int, b: int) -> bool:
        """Whether the persons of ``a`` and ``b`` are joined by another pair besides ``(a, b)``."""
        ra, rb = sets.find(a), sets.find(b)
        small = ra if sets.size[ra] <= sets.size[rb] else rb
        other = rb if small == ra else ra
        for x in sets.members.get(small, [small]):
            for y in self.dst[self.start[x]:self.start[x + 1]]:
                if (x, int(y)) not in ((a, b), (b, a)) and sets.find(int(y)) == other:
                    return True
        return False


def _stars(key: np.ndarray, is_known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each group of records sharing ``key`` (>= 0): its first record not yet known (else its first)
    paired with each other member."""
    rows = np.flatnonzero(key >= 0)
    rows = rows[np.lexsort((is_known[rows], key[rows]))]
    ks = key[rows]
    if len(rows) < 2:
        return rows[:0], rows[:0]
    first = np.r_[True, ks[1:] != ks[:-1]]
    anchor = rows[np.flatnonzero(first)][np.cumsum(first) - 1]
    others = ~first
    return anchor[others], rows[others]


def _pair_key(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One key for the pair of codes (-1 if either is missing)."""
    key = a.astype(np.int64) * (int(b.max(initial=0)) + 2) + b
    key[(a < 0) | (b < 0)] = -1
    return key


def _too_many_names(combo: np.ndarray, width: int, names: np.ndarray, n: int, most: int) -> np.ndarray:
    """Per identifier code, whether it is seen with more than ``most`` given names (``combo``: sorted distinct
    identifier * ``width`` + given name); spellings one slip or one typo apart count once (``Tai Man``, ``Tai Mun``
    and ``Tai Mgn`` are one name, not a second person)."""
    ids, first, counts = np.unique(combo // width, return_index=True, return_counts=True)
    over = np.zeros(n, dtype=bool)
    for code, lo, many in zip(ids[counts > most], first[counts > most], counts[counts > most], strict=True):
        given = [str(names[g]) for g in combo[lo:lo + many] % width]
        over[code] = len(given) - sum(any(one_slip(x, y) or mistyped(x, y) for y in given[:k])
                                      for k, x in enumerate(given)) > most
    return over


def _given_key(ids: np.ndarray, given: np.ndarray, width: int, nameless: bool) -> np.ndarray:
    """Records meet on an identifier with the same given name; with ``nameless``, records without a name meet
    the one given name seen with that identifier, when there is only one."""
    named = (ids >= 0) & (given >= 0)
    combo = np.unique(ids[named] * width + given[named])
    names_per_id = np.bincount(combo // width, minlength=max(int(ids.max(initial=-1)) + 1, 1))
    key = np.where(named, ids * width + given, -1)
    if nameless:
        single = (ids >= 0) & (names_per_id[np.maximum(ids, 0)] <= 1)
        key = np.where(single, ids * width + width - 1, key)  # one group per identifier, named or not
    return key


def _deterministic_link(run: _Run, a: int, b: int, rule: str, field_name: str) -> Callable[[], Link]:
    def make() -> Link:
        codes, values = run.feats.codes, run.feats.values
        value = values[field_name][codes[field_name][a]]
        shown = value[1] if field_name == "member" else str(value)
        words = {"member_id": "same member number", "national_id": "same id number", "email": "same email",
                 "phone+name": "same phone"}
        evidence = [f"{words[rule]} {shown}"]
        g = codes["given"]
        if rule != "member_id" and g[a] >= 0 and g[a] == g[b]:
            evidence.append(f"same first name {values['given'][g[a]]}")
        if rule == "national_id":
            evidence.append("same birth date" if codes["dob"][a] == codes["dob"][b] >= 0 else "same surname")
        if rule == "phone+name" and g[a] >= 0:
            shown = f"{shown} {values['given'][g[a]]}"
        return Link(run.refs[a], run.refs[b], rule, shown, 1.0, tuple(evidence))
    return make


_WORDS = {"given": "first name", "surname": "surname", "dob": "birth date", "address": "address", "city": "city",
          "postcode": "postcode", "email": "email", "phone": "phone", "nid": "id number"}


def _evidence(feats: Features, scores: Scores, k: int, a: int, b: int) -> tuple[str, ...]:
    """The facts behind pair ``k`` (records ``a``, ``b``) in words: "same phone +85291234567", "first name
    taiman ~ taimun (0.93)", "different birth date 1990-03-07 / 1991-04-02"."""
    facts = []
    for name, levels in scores.levels.items():
        level = int(levels[k])
        if level == MISSING:
            continue
        codes, values = feats.codes[name], feats.values[name]
        va, vb = values[codes[a]], values[codes[b]]
        if level == EXACT:
            facts.append(f"same {_WORDS[name]} {va}")
        elif level == DIFFERENT:
            facts.append(f"different {_WORDS[name]} {va} / {vb}")
        else:
            facts.append(f"{_WORDS[name]} {va} ~ {vb} ({float(scores.similarity[name][k]):.2f})")
    return tuple(facts)
