"""Identity features: each record's normalised keys as integer codes in numpy columns (issue 8).

Matching a million records compares millions of pairs; doing that on Python strings per pair is too slow. So
every field is normalised once per distinct value (the ``identity_normalize`` functions are cached) and
*interned*: column ``f`` holds, per record, the code of its value (``-1`` when missing), ``values[f]`` the
distinct values and ``counts[f]`` how many records hold each. Exact agreement of two records is then one integer
comparison, term frequencies (a surname like Chan is weak evidence, a rare one strong) come from ``counts``, and
string similarity is only computed on the distinct strings of pairs that differ.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .identity_normalize import NameKey, _fold, date_key, email_key, first_name_key, name_key, phone_key

if TYPE_CHECKING:
    from .identity_match import IdentityRecord

__all__ = ["FIELDS", "Features", "address_key", "extract"]

FIELDS = ("given", "surname", "names", "initials", "dob", "email", "phone", "member", "nid", "address", "city",
          "postcode")

_ADDRESS_WORDS = {
    "street": "st", "str": "st", "road": "rd", "avenue": "ave", "av": "ave", "building": "bldg", "bldg.": "bldg",
    "floor": "f", "flr": "f", "flat": "flat", "rm": "room", "block": "blk", "tower": "twr", "court": "ct",
    "centre": "ctr", "center": "ctr", "house": "hse", "mansion": "mans", "garden": "gdn", "gardens": "gdns",
    "place": "pl", "crescent": "cres", "drive": "dr", "lane": "ln", "terrace": "tce", "estate": "est",
}


@functools.lru_cache(maxsize=1 << 16)
def address_key(line: str | None) -> str | None:
    """An address line folded for comparison: case, punctuation and common abbreviations (Road/Rd)."""
    if not line:
        return None
    words = [_ADDRESS_WORDS.get(w, w) for w in re.split(r"[\s,]+", _fold(line.replace("/", " "))) if w]
    return " ".join(words) or None


@dataclass
class Features:
    """Per-field integer codes of ``n`` records, with the distinct values and how many records hold each."""

    n: int
    codes: dict[str, np.ndarray] = field(default_factory=dict)  # field -> int32 codes, -1 missing
    values: dict[str, np.ndarray] = field(default_factory=dict)  # field -> object array of distinct values
    counts: dict[str, np.ndarray] = field(default_factory=dict)  # field -> records per distinct value
    connector: np.ndarray | None = None  # int32 code of each record's connector
    connector_ids: list[str] = field(default_factory=list)  # the connector ids, by code
    scale: float = 1.0  # population / n: an incremental run sees a part of the records it matches against

    def frequency(self, name: str, codes: np.ndarray) -> np.ndarray:
        """Share of the records that have ``name`` set holding each of ``codes`` (its term frequency). In an
        incremental run the records given hold every record sharing a key with the new ones, so a value's count
        here is its count in the store, and the share is taken of the whole population."""
        counts = self.counts[name]
        present = max(int(counts.sum()) * self.scale, 1.0)
        return np.minimum(counts[codes] / present, 1.0)


def _national_id(value: str | None) -> str | None:
    text = re.sub(r"[^0-9A-Za-z]", "", value or "").upper()
    return text if len(text) >= 4 and len(set(text)) > 1 else None


def _postcode(value: str | None) -> str | None:
    text = re.sub(r"\s+", "", value or "").upper()
    return text if text and len(set(text)) > 1 else None


def _raw(values: Sequence[object]) -> tuple[np.ndarray, list[object]]:
    """Each value's code among the distinct raw values (one dict operation per record), and those values."""
    table: dict[object, int] = {}
    setdefault = table.setdefault
    codes = np.array([setdefault(v, len(table)) for v in values], dtype=np.int64)
    return codes, list(table)


def _column(raw_codes: np.ndarray, keys: list[object]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes (-1 for None), distinct values and counts of a field whose value for raw value ``k`` is
    ``keys[k]``: the key is worked out per distinct raw value, then spread to the records by numpy."""
    table: dict[object, int] = {None: -1}
    setdefault = table.setdefault
    per_raw = np.array([setdefault(k, len(table) - 1) for k in keys], dtype=np.int32)
    del table[None]
    distinct = np.empty(len(table), dtype=object)
    distinct[:] = list(table)
    codes = per_raw[raw_codes] if len(per_raw) else np.full(len(raw_codes), -1, dtype=np.int32)
    return codes, distinct, np.bincount(codes[codes >= 0], minlength=len(distinct))


def _name_of(parts: tuple[str | None, str | None, str | None]) -> NameKey | None:
    """First and last name as given; a first name alone is a first name (an SMS contact's "Pui Chun"), only
    ``full_name`` is split into given names and surname."""
    first, last, full = parts
    if first and first.strip() and not (last and last.strip()):
        return first_name_key(first)
    if first or last:
        return name_key(first, last)
    return name_key(full) if full else None


def extract(records: Sequence[IdentityRecord], region: str) -> Features:
    """The interned features of ``records`` (in their order)."""
    feats = Features(len(records))
    name_codes, name_parts = _raw([(r.first_name, r.last_name, r.full_name) for r in records])
    names = [None if parts == (None, None, None) else _name_of(parts) for parts in name_parts]
    derived: dict[str, list[object]] = {
        "given": [n.given or None if n else None for n in names],
        "surname": [n.surname or None if n else None for n in names],
        # both names in either order, so a swapped first/last name still meets its record in one block
        "names": [tuple(sorted(n)) if n and n.given and n.surname else None for n in names],
        "initials": [_initials(n) for n in names],  # for blocking names with typos
    }
    for f, keys in derived.items():
        feats.codes[f], feats.values[f], feats.counts[f] = _column(name_codes, keys)
    phone = functools.partial(phone_key, region=region)
    for f, attr, fn in (("dob", "birth_date", date_key), ("email", "email", email_key), ("phone", "phone", phone),
                        ("nid", "national_id", _national_id), ("address", "address", address_key),
                        ("city", "city", address_key), ("postcode", "postal_code", _postcode)):
        raw_codes, distinct = _raw([getattr(r, attr) for r in records])
        feats.codes[f], feats.values[f], feats.counts[f] = _column(
            raw_codes, [None if v is None else fn(v) for v in distinct])
    raw_codes, distinct = _raw([(r.connector_id, r.member_id) for r in records])
    feats.codes["member"], feats.values["member"], feats.counts["member"] = _column(
        raw_codes, [(c, m.strip()) if m and m.strip() else None for c, m in distinct])
    connectors, feats.connector_ids = _raw([r.connector_id for r in records])  # type: ignore[assignment]
    feats.connector = connectors.astype(np.int32)
    return feats


def _initials(name: NameKey | None) -> str | None:
    return "".join(sorted(w[0] for w in name if w)) if name else None
