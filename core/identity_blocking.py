"""Blocking: which record pairs are worth comparing, so the work grows near-linearly with records (issue 8).

Comparing every pair of a million records is half a trillion comparisons. Two records are compared only when
they share a *block key*: an identifier (phone, email, member number, national id), or a pair of name/birth/
address fields, so that a typo in any one field still leaves the pair sharing another key. A block holding more
than ``max_block`` records is too common to say anything (a walk-in placeholder, a very common name on a common
birthday) and is skipped rather than compared quadratically.

``BLOCKS`` is the single list of keys; ``block_keys`` (the strings the store indexes for incremental runs) and
``candidate_pairs`` (the vectorised pairs of one run) are both derived from it, so they cannot disagree.
"""

from __future__ import annotations

import numpy as np

from .identity_features import Features

__all__ = ["BLOCKS", "candidate_pairs", "key_strings"]

# each block key: a name and the fields whose values must all agree (all present)
BLOCKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("p", ("phone",)),
    ("e", ("email",)),
    ("m", ("member",)),
    ("i", ("nid",)),
    ("n", ("names",)),
    ("bs", ("dob", "surname")),
    ("bg", ("dob", "given")),
    ("ps", ("postcode", "surname")),
    ("pg", ("postcode", "given")),
    ("a", ("address",)),
    ("ag", ("address", "given")),
    ("bp", ("dob", "postcode")),
    ("bc", ("dob", "city")),
    ("pc", ("postcode", "city")),
    ("bi", ("dob", "initials")),
    ("pi", ("postcode", "initials")),
    ("cs", ("city", "surname")),
    ("cg", ("city", "given")),
)


def _combined(feats: Features, fields: tuple[str, ...]) -> np.ndarray:
    """One int64 code per record for the tuple of ``fields`` (-1 if any is missing)."""
    key = np.zeros(feats.n, dtype=np.int64)
    missing = np.zeros(feats.n, dtype=bool)
    for f in fields:
        codes = feats.codes[f]
        key = key * (len(feats.values[f]) + 1) + codes
        missing |= codes < 0
    key[missing] = -1
    return key


def _pairs_within(key: np.ndarray, max_block: int) -> tuple[np.ndarray, np.ndarray, int]:
    """All pairs of records sharing ``key`` in blocks of 2..``max_block`` records, and how many blocks were
    skipped for being bigger. Work is proportional to the pairs made: each round pairs every record with the
    one ``d`` places later in its block, among the records that still have such a partner."""
    order = np.argsort(key, kind="stable")
    ks = key[order]
    keep = ks >= 0
    order, ks = order[keep], ks[keep]
    empty = np.empty(0, dtype=np.int64)
    if len(ks) < 2:
        return empty, empty, 0
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    sizes = np.diff(np.r_[starts, len(ks)])
    later = np.repeat(starts + sizes, sizes) - np.arange(len(ks)) - 1  # block members after each position
    later[np.repeat(sizes > max_block, sizes)] = 0
    live = np.flatnonzero(later > 0)
    out_a, out_b = [], []
    d = 1
    while len(live):
        out_a.append(order[live])
        out_b.append(order[live + d])
        d += 1
        live = live[later[live] >= d]
    skipped = int((sizes > max_block).sum())
    if not out_a:
        return empty, empty, skipped
    return np.concatenate(out_a), np.concatenate(out_b), skipped


def candidate_pairs(feats: Features, max_block: int, *, skip: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """Distinct pairs ``(i, j)``, ``i < j``, sharing at least one block key; ``skip`` marks records (known ones)
    whose pairs among themselves are not wanted. Also returns the number of oversized blocks skipped."""
    chunks: list[np.ndarray] = []
    skipped = 0
    for _name, fields in BLOCKS:
        a, b, s = _pairs_within(_combined(feats, fields), max_block)
        skipped += s
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        chunks.append(lo * feats.n + hi)
    if not chunks:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, skipped
    packed = np.unique(np.concatenate(chunks))
    i, j = packed // feats.n, packed % feats.n
    if skip is not None:
        wanted = ~(skip[i] & skip[j])
        i, j = i[wanted], j[wanted]
    return i, j, skipped


def key_strings(feats: Features, index: int) -> set[str]:
    """The block keys of record ``index`` as strings, for the store's candidate index."""
    keys: set[str] = set()
    for name, fields in BLOCKS:
        parts = []
        for f in fields:
            code = int(feats.codes[f][index])
            if code < 0:
                break
            value = feats.values[f][code]
            parts.append(":".join(value) if isinstance(value, tuple) else str(value))
        else:
            keys.add(f"{name}:{'|'.join(parts)}")
    return keys
