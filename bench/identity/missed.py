"""Where the missed merges are: the false-negative pairs of a synthetic run, by what they share and why (issue 8).

    python bench/identity/missed.py [--records 100000] [--mode strict|marketing] [--seed 1]

A false-negative pair is two records of one real person left in two persons. Each is counted once under what
the two records share (the strongest of email, phone, member number, address, birth date + surname, surname,
nothing) and once under why the matcher did not join them directly:

- ``shared identifier``: the identifier they share is seen with too many given names or records (a guard);
- ``no name``: one record has no name (an SMS contact with a phone alone);
- ``different given names``: both have a given name and they differ (an English name in one system, the
  Cantonese one in the other; a typo);
- ``held: cluster cap``/``held: below threshold``: they were scored, the link kept as possible;
- ``not a candidate``: they share no block key; ``same name, not scored high enough``: anything else.

A pair can be missed although each record was joined to others of the person: the table counts pairs, the
way recall counts them.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from storesync.core.identity_features import extract  # noqa: E402
from storesync.core.identity_match import resolve  # noqa: E402
from storesync.core.identity_settings import MatchSettings  # noqa: E402

try:  # run as a script or imported by the tests
    from .synthetic import ENGLISH, NICKNAMES, generate, settings
except ImportError:  # pragma: no cover
    from synthetic import ENGLISH, NICKNAMES, generate, settings  # type: ignore[no-redef]

SHARES = ("email", "phone", "member", "address", "dob+surname", "surname", "nothing")


def _english_keys() -> set[str]:
    from storesync.core.identity_normalize import first_name_key

    return {first_name_key(n).given for n in [*ENGLISH, *NICKNAMES.values()]}


def missed_pairs(persons: list[list], truth: dict) -> list[tuple]:
    """Pairs of records of one real person that ended in two persons."""
    by_true: dict[int, list[tuple]] = defaultdict(list)
    for k, person in enumerate(persons):
        for ref in person:
            by_true[truth[ref]].append((k, ref))
    out = []
    for members in by_true.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                if members[x][0] != members[y][0]:
                    out.append((members[x][1], members[y][1]))
    return out


class _Classifier:
    def __init__(self, data, result, settings: MatchSettings) -> None:
        self.feats = extract(data.records, settings.region)
        self.index = {r.ref: k for k, r in enumerate(data.records)}
        self.shared = set(result.shared)
        self.held = {frozenset((p.a, p.b)): p for p in result.possible}
        self.english = _english_keys()

    def value(self, name: str, k: int):
        code = int(self.feats.codes[name][k])
        return None if code < 0 else self.feats.values[name][code]

    def shares(self, a: int, b: int) -> str:
        for name in ("email", "phone", "member", "address"):
            if self.value(name, a) is not None and self.value(name, a) == self.value(name, b):
                return name
        surname = self.value("surname", a) is not None and self.value("surname", a) == self.value("surname", b)
        if surname and self.value("dob", a) is not None and self.value("dob", a) == self.value("dob", b):
            return "dob+surname"
        return "surname" if surname else "nothing"

    def why(self, ref_a, ref_b, share: str) -> str:
        a, b = self.index[ref_a], self.index[ref_b]
        if share in ("email", "phone", "address") and str(self.value(share, a)) in self.shared:
            return "shared identifier"
        ga, gb = self.value("given", a), self.value("given", b)
        if ga is None or gb is None:
            return "no name"
        held = self.held.get(frozenset((ref_a, ref_b)))
        if ga != gb:
            kinds = (ga in self.english) + (gb in self.english)
            return "different given names (" + ("English / Chinese" if kinds == 1 else "same kind") + ")"
        if held is not None:
            return "held: " + ("cluster cap" if held.score >= 0.999 or held.rule != "fuzzy" else "below threshold")
        return "same given name, not joined"


def table(records: int, mode: str, seed: int) -> tuple[Counter, int, int]:
    """Counts of missed pairs by (shares, why), the number missed and the number of true pairs."""
    data = generate(records, seed)
    chosen = settings(mode)
    result = resolve(data.records, chosen)
    pairs = missed_pairs(result.persons, data.person)
    classify = _Classifier(data, result, chosen)
    counts: Counter = Counter()
    for ref_a, ref_b in pairs:
        share = classify.shares(classify.index[ref_a], classify.index[ref_b])
        counts[(share, classify.why(ref_a, ref_b, share))] += 1
    true = sum(n * (n - 1) // 2 for n in Counter(data.person.values()).values())
    return counts, len(pairs), true


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--mode", choices=["strict", "marketing"], default="strict")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    counts, missed, true = table(args.records, args.mode, args.seed)
    reasons = sorted({why for _s, why in counts})
    print(f"{missed:,} of {true:,} true pairs missed ({missed / true:.1%})")
    print("| shares | " + " | ".join(reasons) + " | all |")
    print("|---" * (len(reasons) + 2) + "|")
    for share in SHARES:
        row = [counts[(share, why)] for why in reasons]
        if sum(row):
            print(f"| {share} | " + " | ".join(f"{n:,}" for n in row) + f" | {sum(row):,} |")
    total = [sum(counts[(s, why)] for s in SHARES) for why in reasons]
    print("| all | " + " | ".join(f"{n:,}" for n in total) + f" | {missed:,} |")


if __name__ == "__main__":
    main()
