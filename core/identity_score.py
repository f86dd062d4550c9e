"""Scoring record pairs: Fellegi-Sunter match weights per field, vectorised over numpy arrays (issue 8).

For each field, a pair of records falls into one *agreement level* (exact, close, far, missing). Each level has
``m`` (how often two records of the same person land there: typos, nicknames, moved house) and ``u`` (how often
two different people do). The level adds ``log2(m / u)`` bits of evidence; missing adds nothing. For an exact
agreement ``u`` is the value's term frequency: sharing the surname Chan says little, sharing a rare one a lot.
The sum plus the prior odds (about one other record of the same person among the population) is the log-odds
that the pair is one person; ``probability`` turns it into the score the mode thresholds compare against.

The ``m``/``u`` values below are a model of how customer data goes wrong, set once from what the levels mean,
not fitted to any benchmark. One guard the independence assumption of Fellegi-Sunter misses: people of one
household share phone, email, address and surname, and twins a birth date too. So when both records have a
given name and the names clearly differ, the household fields count for nothing: in strict mode phone, email,
address, city and postcode (a twin is never merged with a sibling, at the cost of missing records whose first
name was entered as something else entirely); in marketing mode only phone and email.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from .identity_features import Features

__all__ = ["CLOSE", "CONTACT_FIELDS", "DIFFERENT", "EXACT", "FAR", "HOUSEHOLD_FIELDS", "MISSING", "MODEL", "Scores",
           "likely_pairs", "prior_bits", "probability", "score_pairs"]

MISSING, EXACT, CLOSE, FAR, DIFFERENT = 0, 1, 2, 3, 4
HOUSEHOLD_FIELDS = ("phone", "email", "address", "city", "postcode")  # strict mode: all of them
CONTACT_FIELDS = ("phone", "email")  # marketing mode: what families share most


@dataclass(frozen=True)
class FieldModel:
    """Agreement levels of one field: exact (u from term frequency), two similarity bands, different."""

    m_exact: float
    m_close: float = 0.0
    u_close: float = 1.0
    close_at: float = 1.0  # similarity (0..1) from which a pair is close
    m_far: float = 0.0
    u_far: float = 1.0
    far_at: float = 1.0
    m_different: float = 0.05
    u_different: float = 0.97
    scorer: str = "jaro_winkler"  # jaro_winkler | address | edit1 | date | none


MODEL: dict[str, FieldModel] = {
    "given": FieldModel(0.85, 0.08, 0.005, 0.92, 0.03, 0.02, 0.85, 0.04),
    "surname": FieldModel(0.85, 0.08, 0.005, 0.92, 0.03, 0.02, 0.85, 0.04),
    "dob": FieldModel(0.85, 0.10, 0.01, 1.0, 0.0, 1.0, 1.0, 0.05, 0.99, scorer="date"),
    "address": FieldModel(0.65, 0.12, 0.002, 0.90, 0.08, 0.01, 0.75, 0.15, 0.95, scorer="address"),
    "city": FieldModel(0.85, 0.08, 0.01, 0.90, 0.0, 1.0, 1.0, 0.07),
    "postcode": FieldModel(0.88, 0.06, 0.02, 1.0, 0.0, 1.0, 1.0, 0.06, scorer="edit1"),
    "email": FieldModel(0.90, m_different=0.30, u_different=1.0, scorer="none"),
    "phone": FieldModel(0.90, m_different=0.30, u_different=1.0, scorer="none"),
    "nid": FieldModel(0.90, 0.06, 0.0001, 1.0, 0.0, 1.0, 1.0, 0.04, 1.0, scorer="edit1"),
}
_FLOOR = 1e-9  # smallest term frequency (a value held by one record in a billion)


@dataclass
class Scores:
    """Per pair: total weight in bits, and per field the level and similarity (for explanations)."""

    weight: np.ndarray
    levels: dict[str, np.ndarray]
    similarity: dict[str, np.ndarray]


def prior_bits(population: int, matches_per_record: float = 1.0) -> float:
    """Log2 prior odds that two records are one person: about ``matches_per_record`` others among them."""
    lam = min(matches_per_record / max(population - 1, 1), 0.5)
    return math.log2(lam / (1 - lam))


def probability(bits: np.ndarray | float) -> np.ndarray:
    """Match probability from log2 odds."""
    return 1.0 / (1.0 + np.exp2(-np.clip(bits, -60, 60)))


def _similarity(model: FieldModel, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Similarity 0..1 of the values ``a`` and ``b`` pair by pair (all present and different)."""
    if model.scorer == "jaro_winkler":
        return process.cpdist(a, b, scorer=JaroWinkler.normalized_similarity, workers=1).astype(np.float32)
    if model.scorer == "address":  # words in another order or one missing; spaces slipped in or out
        words = process.cpdist(a, b, scorer=fuzz.token_set_ratio, workers=1)
        letters = process.cpdist([x.replace(" ", "") for x in a], [y.replace(" ", "") for y in b],
                                 scorer=fuzz.ratio, workers=1)
        return np.maximum(words, letters).astype(np.float32) / 100
    if model.scorer == "edit1":
        return np.fromiter((_one_edit(x, y) for x, y in zip(a, b, strict=True)), np.float32, len(a))
    if model.scorer == "date":
        return _near_dates(a, b)
    return np.zeros(len(a), dtype=np.float32)


def _one_edit(x: str, y: str) -> float:
    """1.0 if ``x`` and ``y`` differ by one substitution, insertion, deletion or swap of neighbours."""
    if abs(len(x) - len(y)) > 1:
        return 0.0
    if len(x) == len(y):
        diff = [k for k in range(len(x)) if x[k] != y[k]]
        if len(diff) == 1:
            return 1.0
        return float(len(diff) == 2 and diff[1] == diff[0] + 1 and x[diff[0]] == y[diff[1]]
                     and x[diff[1]] == y[diff[0]])
    short, long_ = (x, y) if len(x) < len(y) else (y, x)
    return float(any(long_[:k] + long_[k + 1:] == short for k in range(len(long_))))


def _near_dates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1.0 for the slips birth dates suffer: day and month swapped, or two of year, month, day equal."""
    ya, ma, da = (np.fromiter((getattr(x, f) for x in a), np.int32, len(a)) for f in ("year", "month", "day"))
    yb, mb, db = (np.fromiter((getattr(x, f) for x in b), np.int32, len(b)) for f in ("year", "month", "day"))
    swapped = (ya == yb) & (da == mb) & (ma == db)
    same = (ya == yb).astype(np.int8) + (ma == mb) + (da == db)
    return (swapped | (same >= 2)).astype(np.float32)


def _field(feats: Features, name: str, i: np.ndarray, j: np.ndarray, ignored: np.ndarray | None,
           other: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Levels, similarities and weights of field ``name`` for the pairs ``(i, j)``; values marked in ``ignored``
    (shared identifiers) count as missing. With ``other``, record ``j``'s field ``other`` is compared instead
    (a first name against a surname, for names entered the wrong way round)."""
    model = MODEL[name]
    other = other or name
    ca, cb = feats.codes[name][i], feats.codes[other][j]
    if ignored is not None and ignored.any():
        ca = np.where((ca >= 0) & ignored[np.maximum(ca, 0)], -1, ca)
        cb = np.where((cb >= 0) & ignored[np.maximum(cb, 0)], -1, cb)
    levels = np.full(len(i), MISSING, dtype=np.int8)
    sims = np.zeros(len(i), dtype=np.float32)
    weights = np.zeros(len(i), dtype=np.float64)
    present = (ca >= 0) & (cb >= 0)
    va, vb = feats.values[name], feats.values[other]
    exact = present & (ca == cb) if other == name else present.copy()
    if other != name:
        idx = np.flatnonzero(present)
        exact[idx] = va[ca[idx]] == vb[cb[idx]]
    levels[exact] = EXACT
    sims[exact] = 1.0
    tf = np.maximum(feats.frequency(name, ca[exact]), _FLOOR)
    weights[exact] = np.log2(model.m_exact / tf)
    rest = np.flatnonzero(present & ~exact)
    if len(rest):
        a, b = va[ca[rest]], vb[cb[rest]]
        s = _similarity(model, a, b) if model.m_close else np.zeros(len(rest))
        sims[rest] = s
        lv = np.where(s >= model.close_at, CLOSE, np.where(s >= model.far_at, FAR, DIFFERENT)).astype(np.int8)
        if not model.m_far:
            lv[lv == FAR] = DIFFERENT
        levels[rest] = lv
        table = np.array([0.0, 0.0, math.log2(model.m_close / model.u_close) if model.m_close else 0.0,
                          math.log2(model.m_far / model.u_far) if model.m_far else 0.0,
                          math.log2(model.m_different / model.u_different)])
        weights[rest] = table[lv]
    return levels, sims, weights


def _names(feats: Features, i: np.ndarray, j: np.ndarray, levels: dict, sims: dict, weights: dict) -> None:
    """First name and surname compared straight, or crosswise where that agrees better (``CHAN Tai Man``
    typed into the first-name box, or the two boxes swapped)."""
    odd = np.flatnonzero((levels["given"] == DIFFERENT) | (levels["surname"] == DIFFERENT))
    if not len(odd):
        return
    oi, oj = i[odd], j[odd]
    given_x = _field(feats, "given", oi, oj, None, "surname")
    surname_x = _field(feats, "surname", oi, oj, None, "given")
    straight = weights["given"][odd] + weights["surname"][odd]
    swapped = (given_x[2] + surname_x[2] > straight) & (given_x[0] != MISSING) & (surname_x[0] != MISSING)
    rows = odd[swapped]
    for name, crossed in (("given", given_x), ("surname", surname_x)):
        for table, values in zip((levels, sims, weights), crossed, strict=True):
            table[name][rows] = values[swapped]


def score_pairs(feats: Features, i: np.ndarray, j: np.ndarray, ignored: dict[str, np.ndarray] | None = None,
                household: tuple[str, ...] = HOUSEHOLD_FIELDS) -> Scores:
    """Match weights (bits, without the prior) of the pairs ``(i, j)``; ``ignored`` marks per field the value
    codes that are no evidence (shared identifiers); ``household``: the fields that count for nothing when the
    given names differ."""
    levels, sims, weights = {}, {}, {}
    for name in MODEL:
        levels[name], sims[name], weights[name] = _field(feats, name, i, j, (ignored or {}).get(name))
    _names(feats, i, j, levels, sims, weights)
    different_people = levels["given"] == DIFFERENT  # household fields say nothing then
    for name in household:
        weights[name][different_people] = 0.0
    total = np.zeros(len(i), dtype=np.float64)
    for w in weights.values():
        total += w
    return Scores(total, levels, sims)


def likely_pairs(feats: Features, i: np.ndarray, j: np.ndarray, prior: float, floor: float, *,
                 ignored: dict[str, np.ndarray] | None = None, household: tuple[str, ...] = HOUSEHOLD_FIELDS,
                 chunk: int = 400_000) -> tuple[np.ndarray, np.ndarray, np.ndarray, Scores]:
    """The pairs whose match probability reaches ``floor``: their records, probabilities and scores. Scored
    ``chunk`` pairs at a time, so memory stays flat however many candidates there are."""
    keep_i, keep_j, keep_p, kept = [], [], [], []
    for lo in range(0, len(i), chunk):
        ci, cj = i[lo:lo + chunk], j[lo:lo + chunk]
        scores = score_pairs(feats, ci, cj, ignored, household)
        prob = probability(scores.weight + prior)
        good = np.flatnonzero(prob >= floor)
        keep_i.append(ci[good])
        keep_j.append(cj[good])
        keep_p.append(prob[good])
        kept.append(Scores(scores.weight[good], {f: v[good] for f, v in scores.levels.items()},
                           {f: v[good] for f, v in scores.similarity.items()}))
    if not kept:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0), Scores(np.empty(0), {}, {})
    merged = Scores(np.concatenate([s.weight for s in kept]),
                    {f: np.concatenate([s.levels[f] for s in kept]) for f in kept[0].levels},
                    {f: np.concatenate([s.similarity[f] for s in kept]) for f in kept[0].similarity})
    return np.concatenate(keep_i), np.concatenate(keep_j), np.concatenate(keep_p), merged
