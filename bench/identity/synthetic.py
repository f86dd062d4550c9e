"""Synthetic Hong Kong customers from four systems, with ground truth, to evaluate identity resolution (issue 8).

    python bench/identity/synthetic.py --records 1000000 [--mode strict|marketing|both] [--seed 1]
        [--incremental 10000] [--json] [--defaults]

People live in households (one to five people; spouses often keep their own surname; some twins, born the same
day with the same surname and address). Each person appears in one or more of four systems, each spelling them
its own way:

- ``shop`` (Shopify, email-centric): email always, English or Chinese first name, sometimes phone and address;
- ``till`` (POS): member number and phone, the name often surname-first (``CHAN Tai Man``), sometimes a birth
  date; now and then a second membership of the same person; walk-ins with a placeholder phone (00000000);
- ``erp``: a whole name and an address with the district;
- ``sms``: a phone number only, sometimes a first name.

Noise (issue 8, Build 1): every Hong Kong phone format, Gmail dots and plus-tags and capitals, surname-first
order, English nicknames, Cantonese romanisation variants of surnames and given names, several date formats,
typos, children's records carrying a parent's phone, couples sharing one email.

Printed: pairwise precision, recall and F1, the household false-merge rate (share of same-household,
different-person record pairs that were merged), the largest person, wall time and peak RSS; and, in the same
run, a baseline (union-find over exact normalised email or phone, what a shop does without identity
resolution) with the ratio.

The matcher runs with ``own_phone_sources`` set to the systems whose phone is always the person's own here
(``OWN_PHONE_SOURCES``: the ERP and the SMS list), as a merchant states it in plugins.toml; ``--defaults``
runs it without.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import numpy as np  # noqa: E402

from storesync.core.identity_blocking import BLOCKS, _combined  # noqa: E402
from storesync.core.identity_features import extract  # noqa: E402
from storesync.core.identity_match import IdentityRecord, resolve  # noqa: E402
from storesync.core.identity_normalize import email_key, phone_key  # noqa: E402
from storesync.core.identity_settings import MatchSettings  # noqa: E402

try:  # run as a script or imported by the tests
    from .metrics import measure, measure_cpu, pairwise, peak_rss_mib
except ImportError:  # pragma: no cover
    from metrics import measure, measure_cpu, pairwise, peak_rss_mib  # type: ignore[no-redef]

__all__ = ["Dataset", "generate", "household_false_merge", "naive", "run"]

# (surname, share of Hong Kong people, romanisation variants that also occur)
SURNAMES = [
    ("Chan", 9, ["Chen"]), ("Wong", 8, ["Wang", "Huang"]), ("Lee", 6, ["Li"]), ("Cheung", 5, ["Chang", "Zhang"]),
    ("Lau", 4, ["Liu"]), ("Ng", 4, ["Wu"]), ("Ho", 3, ["He"]), ("Leung", 3, ["Liang"]), ("Lam", 3, ["Lin"]),
    ("Chow", 2, ["Zhou"]), ("Tsang", 2, ["Zeng"]), ("Yeung", 2, ["Yang"]), ("Cheng", 2, ["Zheng"]),
    ("Tse", 2, ["Xie"]), ("Kwok", 1, ["Guo"]), ("Lo", 1, ["Law", "Luo"]), ("Fung", 1, ["Feng"]),
    ("Tang", 1, ["Deng"]), ("Yip", 1, ["Ye"]), ("Mak", 1, ["Mai"]), ("Choi", 1, ["Tsoi", "Cai"]),
    ("Hui", 1, ["Xu"]), ("Kwan", 1, ["Guan"]), ("Tam", 1, ["Tan"]), ("Poon", 1, ["Pan"]), ("Siu", 1, ["Xiao"]),
    ("Fong", 1, ["Fang"]), ("So", 1, ["Su"]), ("Yau", 1, ["Qiu"]), ("Ma", 1, []), ("Au", 1, []), ("Chu", 1, []),
    ("Sze", 1, []), ("Tong", 1, []), ("Yuen", 1, []), ("Kong", 1, []), ("Shek", 1, []), ("Lui", 1, []),
]
# Cantonese given-name syllables and the other ways people romanise them
SYLLABLES = {
    "Tai": [], "Man": ["Mun"], "Siu": ["Shiu"], "Ming": ["Meng"], "Ka": [], "Yan": ["Yen"], "Wai": ["Wei"],
    "Yee": ["Yi", "Ye"], "Kwok": ["Kuok"], "Hoi": ["Hoy"], "Chi": ["Chee"], "Wing": [], "Kin": ["Kim"],
    "Hung": ["Hong"], "Mei": ["May"], "Ling": [], "Fai": [], "Kit": [], "Suet": ["Shuet"], "Lok": [],
    "Hei": ["Hay"], "Tsz": ["Chi", "Sze"], "Ching": ["Cheng"], "Yuk": [], "Wah": ["Wa"], "Kei": ["Ki"],
    "Sum": ["Sam"], "Pui": [], "Shan": ["San"], "Chun": ["Chuen"], "Fung": [], "Lai": [], "Yin": [],
    "Ho": [], "Nga": [], "Ying": [], "Tin": [], "Long": [], "Hin": [], "Kwan": ["Kuan"], "Sau": [], "Mo": [],
    "Po": [], "Yau": [], "Choi": ["Tsoi"], "Cheuk": [], "Lam": [], "On": [], "Sing": [], "Tung": [],
}
ENGLISH = ["Peter", "Mary", "John", "Ann", "David", "Karen", "Michael", "Jenny", "William", "Winnie", "Kenneth",
           "Kelly", "Raymond", "Iris", "Eric", "Joyce", "Daniel", "Vivian", "Thomas", "Ivy", "Samuel", "Cathy",
           "Alex", "Candy", "Jason", "Fiona", "Patrick", "Grace", "Tony", "Queenie", "Edward", "Elaine", "Stephen",
           "Angel", "Richard", "Yvonne", "James", "Carmen", "Benjamin", "Helen", "Kevin", "Sharon", "Vincent",
           "Gloria", "Andrew", "Maggie", "Robert", "Katherine", "Chris", "Elizabeth", "Jacky", "Eva", "Ricky",
           "Connie", "Dennis", "Phoebe", "Gary", "Janice", "Calvin", "Sandy", "Alan", "Teresa", "Frankie", "Cherry"]
NICKNAMES = {"William": "Bill", "Robert": "Bob", "Michael": "Mike", "Thomas": "Tom", "Katherine": "Kathy",
             "Elizabeth": "Liz", "Benjamin": "Ben", "Daniel": "Danny", "Kenneth": "Ken", "Samuel": "Sam",
             "Richard": "Ricky", "Andrew": "Andy", "Edward": "Eddie", "James": "Jimmy", "Stephen": "Steve"}
DISTRICTS = ["Central and Western", "Wan Chai", "Eastern", "Southern", "Yau Tsim Mong", "Sham Shui Po",
             "Kowloon City", "Wong Tai Sin", "Kwun Tong", "Kwai Tsing", "Tsuen Wan", "Tuen Mun", "Yuen Long",
             "North", "Tai Po", "Sha Tin", "Sai Kung", "Islands"]
STREETS = ["Nathan Road", "Queen's Road Central", "Hennessy Road", "King's Road", "Castle Peak Road",
           "Lung Cheung Road", "Sha Tin Centre Street", "Tai Po Road", "Des Voeux Road", "Argyle Street",
           "Prince Edward Road", "Tat Chee Avenue", "Hoi Bun Road", "Ma On Shan Road", "Tseung Kwan O Road",
           "Po Kong Village Road"]
ESTATES = ["Mei Foo Sun Chuen", "Taikoo Shing", "City One", "Whampoa Garden", "Kornhill", "Laguna City",
           "South Horizons", "Heng Fa Chuen", "Amoy Gardens", "Lok Fu Estate", "Shek Kip Mei Estate", "Ocean Shores",
           "Metro City", "Belvedere Garden", "Tin Shui Wai Estate", "Kingswood Villas", "Sceneway Garden"]
DOMAINS = ["gmail.com"] * 6 + ["yahoo.com.hk", "hotmail.com", "outlook.com", "netvigator.com", "icloud.com"]
PLACEHOLDER_PHONES = ["00000000", "12345678", "99999999", "+852 0000 0000"]
# the systems whose phone is always the person's own (the SMS contact, the ERP account); the till and the web
# shop sometimes hold a family member's number (``_records``). A merchant states it in [identity.match].
OWN_PHONE_SOURCES = ("erp", "sms")


@dataclass(slots=True)
class Person:
    pid: int
    household: int
    surname: int  # index into SURNAMES
    given: tuple[str, ...]  # Cantonese syllables
    english: str | None
    born: date
    phone: str  # 8 digits
    email: str | None
    address: str
    district: str


@dataclass
class Dataset:
    records: list[IdentityRecord]
    person: dict[tuple[str, str], int]  # ref -> person id
    household: dict[tuple[str, str], int]  # ref -> household id


class _Gen:
    """The random choices of one data set."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.surname_weights = list(itertools.accumulate(w for _s, w, _v in SURNAMES))
        self.syllables = list(SYLLABLES)
        self.used_phones: set[str] = set()
        self.used_emails: set[str] = set()
        self.member = itertools.count(100000)

    def phone(self) -> str:
        while True:
            number = self.rnd.choice("569") + f"{self.rnd.randrange(10**7):07d}"
            if number not in self.used_phones and len(set(number)) > 2:
                self.used_phones.add(number)
                return number

    def given(self) -> tuple[str, ...]:
        return tuple(self.rnd.sample(self.syllables, 2)) if self.rnd.random() < 0.9 else (
            self.rnd.choice(self.syllables),)

    def email(self, surname: str, given: tuple[str, ...], english: str | None, born: date) -> str:
        r = self.rnd
        base = r.choice([
            f"{(english or given[0]).lower()}.{surname.lower()}", f"{''.join(given).lower()}{surname.lower()}",
            f"{surname.lower()}{''.join(g[0] for g in given).lower()}{born.year % 100:02d}",
            f"{(english or ''.join(given)).lower()}{r.randrange(1, 999)}"])
        domain = r.choice(DOMAINS)
        while f"{base}@{domain}".replace(".", "") in self.used_emails:
            base += str(r.randrange(10))
        self.used_emails.add(f"{base}@{domain}".replace(".", ""))
        return f"{base}@{domain}"

    def person(self, pid: int, household: int, surname: int, address: str, district: str,
               born: date | None = None) -> Person:
        r = self.rnd
        given = self.given()
        english = r.choice(ENGLISH) if r.random() < 0.55 else None
        born = born or date(1940, 1, 1) + timedelta(days=r.randrange(365 * 65))
        name = SURNAMES[surname][0]
        email = self.email(name, given, english, born) if r.random() < 0.8 else None
        return Person(pid, household, surname, given, english, born, self.phone(), email, address, district)

    def household(self, hid: int, first_pid: int) -> list[Person]:
        r = self.rnd
        size = r.choices([1, 2, 3, 4, 5], [30, 30, 20, 15, 5])[0]
        surname = r.choices(range(len(SURNAMES)), cum_weights=self.surname_weights)[0]
        address = (f"Flat {r.choice('ABCDEFGH')}, {r.randrange(1, 41)}/F, Block {r.randrange(1, 6)}, "
                   f"{r.choice(ESTATES)}, {r.randrange(1, 400)} {r.choice(STREETS)}")
        district = r.choice(DISTRICTS)
        people = [self.person(first_pid, hid, surname, address, district)]
        if size >= 2:  # a spouse: often her own surname
            own = surname if r.random() < 0.3 else r.choices(range(len(SURNAMES)), cum_weights=self.surname_weights)[0]
            people.append(self.person(first_pid + 1, hid, own, address, district))
        twins = size >= 4 and r.random() < 0.25
        for k in range(2, size):
            born = people[-1].born if twins and k == 3 else None
            people.append(self.person(first_pid + k, hid, surname, address, district, born))
        return people


def _typo(rnd: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    k = rnd.randrange(1, len(text) - 1)
    kind = rnd.randrange(3)
    if kind == 0:
        return text[:k] + text[k + 1:]
    if kind == 1:
        return text[:k] + text[k + 1] + text[k] + text[k + 2:]
    return text[:k] + rnd.choice("aeiounghk") + text[k + 1:]


def _phone_text(rnd: random.Random, number: str) -> str:
    return rnd.choice([f"+852 {number[:4]} {number[4:]}", number, f"(852) {number[:4]}-{number[4:]}",
                       f"852-{number[:4]}-{number[4:]}", f"00852{number}", f"{number[:4]} {number[4:]}"])


def _email_text(rnd: random.Random, email: str) -> str:
    local, domain = email.split("@")
    if domain == "gmail.com":
        if rnd.random() < 0.3:
            local = local.replace(".", "")
        if rnd.random() < 0.2:
            local += "+" + rnd.choice(["shop", "hk", "promo"])
    return (f"{local}@{domain}".upper() if rnd.random() < 0.05 else
            f"{local}@{domain}".title() if rnd.random() < 0.1 else f"{local}@{domain}")


def _date_text(rnd: random.Random, born: date) -> str:
    return rnd.choice([born.isoformat(), born.strftime("%d/%m/%Y"), f"{born.day} {born.strftime('%b %Y')}",
                       born.strftime("%Y%m%d")])


class _Spell:
    """How one system writes a person's name."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def surname(self, p: Person) -> str:
        name, _w, variants = SURNAMES[p.surname]
        return self.rnd.choice(variants) if variants and self.rnd.random() < 0.1 else name

    def chinese_given(self, p: Person) -> str:
        r = self.rnd
        parts = [r.choice(SYLLABLES[s]) if SYLLABLES[s] and r.random() < 0.1 else s for s in p.given]
        style = r.random()
        text = " ".join(parts) if style < 0.6 else "-".join(parts).capitalize() if style < 0.8 else \
            "".join(parts).capitalize()
        return _typo(r, text) if r.random() < 0.04 else text

    def first(self, p: Person) -> str:
        """An English name (sometimes its nickname) if the person uses one, else the Chinese given name."""
        if p.english and self.rnd.random() < 0.85:
            if p.english in NICKNAMES and self.rnd.random() < 0.2:
                return NICKNAMES[p.english]
            return _typo(self.rnd, p.english) if self.rnd.random() < 0.03 else p.english
        return self.chinese_given(p)

    def whole(self, p: Person) -> str:
        """A whole name the Hong Kong way: ``CHAN Tai Man``, ``Chan, Tai Man`` or ``Tai Man Chan`` (with the
        English name instead of the Chinese one, for half of those who have one)."""
        surname = self.surname(p)
        given = p.english if p.english and self.rnd.random() < 0.5 else self.chinese_given(p)
        style = self.rnd.random()
        if style < 0.5:
            return f"{surname.upper()} {given}"
        return f"{surname}, {given}" if style < 0.7 else f"{given} {surname}"


def _records(gen: _Gen, p: Person, family: list[Person]) -> list[tuple[IdentityRecord, int]]:
    """The person's records in the systems they use (each with its person id)."""
    r, spell = gen.rnd, _Spell(gen.rnd)
    systems = [s for s, share in (("shop", 0.5), ("till", 0.55), ("erp", 0.25), ("sms", 0.35)) if r.random() < share]
    if not systems:
        systems = [r.choice(["shop", "till", "erp", "sms"])]
    out = []
    given = p.phone
    if len(family) > 1 and r.random() < 0.15:  # at the till and the web shop: another family member's number
        given = r.choice([m for m in family if m is not p]).phone
    for system in systems:
        n = 2 if system == "till" and r.random() < 0.05 else 1  # a second membership
        phone = given if system in ("till", "shop") else p.phone  # an SMS contact is the number's owner
        for _ in range(n):
            out.append((_record(gen, spell, system, p, phone, family), p.pid))
    return out


def _record(gen: _Gen, spell: _Spell, system: str, p: Person, phone: str, family: list[Person]) -> IdentityRecord:
    r = gen.rnd
    rid = f"{p.pid}-{r.randrange(10**9)}"
    if system == "shop":
        email = p.email
        if email is None or r.random() < 0.03:  # no personal email: a partner's, or one made for the shop
            spouse = [m.email for m in family if m is not p and m.email]
            email = spouse[0] if spouse and r.random() < 0.5 else gen.email(
                SURNAMES[p.surname][0], p.given, p.english, p.born)
        return IdentityRecord("shop", rid, email=_email_text(r, email), first_name=spell.first(p),
                              last_name=spell.surname(p), phone=_phone_text(r, phone) if r.random() < 0.7 else None,
                              address=p.address if r.random() < 0.6 else None,
                              city=p.district if r.random() < 0.5 else None)
    if system == "till":
        number = r.choice(PLACEHOLDER_PHONES) if r.random() < 0.02 else _phone_text(r, phone)
        name = spell.whole(p) if r.random() < 0.6 else None
        return IdentityRecord("till", rid, member_id=f"M{next(gen.member)}", phone=number,
                              full_name=name, first_name=None if name else spell.first(p),
                              last_name=None if name else spell.surname(p),
                              birth_date=_date_text(r, p.born) if r.random() < 0.5 else None,
                              email=_email_text(r, p.email) if p.email and r.random() < 0.3 else None)
    if system == "erp":
        address = _typo(r, p.address) if r.random() < 0.1 else p.address
        return IdentityRecord("erp", rid, full_name=spell.whole(p), address=address, city=p.district,
                              phone=_phone_text(r, phone) if r.random() < 0.6 else None,
                              birth_date=_date_text(r, p.born) if r.random() < 0.3 else None)
    return IdentityRecord("sms", rid, phone=_phone_text(r, phone),
                          first_name=spell.first(p) if r.random() < 0.25 else None)


def generate(records: int, seed: int = 1) -> Dataset:
    """About ``records`` records (stops at the first household past it) with their ground truth."""
    gen = _Gen(seed)
    out: list[IdentityRecord] = []
    person: dict[tuple[str, str], int] = {}
    household: dict[tuple[str, str], int] = {}
    pid = 0
    for hid in itertools.count():
        if len(out) >= records:
            break
        family = gen.household(hid, pid)
        pid += len(family)
        for p in family:
            for rec, who in _records(gen, p, family):
                out.append(rec)
                person[rec.ref] = who
                household[rec.ref] = hid
    return Dataset(out, person, household)


def _rss_mib() -> float:
    """This process's resident set now, MiB (what the data set holds before resolution starts)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def household_false_merge(clusters: Iterable[Iterable[Hashable]], person: Mapping[Hashable, int],
                          household: Mapping[Hashable, int]) -> tuple[int, int]:
    """(merged, all) pairs of records of one household but different people."""

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    merged = 0
    for cluster in clusters:
        members = list(cluster)
        merged += sum(pairs(c) for c in Counter(household[m] for m in members).values())
        merged -= sum(pairs(c) for c in Counter(person[m] for m in members).values())
    total = sum(pairs(c) for c in Counter(household.values()).values())
    total -= sum(pairs(c) for c in Counter(person.values()).values())
    return merged, total


def naive(records: list[IdentityRecord]) -> list[list[tuple[str, str]]]:
    """Baseline: records sharing a normalised email or phone are one person (no guards)."""
    parent: dict[object, object] = {}

    def find(x: object) -> object:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in records:
        for key in (email_key(r.email), phone_key(r.phone)):
            if key is not None:
                parent[find(r.ref)] = find(key)
    groups: dict[object, list[tuple[str, str]]] = {}
    for r in records:
        groups.setdefault(find(r.ref), []).append(r.ref)
    return list(groups.values())


def settings(mode: str, *, defaults: bool = False) -> MatchSettings:
    """The matcher's settings for ``mode`` with what is known of these systems (``OWN_PHONE_SOURCES``);
    ``defaults``: without it."""
    return MatchSettings(mode=mode) if defaults else MatchSettings(mode=mode, own_phone_sources=OWN_PHONE_SOURCES)


def run(data: Dataset, mode: str, *, defaults: bool = False) -> dict:
    """Resolve ``data`` in ``mode`` and score it against its ground truth."""
    chosen = settings(mode, defaults=defaults)
    result, seconds, cpu = measure_cpu(lambda: resolve(data.records, chosen))
    quality = pairwise(result.persons, data.person)
    merged, total = household_false_merge(result.persons, data.person, data.household)
    return {"mode": mode, "records": len(data.records), **quality.row(), "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "household_false_merge": round(merged / total, 5) if total else 0.0, "household_pairs": total,
            "largest": max(map(len, result.persons)), "persons": len(result.persons),
            "true_persons": len(set(data.person.values())), "links": len(result.links),
            "possible": len(result.possible), "candidate_pairs": result.stats.get("candidate_pairs"),
            "phase_seconds": result.stats.get("seconds")}


def incremental(data: Dataset, new: int, mode: str, *, defaults: bool = False) -> dict:
    """The last ``new`` records arrive after the rest were resolved: time to find their candidates (records
    sharing a block key, what the store's index returns) and resolve them against the known persons."""
    old, fresh = data.records[:-new], data.records[-new:]
    chosen = settings(mode, defaults=defaults)
    stored = resolve(old, chosen)
    known = {ref: str(k) for k, person in enumerate(stored.persons) for ref in person}
    feats = extract(data.records, chosen.region)  # stands in for the store's block-key table
    del stored
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    wanted = np.zeros(len(old), dtype=bool)
    max_block = chosen.max_block
    for _name, fields in BLOCKS:
        key = _combined(feats, fields)
        values, counts = np.unique(key[key >= 0], return_counts=True)
        fresh_keys = np.intersect1d(key[len(old):], values[counts <= max_block])  # oversized blocks: left out
        wanted |= np.isin(key[:len(old)], fresh_keys)
    candidates = [old[k] for k in np.flatnonzero(wanted)]
    result = resolve([*candidates, *fresh], chosen, known={r.ref: known[r.ref] for r in candidates},
                     population=len(data.records))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"mode": f"{mode} incremental", "new_records": new, "resolved_records": len(old),
            "candidates": len(candidates), "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "links": len(result.links), "phase_seconds": result.stats.get("seconds")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--mode", choices=["strict", "marketing", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--incremental", type=int, default=0, metavar="N",
                        help="also time N new records resolved against the others (strict mode)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--defaults", action="store_true",
                        help="the matcher's default settings, without own_phone_sources (OWN_PHONE_SOURCES)")
    args = parser.parse_args()
    data, gen_seconds = measure(lambda: generate(args.records, args.seed))
    gc.collect()
    print(f"generated {len(data.records):,} records of {len(set(data.person.values())):,} people in "
          f"{gen_seconds:.1f}s (peak so far {peak_rss_mib():.0f} MiB)", file=sys.stderr)
    rows = []
    modes = ["strict", "marketing"] if args.mode == "both" else [args.mode]
    for mode in modes:
        rows[len(rows):] = [{"rss_before_mib": round(_rss_mib(), 1)}]
        rows[-1].update(run(data, mode, defaults=args.defaults))
        rows[-1]["peak_rss_mib"] = round(peak_rss_mib(), 1)
        gc.collect()
    base, base_seconds = measure(lambda: naive(data.records))
    bq = pairwise(base, data.person)
    bmerged, btotal = household_false_merge(base, data.person, data.household)
    baseline = {"mode": "baseline (exact email/phone union-find)", "records": len(data.records), **bq.row(),
                "seconds": round(base_seconds, 2), "household_false_merge": round(bmerged / btotal, 5),
                "largest": max(map(len, base))}
    for row in rows[:len(modes)]:
        row["precision_ratio_vs_baseline"] = round(row["precision"] / bq.precision, 3)
        row["seconds_ratio_vs_baseline"] = round(row["seconds"] / base_seconds, 2)
    if args.incremental:
        rows.append(incremental(data, args.incremental, "strict", defaults=args.defaults))
    for row in [*rows, baseline]:
        if args.json:
            print(json.dumps(row))
        else:
            print(" ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
