"""Second-pass identity rules: links that need more than one field, or the persons the first pass made (issue 8).

The first pass (``identity_match``) joins records by one identifier with the same given name, then by a fuzzy
score in which different given names void the household fields. Real customers defeat it in ways this pass
handles, each with a rule of its own that ``identity_explain`` puts in words:

- ``whole name``: the same phone or email, given name and surname, birth dates not different, even where the
  identifier is shared (seen with more than ``max_given_names`` given names: a family phone where the father
  is known as Peter and as Tai Man and a child gave the number too), not where it is on more than
  ``max_identifier_records`` records.
- ``similar name``: the same phone or email, given names one slip apart (``Tai Man``/``Tai Mun``: a vowel
  changed, a letter added or dropped, two neighbours swapped) and no different surname. A changed consonant is
  not a slip: siblings often share one syllable and differ in another (``Ka Wing``/``Ka Ming``), unless the
  change leaves no Cantonese name at all (``Tai Man``/``Tai Mgn``: a typo, ``mistyped``).
- ``birth date``: the same phone or email, surname and birth date, whatever the given names (an English
  name in one system, the Chinese one in another); only twins who share a number look like that.
- ``known name``: two persons at one phone or email, one of them already known by a given name of the other
  (an alias set: once "Peter Chan" and "CHAN Tai Man" are one person, a "Tai Man" at Peter's phone is him),
  also where the identifier is shared (a child gave Peter's number too: a third given name at it).
- ``phone owner``: a record with a phone and no name joins the one person whose named records carry that
  phone (an SMS contact is the number's owner); only when ``MatchSettings.phone_owner`` allows it in the mode.
- ``own phone``: the same in both modes where the merchant names the systems whose phone is always the
  customer's own (``MatchSettings.own_phone_sources``: an SMS list, an account system; a till or a web shop is
  not, a child gives a parent's number there): a phone-only record of such a system joins the one person who
  gave that phone in a named record of such a system, whoever else holds the number at the till; and two
  persons who both gave one phone there under different given names (an English name in the ERP, the Chinese
  one on the SMS list) are one person, unless their surnames or birth dates differ.
- ``email name``: two persons at one phone, one of them holding an email whose local part spells a given name
  of the other (four letters or more) of the other kind than the name given with that email (``Peter`` at
  ``taimanchan@``, the other known as ``Tai Man``), the other not holding that email, surnames and birth dates
  not different; only where ``MatchSettings.email_names`` allows it (marketing by default: about one such join
  in twenty in the synthetic bench is a spouse's email and phone).

``known name``, ``phone owner``, ``own phone`` and ``email name`` run twice: a join of one pass can give the next
one its person.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .identity_match import Link, _Run

__all__ = ["bridge", "mistyped", "one_slip"]

_VOWELS = frozenset("aeiou")
_IDENTIFIERS = ("phone", "email")


@functools.lru_cache(maxsize=1 << 16)
def one_slip(x: str, y: str) -> bool:
    """Whether two different given names are one slip apart: a vowel for a vowel (or ``u`` for ``w``), one
    letter more or less, or two neighbours swapped; never a changed consonant."""
    if x == y or min(len(x), len(y)) < 2 or abs(len(x) - len(y)) > 1:
        return False
    if len(x) != len(y):
        short, long_ = (x, y) if len(x) < len(y) else (y, x)
        return any(long_[:k] + long_[k + 1:] == short for k in range(len(long_)))
    diff = [k for k in range(len(x)) if x[k] != y[k]]
    if len(diff) == 1:
        pair = {x[diff[0]], y[diff[0]]}
        return pair <= _VOWELS or pair == {"u", "w"}
    return len(diff) == 2 and diff[1] == diff[0] + 1 and x[diff[0]] == y[diff[1]] and x[diff[1]] == y[diff[0]]


@functools.lru_cache(maxsize=1 << 16)
def mistyped(x: str, y: str) -> bool:
    """Whether one of two given names is the other, a Cantonese name, with one letter changed into something
    that is no Cantonese name (``taiman``/``taimgn``); a change between two real names (``kawing``/``kaming``)
    is a sibling, never a typo."""
    from .identity_normalize import is_cantonese

    if len(x) != len(y) or len(x) < 4 or sum(p != q for p, q in zip(x, y, strict=True)) != 1:
        return False
    return is_cantonese(x) != is_cantonese(y)


def bridge(run: _Run, ignored: dict[str, np.ndarray]) -> None:
    """The second pass over ``run``'s records, after the first pass's rules and fuzzy links."""
    live = {name: _live(run, name, ignored) for name in _IDENTIFIERS}
    for name in _IDENTIFIERS:
        _whole_name(run, name, _common(run, name))
    for name, ids in live.items():
        _similar_names(run, name, ids)
        _birth_date(run, name, ids)
    for _round in range(2):
        for name in _IDENTIFIERS:
            _persons(run, name, _common(run, name), known_only=True)
        for name, ids in live.items():
            _persons(run, name, ids)
        if run.settings.phone_owner_joins:
            _phone_owner(run, live["phone"])
        if run.settings.own_phone_sources:
            _own_phone(run, _common(run, "phone"))
        if run.settings.email_name_joins:
            _email_name(run, live["phone"])


def _live(run: _Run, name: str, ignored: dict[str, np.ndarray]) -> np.ndarray:
    """Codes of identifier ``name`` per record, -1 where missing or shared."""
    ids = run.feats.codes[name].astype(np.int64)
    present = ids >= 0
    ids[present] = np.where(ignored[name][ids[present]], -1, ids[present])
    return ids


def _common(run: _Run, name: str) -> np.ndarray:
    """Codes of identifier ``name`` per record, -1 where missing or on more than ``max_identifier_records``
    records (a placeholder); unlike ``_live``, values seen with many given names are kept."""
    ids = run.feats.codes[name].astype(np.int64)
    present = ids >= 0
    ids[present] = np.where(run.feats.counts[name][ids[present]] > run.settings.max_identifier_records, -1,
                            ids[present])
    return ids


def _groups(ids: np.ndarray, rows: np.ndarray) -> Iterator[np.ndarray]:
    """``rows`` grouped by their identifier, for groups of two or more."""
    rows = rows[np.argsort(ids[rows], kind="stable")]
    keys = ids[rows]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    for lo, hi in zip(starts, ends, strict=True):
        if hi - lo > 1:
            yield rows[lo:hi]


def _similar_names(run: _Run, name: str, ids: np.ndarray) -> None:
    """Records at one identifier whose given names are one slip apart, surnames not different."""
    given, surname = run.feats.codes["given"], run.feats.codes["surname"]
    values = run.feats.values["given"]
    named = np.flatnonzero((ids >= 0) & (given >= 0))
    first = np.unique(ids[named] * (len(values) + 1) + given[named], return_index=True)[1]
    for group in _groups(ids, named[first]):  # one record per (identifier, given name)
        for k, a in enumerate(group):
            for b in group[k + 1:]:
                same_surname = surname[a] < 0 or surname[b] < 0 or surname[a] == surname[b]
                if same_surname and (one_slip(values[given[a]], values[given[b]])
                                     or mistyped(values[given[a]], values[given[b]])):
                    facts = (f"first names {_given(run, a, b)} one slip apart",)
                    run.join(int(a), int(b), _link(run, int(a), int(b), "similar name", name, facts))


def _whole_name(run: _Run, name: str, ids: np.ndarray) -> None:
    """Records at one identifier, even a shared one, with the same given name and surname (``whole name``;
    birth dates not different)."""
    from .identity_match import _pair_key, _stars

    codes = run.feats.codes
    surname = np.where(codes["surname"] >= 0, codes["surname"], -1)
    empty = np.flatnonzero(run.feats.values["surname"] == "")
    surname[np.isin(surname, empty)] = -1
    key = _pair_key(_pair_key(ids, codes["given"]), surname)
    dob = codes["dob"]
    for a, b in zip(*_stars(key, run.is_known), strict=True):
        if dob[a] >= 0 and dob[b] >= 0 and dob[a] != dob[b]:
            continue
        facts = (f"same name {_given(run, a)} {_value(run, 'surname', codes['surname'][a])}",)
        run.join(int(a), int(b), _link(run, int(a), int(b), "whole name", name, facts))


def _birth_date(run: _Run, name: str, ids: np.ndarray) -> None:
    """Records at one identifier with the same surname and birth date."""
    from .identity_match import _pair_key, _stars

    codes = run.feats.codes
    key = _pair_key(_pair_key(ids, codes["surname"]), codes["dob"])
    for a, b in zip(*_stars(key, run.is_known), strict=True):
        facts = (f"same surname {_value(run, 'surname', codes['surname'][a])}",
                 f"same birth date {_value(run, 'dob', codes['dob'][a])}", f"first names {_given(run, a, b)}")
        run.join(int(a), int(b), _link(run, int(a), int(b), "birth date", name, facts))


def _persons(run: _Run, name: str, ids: np.ndarray, known_only: bool = False) -> None:
    """Persons at one identifier that share a given name somewhere among their records (``known name``; not
    when their birth dates differ), or a surname and a birth date (``birth date``, the persons' version of the
    record rule); with ``known_only``, ``known name`` alone (at an identifier a family shares)."""
    roots = run.sets.roots()
    codes = run.feats.codes
    rows = np.flatnonzero((ids >= 0) & (codes["given"] >= 0))
    pairs = [(int(a), int(b)) for group in _groups(ids, _per_person(ids, rows, roots)[1])
             for k, a in enumerate(group) for b in group[k + 1:]]
    involved = np.isin(roots, [roots[k] for pair in pairs for k in pair])
    names, surnames, dobs = (_by_root(roots, codes[f], involved) for f in ("given", "surname", "dob"))
    for a, b in pairs:
        if run.sets.find(a) != run.sets.find(b):
            dob_a, dob_b = dobs.get(roots[a], set()), dobs.get(roots[b], set())
            link = _person_link(run, a, b, name, names.get(roots[a], set()) & names.get(roots[b], set()),
                                surnames.get(roots[a], set()) & surnames.get(roots[b], set()), dob_a, dob_b)
            if link is not None and (not known_only or names.get(roots[a], set()) & names.get(roots[b], set())):
                run.join(a, b, link)


def _person_link(run: _Run, a: int, b: int, name: str, given: set[int], surname: set[int], dob_a: set[int],
                 dob_b: set[int]) -> Callable[[], Link] | None:
    """The link between the persons of ``a`` and ``b`` from the given names and surnames they have in common
    and their birth dates, if that is enough."""
    dob = dob_a & dob_b
    if given and _compatible(dob_a, dob_b):
        known = _value(run, "given", min(given))
        return _link(run, a, b, "known name", name, (f"both known as {known}",), known)
    if surname and dob:
        facts = (f"same surname {_value(run, 'surname', min(surname))}",
                 f"same birth date {_value(run, 'dob', min(dob))}", f"first names {_given(run, a, b)}")
        return _link(run, a, b, "birth date", name, facts)
    return None


def _by_root(roots: np.ndarray, codes: np.ndarray, involved: np.ndarray) -> dict[int, set[int]]:
    """The codes of one field each ``involved`` person holds on any of its records."""
    rows = np.flatnonzero((codes >= 0) & involved)
    width = int(codes.max(initial=0)) + 1
    pairs = np.unique(roots[rows] * width + codes[rows])
    out: dict[int, set[int]] = {}
    for root, code in zip((pairs // width).tolist(), (pairs % width).tolist()):
        out.setdefault(root, set()).add(code)
    return out


def _per_person(ids: np.ndarray, rows: np.ndarray, roots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` cut down to one per (identifier, person): the identifier code of each, and the row."""
    width = len(roots) + 1
    pairs, first = np.unique(ids[rows] * width + roots[rows], return_index=True)
    return pairs // width, rows[first]


def _compatible(x: set[int], y: set[int]) -> bool:
    """Not different: two persons' codes of one field (surnames, birth dates) share one, or one has none."""
    return bool(x & y) or not (x and y)


def _join_owners(run: _Run, ids: np.ndarray, named: np.ndarray, orphans: np.ndarray, rule: str, fact: str) -> None:
    """Each record of ``orphans`` (a phone and no name) joins the one person whose ``named`` records carry its
    phone, if just one person's do."""
    phones, rows = _per_person(ids, named, run.sets.roots())
    counts = np.bincount(phones, minlength=int(ids.max(initial=0)) + 1)
    owner = np.full(len(counts), -1, dtype=np.int64)
    owner[phones] = rows
    owner[counts != 1] = -1  # no named record, or several persons: whose is it?
    for b in orphans:
        a = owner[ids[b]]
        if a >= 0:
            run.join(int(a), int(b), _link(run, int(a), int(b), rule, "phone", (fact,)))


def _phone_owner(run: _Run, ids: np.ndarray) -> None:
    """Records with a phone and no name join the one person whose named records carry that phone."""
    given = run.feats.codes["given"]
    _join_owners(run, ids, np.flatnonzero((ids >= 0) & (given >= 0)), np.flatnonzero((ids >= 0) & (given < 0)),
                 "phone owner", "the only person at this phone")


def _own_phone(run: _Run, ids: np.ndarray) -> None:
    """Persons who gave one phone as their own are one person (``own phone``: surnames and birth dates not
    different); then records with a phone and no name from a source of own phones join the one person who
    gave that phone as their own, in a named record of such a source."""
    sources = set(run.settings.own_phone_sources)
    own = np.isin(run.feats.connector, [k for k, c in enumerate(run.feats.connector_ids) if c in sources])
    given = run.feats.codes["given"]
    rows = np.flatnonzero((ids >= 0) & (given >= 0) & own)
    _one_owner(run, ids, rows)
    _join_owners(run, ids, rows, np.flatnonzero((ids >= 0) & (given < 0) & own), "own phone",
                 "the only person who gave this phone as their own")


def _one_owner(run: _Run, ids: np.ndarray, rows: np.ndarray) -> None:
    """Join the persons whose named records ``rows`` (of sources of own phones) give one phone, unless their
    surnames or birth dates differ."""
    roots = run.sets.roots()
    codes = run.feats.codes
    groups = list(_groups(ids, _per_person(ids, rows, roots)[1]))
    involved = np.isin(roots, roots[np.concatenate(groups)] if groups else [])
    surnames, dobs = (_by_root(roots, codes[f], involved) for f in ("surname", "dob"))
    for group in groups:
        a = int(group[0])
        for b in map(int, group[1:]):
            if (_compatible(surnames.get(roots[a], set()), surnames.get(roots[b], set()))
                    and _compatible(dobs.get(roots[a], set()), dobs.get(roots[b], set()))):
                facts = ("both gave this phone as their own", f"first names {_given(run, a, b)}")
                run.join(a, b, _link(run, a, b, "own phone", "phone", facts))


def _email_name(run: _Run, ids: np.ndarray) -> None:
    """Persons at one phone, one of them with an email that spells a given name of the other, of the other kind
    than the name given with that email (``Peter`` at ``taimanchan@``, the other known as ``Tai Man``): one
    person, unless the other holds that email too, or their surnames or birth dates differ."""
    roots = run.sets.roots()
    codes = run.feats.codes
    rows = np.flatnonzero((ids >= 0) & (codes["given"] >= 0))
    pairs = [(int(a), int(b)) for group in _groups(ids, _per_person(ids, rows, roots)[1])
             for k, a in enumerate(group) for b in group[k + 1:]]
    spelt = _spelt_names(run, roots, np.isin(roots, [roots[k] for pair in pairs for k in pair]))
    pairs = [(a, b) for a, b in pairs if roots[a] in spelt or roots[b] in spelt]  # an email on either side
    involved = np.isin(roots, [roots[k] for pair in pairs for k in pair])
    names, surnames, dobs, emails = (_by_root(roots, codes[f], involved) for f in ("given", "surname", "dob", "email"))
    for a, b in pairs:
        ra, rb = roots[a], roots[b]
        if run.sets.find(a) == run.sets.find(b) or names.get(ra, set()) & names.get(rb, set()):
            continue
        hit = _spells(run, spelt.get(ra, ()), names.get(rb, set()), emails.get(rb, set())) or _spells(
            run, spelt.get(rb, ()), names.get(ra, set()), emails.get(ra, set()))
        if (hit is not None and _compatible(surnames.get(ra, set()), surnames.get(rb, set()))
                and _compatible(dobs.get(ra, set()), dobs.get(rb, set()))):
            name, email = hit
            facts = (f"email {_value(run, 'email', email)} spells {_value(run, 'given', name)}",
                     f"first names {_given(run, a, b)}")
            run.join(a, b, _link(run, a, b, "email name", "phone", facts))


def _spelt_names(run: _Run, roots: np.ndarray, involved: np.ndarray) -> dict[int, list[tuple[str, bool, int]]]:
    """Per involved person: each email it holds on a named record, as (the letters of its local part, whether
    that record's given name is Cantonese, the email code)."""
    from .identity_normalize import is_cantonese

    codes, values = run.feats.codes, run.feats.values
    rows = np.flatnonzero((codes["email"] >= 0) & (codes["given"] >= 0) & involved)
    out: dict[int, list[tuple[str, bool, int]]] = {}
    for root, email, given in set(zip(roots[rows].tolist(), codes["email"][rows].tolist(),
                                      codes["given"][rows].tolist())):
        entry = (_letters(str(values["email"][email])), is_cantonese(str(values["given"][given])), email)
        out.setdefault(root, []).append(entry)
    return out


@functools.lru_cache(maxsize=1 << 16)
def _letters(email: str) -> str:
    """The letters of an email's local part (``tai.man.chan85`` -> ``taimanchan``)."""
    return "".join(c for c in email.rpartition("@")[0] if c.isalpha())


def _spells(run: _Run, spelt: Iterable[tuple[str, bool, int]], names: set[int], held: set[int],
            ) -> tuple[int, int] | None:
    """The (given name code, email code) of an email in ``spelt`` that spells one of ``names`` (four letters or
    more) of the other kind than its own record's name and is not among the other person's emails ``held``;
    None if there is none."""
    from .identity_normalize import is_cantonese

    values = run.feats.values["given"]
    for letters, cantonese, email in spelt:
        if email in held:
            continue
        for code in names:
            name = str(values[code])
            if len(name) >= 4 and name in letters and is_cantonese(name) != cantonese:
                return code, email
    return None


def _link(run: _Run, a: int, b: int, rule: str, field_name: str, facts: tuple[str, ...] = (),
          name: str | None = None) -> Callable[[], Link]:
    """The link of rule ``rule`` between records ``a`` and ``b`` at identifier ``field_name``; ``facts``: more
    evidence in words; ``name``: the given name shown with the value (``known name``)."""
    def make() -> Link:
        from .identity_match import Link

        value = str(run.feats.values[field_name][run.feats.codes[field_name][a]])
        shown = f"{value} {name}" if name else value
        return Link(run.refs[a], run.refs[b], rule, shown, 1.0, (f"same {field_name} {value}", *facts))
    return make


def _given(run: _Run, *rows: int) -> str:
    """The given names of ``rows`` as ``a / b``."""
    values, codes = run.feats.values["given"], run.feats.codes["given"]
    return " / ".join(str(values[codes[k]]) if codes[k] >= 0 else "-" for k in rows)


def _value(run: _Run, field_name: str, code: int) -> str:
    return str(run.feats.values[field_name][code])
