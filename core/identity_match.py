"""Identity matching: source customer records linked into persons, every link explained (issue 8).

The contract (stable; fields and keyword arguments may be added, none removed)::

    resolve(records, settings=None, *, known=None, must_link=(), cannot_link=()) -> Resolution
    block_keys(record, settings) -> set[str]

- ``records``: ``IdentityRecord`` values; ``ref`` is ``(connector_id, external_id)`` and must be unique.
- ``settings``: ``MatchSettings`` (``core/identity_settings.py``); ``None`` means the defaults (strict mode).
- ``known``: ``ref -> person id`` of records already resolved. They start united by person id and are never
  re-split by rules; new links are looked for only where at least one side is not in ``known``. Incremental use:
  pass the new and changed records plus the stored records sharing a ``block_keys`` key with them.
- ``must_link``: pairs joined first, with the rule ``manual`` (stored overrides win over rules).
- ``cannot_link``: pairs that never end in one person: any link that would join them is refused and kept in
  ``possible``; a known person holding such a pair loses the later record of the pair.
- ``Resolution``: ``persons`` (lists of refs, sorted), ``links`` (what joined them: rule, value, score,
  evidence), ``possible`` (links held back: below the auto-merge threshold of the mode, over a guard or refused
  by ``cannot_link``; for review, never for routing), ``shared`` (identifier -> given names seen with it).
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
5. ``manual``: a stored override.

Guards, as careful customer-data platforms use them: placeholder values are never keys (the normalisers drop
them); a phone, email or address seen with more than ``max_given_names`` given names, or on more than
``max_identifier_records`` records, is *shared* and ignored as evidence; a record without a name is attached
through an identifier only when that identifier is seen with one given name, and through a phone only in
marketing mode (a child gives a parent's number at the till; the parent's SMS contact is then the number alone
and would join the child); when two records' given names clearly differ, their household fields (phone, email, address)
count for nothing; two persons of several records each are joined by a fuzzy link only when a second link
between them supports it (no chaining through one weak link); and a link that would make a person bigger than
``max_cluster`` records is not made but kept as a *possible* link for review.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from .identity_blocking import candidate_pairs, key_strings
from .identity_features import Features, extract
from .identity_score import (CONTACT_FIELDS, DIFFERENT, EXACT, HOUSEHOLD_FIELDS, MISSING, Scores, prior_bits,
                             probability, score_pairs)
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
        return np.fromiter((self.find(x) for x in range(len(self.parent))), np.int64, len(self.parent))

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
    how many records the store holds in all (incremental runs pass a subset; it sets the prior odds)."""
    return _Run(list(records), settings or MatchSettings(), known or {}, population).resolve(must_link, cannot_link)


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
        self.feats: Features = extract(recs, settings.region)
        self.is_known = np.fromiter((ref in known for ref in self.refs), bool, len(recs))
        self.prior = prior_bits(population or len(recs))
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
        ignored, shared = self._shared()
        self._deterministic(ignored)
        self._fuzzy(ignored)
        find, index = self.sets.find, self.index
        self.possible = [p for p in self.possible if find(index[p.a]) != find(index[p.b])]
        persons: dict[int, list[Ref]] = defaultdict(list)
        for k, ref in enumerate(self.refs):
            persons[self.sets.find(k)].append(ref)
        self.stats["persons"] = len(persons)
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
            flags |= np.bincount(combo // width, minlength=len(flags)) > most
            ignored[name] = flags
            for code, g in zip(combo // width, combo % width, strict=True):
                if flags[code]:
                    shared.setdefault(str(feats.values[name][code]), set()).add(str(feats.values["given"][g]))
            for code in np.flatnonzero(flags):
                shared.setdefault(str(feats.values[name][code]), set())
        ignored["nid"] = feats.counts["nid"] > s.max_identifier_records
        self.stats["shared_identifiers"] = int(sum(int(f.sum()) for f in ignored.values()))
        return ignored, shared

    def _join(self, a: int, b: int, link: Callable[[], Link], limit: int | None) -> None:
        if self.is_known[a] and self.is_known[b]:
            return
        joined = self.sets.union(a, b, limit)
        if joined:
            self.links.append(link())
        elif joined is False:
            self.possible.append(link())
            self.held.add((min(a, b), max(a, b)))

    def _deterministic(self, ignored: dict[str, np.ndarray]) -> None:
        """member_id, then email and phone with a compatible given name (stars within each group)."""
        given = self.feats.codes["given"]
        limit = self.settings.max_cluster
        codes = self.feats.codes
        for name, rule in (("member", "member_id"), ("nid", "national_id"), ("email", "email"),
                           ("phone", "phone+name")):
            values = self.feats.values[name]
            for code, group in _groups(codes[name], ignored.get(name)):
                shown = values[code][1] if name == "member" else str(values[code])
                if name == "member":
                    subgroups = [group]
                elif name == "nid":  # a typo can land on someone else's number: the birth date or surname too
                    subgroups = _same(group, codes["dob"]) + _same(group, codes["surname"])
                else:
                    subgroups = _by_given(group, given,
                                          nameless=name == "email" or self.settings.mode == "marketing")
                for sub in subgroups:
                    anchor = sub[np.argmin(self.is_known[sub])]  # a new record anchors, to reach known persons
                    for other in sub:
                        if other != anchor:
                            self._join(int(anchor), int(other), _deterministic_link(
                                self, int(anchor), int(other), rule, shown), limit)

    def _fuzzy(self, ignored: dict[str, np.ndarray]) -> None:
        """Scored candidate pairs: merge from the mode's threshold, keep as possible from the review one."""
        s = self.settings
        i, j, skipped = candidate_pairs(self.feats, s.max_block, skip=self.is_known)
        roots = self.sets.roots()
        apart = roots[i] != roots[j]
        i, j = i[apart], j[apart]
        self.stats.update(candidate_pairs=int(len(i)), blocks_skipped=skipped)
        household = HOUSEHOLD_FIELDS if s.mode == "strict" else CONTACT_FIELDS
        scores = score_pairs(self.feats, i, j, ignored, household)
        prob = probability(scores.weight + self.prior)
        keep = np.flatnonzero(prob >= s.possible_threshold)
        order = keep[np.argsort(-prob[keep], kind="stable")]
        support = _Adjacency(i[keep], j[keep], len(self.recs))
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
            if self.sets.size[ra] > 1 and self.sets.size[rb] > 1 and not support.second_link(self.sets, a, b):
                self.possible.append(link)  # no chaining two persons through one weak link
                continue
            (self.links if self.sets.union(a, b, s.max_cluster) else self.possible).append(link)
        self.stats["possible"] = len(self.possible)


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


def _groups(codes: np.ndarray, ignored: np.ndarray | None) -> Iterable[tuple[int, np.ndarray]]:
    """Record indexes per value code held by at least two records, skipping ignored values."""
    present = np.flatnonzero(codes >= 0)
    if ignored is not None:
        present = present[~ignored[codes[present]]]
    order = present[np.argsort(codes[present], kind="stable")]
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if len(order) else []
    bounds = np.r_[starts, len(order)]
    for k in range(len(bounds) - 1):
        lo, hi = bounds[k], bounds[k + 1]
        if hi - lo >= 2:
            yield int(sorted_codes[lo]), order[lo:hi]


def _same(group: np.ndarray, codes: np.ndarray) -> list[np.ndarray]:
    """The records of ``group`` sharing a value of ``codes``, two or more at a time."""
    values = codes[group]
    return [group[values == v] for v in np.unique(values[values >= 0]) if (values == v).sum() >= 2]


def _by_given(group: np.ndarray, given: np.ndarray, *, nameless: bool) -> list[np.ndarray]:
    """One identifier's records split by given name; with ``nameless``, records without a name join the only
    name there is, if there is only one."""
    names = given[group]
    distinct = np.unique(names[names >= 0])
    subgroups = [group[names == g] for g in distinct]
    unnamed = group[names < 0]
    if nameless and len(distinct) <= 1 and len(unnamed):
        subgroups = [np.r_[subgroups[0], unnamed] if subgroups else unnamed]
    return [sub for sub in subgroups if len(sub) >= 2]


def _deterministic_link(run: _Run, a: int, b: int, rule: str, shown: str) -> Callable[[], Link]:
    def make() -> Link:
        words = {"member_id": f"same member number {shown}", "national_id": f"same id number {shown}",
                 "email": f"same email {shown}",
                 "phone+name": f"same phone {shown}"}
        evidence = [words[rule]]
        given = run.feats.codes["given"]
        if rule != "member_id" and given[a] >= 0 and given[a] == given[b]:
            evidence.append(f"same first name {run.feats.values['given'][given[a]]}")
        value = shown if rule != "phone+name" else f"{shown} {run.feats.values['given'][given[a]]}" \
            if given[a] >= 0 else shown
        return Link(run.refs[a], run.refs[b], rule, value, 1.0, tuple(evidence))
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
