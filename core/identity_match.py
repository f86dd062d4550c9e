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

1. ``member_id``: the same member number in the same system;
2. ``email``: the same mailbox (``email_key``), unless that address is *shared*: seen with more than
   ``max_given_names`` different given names (an office or family address);
3. ``phone+name``: the same number (``phone_key``) together with a compatible given name (the same folded name,
   or a nickname of it). A family phone is why a phone alone never links;
4. ``fuzzy``: a scored comparison of names, birth date, address and identifiers;
5. ``manual``: a stored override.

Guards, as careful customer-data platforms use them: placeholder values are never keys (the normalisers drop
them); a shared identifier is ignored as evidence; and a link that would make a person bigger than
``max_cluster`` records is not made but kept as a *possible* link for review, so one bad identifier cannot chain
hundreds of people together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from .identity_normalize import NameKey, date_key, email_key, name_key, phone_key
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

    @property
    def ref(self) -> Ref:
        return (self.connector_id, self.external_id)


@dataclass(frozen=True, slots=True)
class Link:
    """Why two records are one person: the rule, the value it matched on, a probability and facts in words."""

    a: Ref
    b: Ref
    rule: str  # member_id | email | phone+name | fuzzy | manual
    value: str  # what they matched on
    score: float = 1.0
    evidence: tuple[str, ...] = ()


@dataclass
class Resolution:
    persons: list[list[Ref]]  # each person: its records, sorted
    links: list[Link]  # the links that made them
    possible: list[Link] = field(default_factory=list)  # links held back, for review
    shared: dict[str, set[str]] = field(default_factory=dict)  # identifier -> given names it was seen with


class _Sets:
    """Union-find with sizes and cannot-link partners per set."""

    def __init__(self, refs: Iterable[Ref], cannot: Iterable[tuple[Ref, Ref]]) -> None:
        self.parent: dict[Ref, Ref] = {r: r for r in refs}
        self.size: dict[Ref, int] = dict.fromkeys(self.parent, 1)
        self.apart: dict[Ref, set[Ref]] = defaultdict(set)  # root -> refs its set may never join
        for a, b in cannot:
            if a in self.parent and b in self.parent:
                self.apart[a].add(b)
                self.apart[b].add(a)

    def find(self, x: Ref) -> Ref:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def forbidden(self, ra: Ref, rb: Ref) -> bool:
        small, big = (ra, rb) if len(self.apart.get(ra, ())) <= len(self.apart.get(rb, ())) else (rb, ra)
        return any(self.find(x) == big for x in self.apart.get(small, ()))

    def union(self, a: Ref, b: Ref, limit: int | None) -> bool | None:
        """Join the sets of ``a`` and ``b``: True if joined, None if already one, False if refused (over
        ``limit`` records, or a cannot-link pair would end in one set)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        if limit is not None and self.size[ra] + self.size[rb] > limit:
            return False
        if self.forbidden(ra, rb):
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        if rb in self.apart:
            self.apart[ra] |= self.apart.pop(rb)
        return True


def _name(r: IdentityRecord) -> NameKey | None:
    if r.first_name or r.last_name:
        return name_key(r.first_name, r.last_name)
    return name_key(r.full_name) if r.full_name else None


def block_keys(record: IdentityRecord, settings: MatchSettings | None = None) -> set[str]:
    """The keys under which ``record`` meets its candidates (prefix ``m:`` member, ``e:`` email, ``p:`` phone,
    ``n:`` name, ``b:`` birth date); opaque strings to the store."""
    settings = settings or MatchSettings()
    keys: set[str] = set()
    if record.member_id and record.member_id.strip():
        keys.add(f"m:{record.connector_id}:{record.member_id.strip()}")
    if (e := email_key(record.email)) is not None:
        keys.add(f"e:{e}")
    if (p := phone_key(record.phone, settings.region)) is not None:
        keys.add(f"p:{p}")
    name = _name(record)
    if name is not None and name.given and name.surname:
        keys.add(f"n:{name.surname}:{name.given}")
    if (d := date_key(record.birth_date)) is not None and name is not None:
        keys.add(f"b:{d.isoformat()}:{name.surname or name.given}")
    return keys


def resolve(records: Iterable[IdentityRecord], settings: MatchSettings | None = None, *,
            known: Mapping[Ref, str] | None = None, must_link: Iterable[tuple[Ref, Ref]] = (),
            cannot_link: Iterable[tuple[Ref, Ref]] = ()) -> Resolution:
    """Persons from ``records`` by the rules above (see the module docstring for the contract)."""
    settings = settings or MatchSettings()
    known = known or {}
    recs = list(records)
    sets = _Sets((r.ref for r in recs), cannot_link)
    links: list[Link] = []
    possible: list[Link] = []
    _unite_known(recs, known, sets)
    for a, b in must_link:
        if a in sets.parent and b in sets.parent:
            link = Link(a, b, "manual", "stored override", 1.0, ("joined by hand",))
            (links if sets.union(a, b, None) is not False else possible).append(link)

    def join(a: Ref, b: Ref, rule: str, value: str, evidence: tuple[str, ...]) -> None:
        if a in known and b in known:
            return
        link = Link(a, b, rule, value, 1.0, evidence)
        joined = sets.union(a, b, settings.max_cluster)
        if joined:
            links.append(link)
        elif joined is False:
            possible.append(link)

    shared = _deterministic(recs, settings, known, join)
    persons: dict[Ref, list[Ref]] = defaultdict(list)
    for r in recs:
        persons[sets.find(r.ref)].append(r.ref)
    return Resolution(sorted(sorted(p) for p in persons.values()), links, possible, shared)


def _unite_known(recs: list[IdentityRecord], known: Mapping[Ref, str], sets: _Sets) -> None:
    """Records of one known person start as one set (no size cap: a person stored is kept whole)."""
    first_of: dict[str, Ref] = {}
    for r in recs:
        pid = known.get(r.ref)
        if pid is None:
            continue
        if pid in first_of:
            sets.union(first_of[pid], r.ref, None)
        else:
            first_of[pid] = r.ref


def _deterministic(recs: list[IdentityRecord], settings: MatchSettings, known: Mapping[Ref, str], join) -> dict:
    names = {r.ref: _name(r) for r in recs}
    by_member: dict[tuple[str, str], list[IdentityRecord]] = defaultdict(list)
    by_email: dict[str, list[IdentityRecord]] = defaultdict(list)
    by_phone: dict[str, list[IdentityRecord]] = defaultdict(list)
    for r in recs:
        if r.member_id and r.member_id.strip():
            by_member[(r.connector_id, r.member_id.strip())].append(r)
        if (e := email_key(r.email)) is not None:
            by_email[e].append(r)
        if (p := phone_key(r.phone, settings.region)) is not None:
            by_phone[p].append(r)
    shared: dict[str, set[str]] = {}
    for key, group in (*by_email.items(), *by_phone.items()):
        given = {n.given for n in (names[r.ref] for r in group) if n is not None and n.given}
        if len(given) > settings.max_given_names:
            shared[key] = given

    def star(group: list[IdentityRecord], rule: str, value: str, evidence: tuple[str, ...]) -> None:
        ordered = sorted(group, key=lambda r: r.ref in known)  # new records anchor, so they reach known persons
        for other in ordered[1:]:
            join(ordered[0].ref, other.ref, rule, value, evidence)

    for (_cid, member), group in by_member.items():
        star(group, "member_id", member, (f"same member number {member}",))
    for address, group in by_email.items():
        if address not in shared:
            star(group, "email", address, (f"same email {address}",))
    for number, group in by_phone.items():
        if number in shared:
            continue
        for given, same_name in _by_given(group, names).items():
            star(same_name, "phone+name", f"{number} {given}", (f"same phone {number}", f"same first name {given}"))
    return shared


def _by_given(group: list[IdentityRecord], names: dict[Ref, NameKey | None]) -> dict[str, list]:
    """The records of one phone grouped by given name; records without a name go with no one."""
    out: dict[str, list[IdentityRecord]] = defaultdict(list)
    for r in group:
        name = names[r.ref]
        if name is not None and name.given:
            out[name.given].append(r)
    return {g: rs for g, rs in out.items() if len(rs) > 1}
