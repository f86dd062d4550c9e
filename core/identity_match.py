"""Deterministic identity links with identifier guards (groundwork for issue 8: no fuzzy evidence, store or CLI).

Records are linked into persons by rules a store manager can check, in order of strength:

1. ``member_id``: the same member number in the same system;
2. ``email``: the same mailbox (``email_key``), unless that address is *shared*: seen with more than
   ``max_given_names`` different given names (an office or family address);
3. ``phone+name``: the same number (``phone_key``) together with a compatible given name (the same folded name,
   or a nickname of it). A family phone is why a phone alone never links.

Guards, as careful customer-data platforms use them: placeholder values are never keys (the normalisers drop
them); a shared identifier is ignored as evidence; and a link that would make a person bigger than
``max_cluster`` records is not made but kept as a *possible* link for review, so one bad identifier cannot chain
hundreds of people together. Each link carries its rule and the value it matched on, to explain the merge.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from .identity_normalize import NameKey, email_key, name_key, phone_key

__all__ = ["IdentityRecord", "Link", "Resolution", "resolve"]


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """One source customer record, as the matcher sees it."""

    connector_id: str
    external_id: str
    member_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: date | None = None

    @property
    def ref(self) -> tuple[str, str]:
        return (self.connector_id, self.external_id)


@dataclass(frozen=True, slots=True)
class Link:
    a: tuple[str, str]
    b: tuple[str, str]
    rule: str  # member_id | email | phone+name
    value: str  # what they matched on


@dataclass
class Resolution:
    persons: list[list[tuple[str, str]]]  # each person: its records, sorted
    links: list[Link]  # the links that made them
    possible: list[Link] = field(default_factory=list)  # links held back by a guard, for review
    shared: dict[str, set[str]] = field(default_factory=dict)  # identifier -> given names it was seen with


class _Sets:
    """Union-find with sizes."""

    def __init__(self) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}
        self.size: dict[tuple[str, str], int] = {}

    def add(self, x: tuple[str, str]) -> None:
        if x not in self.parent:
            self.parent[x], self.size[x] = x, 1

    def find(self, x: tuple[str, str]) -> tuple[str, str]:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: tuple[str, str], b: tuple[str, str], limit: int) -> bool | None:
        """Join the sets of ``a`` and ``b``: True if joined, None if already one, False if over ``limit``."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        if self.size[ra] + self.size[rb] > limit:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True


def resolve(records: Iterable[IdentityRecord], *, max_given_names: int = 2, max_cluster: int = 15) -> Resolution:
    """Persons from ``records`` by the deterministic rules above."""
    recs = list(records)
    names = {r.ref: name_key(r.first_name, r.last_name) for r in recs}
    by_member: dict[tuple[str, str], list[IdentityRecord]] = defaultdict(list)
    by_email: dict[str, list[IdentityRecord]] = defaultdict(list)
    by_phone: dict[str, list[IdentityRecord]] = defaultdict(list)
    for r in recs:
        if r.member_id:
            by_member[(r.connector_id, r.member_id.strip())].append(r)
        if (e := email_key(r.email)) is not None:
            by_email[e].append(r)
        if (p := phone_key(r.phone)) is not None:
            by_phone[p].append(r)
    shared = {}
    for key, group in (*by_email.items(), *by_phone.items()):
        given = {n.given for n in (names[r.ref] for r in group) if n is not None and n.given}
        if len(given) > max_given_names:
            shared[key] = given
    sets = _Sets()
    for r in recs:
        sets.add(r.ref)
    links: list[Link] = []
    possible: list[Link] = []

    def join(group: list[IdentityRecord], rule: str, value: str) -> None:
        first = group[0]
        for other in group[1:]:
            link = Link(first.ref, other.ref, rule, value)
            joined = sets.union(first.ref, other.ref, max_cluster)
            if joined:
                links.append(link)
            elif joined is False:
                possible.append(link)

    for (_cid, member), group in by_member.items():
        join(group, "member_id", member)
    for address, group in by_email.items():
        if address not in shared:
            join(group, "email", address)
    for number, group in by_phone.items():
        if number in shared:
            continue
        for given, same_name in _by_given(group, names).items():
            join(same_name, "phone+name", f"{number} {given}")
    persons: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for r in recs:
        persons[sets.find(r.ref)].append(r.ref)
    return Resolution(sorted(sorted(p) for p in persons.values()), links, possible, shared)


def _by_given(group: list[IdentityRecord], names: dict[tuple[str, str], NameKey | None]) -> dict[str, list]:
    """The records of one phone grouped by given name; records without a name go with no one."""
    out: dict[str, list[IdentityRecord]] = defaultdict(list)
    for r in group:
        name = names[r.ref]
        if name is not None and name.given:
            out[name.given].append(r)
    return {g: rs for g, rs in out.items() if len(rs) > 1}
