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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .identity_normalize import _fold, date_key, email_key, name_key, phone_key

if TYPE_CHECKING:
    from .identity_match import IdentityRecord
    from .identity_normalize import NameKey

__all__ = ["FIELDS", "Features", "address_key", "extract", "record_name"]

FIELDS = ("given", "surname", "names", "initials", "dob", "email", "phone", "member", "nid", "address", "city", "postcode")

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


def record_name(record: IdentityRecord) -> NameKey | None:
    """The record's name key: first/last names, else the whole name in ``full_name``."""
    if record.first_name or record.last_name:
        return name_key(record.first_name, record.last_name)
    return name_key(record.full_name) if record.full_name else None


@dataclass
class Features:
    """Per-field integer codes of ``n`` records, with the distinct values and how many records hold each."""

    n: int
    codes: dict[str, np.ndarray] = field(default_factory=dict)  # field -> int32 codes, -1 missing
    values: dict[str, np.ndarray] = field(default_factory=dict)  # field -> object array of distinct values
    counts: dict[str, np.ndarray] = field(default_factory=dict)  # field -> records per distinct value
    connector: np.ndarray | None = None  # int32 code of each record's connector

    def frequency(self, name: str, codes: np.ndarray) -> np.ndarray:
        """Share of the records that have ``name`` set holding each of ``codes`` (its term frequency)."""
        counts = self.counts[name]
        present = max(int(counts.sum()), 1)
        return counts[codes] / present


def _national_id(value: str | None) -> str | None:
    text = re.sub(r"[^0-9A-Za-z]", "", value or "").upper()
    return text if len(text) >= 4 and len(set(text)) > 1 else None


def _postcode(value: str | None) -> str | None:
    text = re.sub(r"\s+", "", value or "").upper()
    return text if text and len(set(text)) > 1 else None


def extract(records: Sequence[IdentityRecord], region: str) -> Features:
    """The interned features of ``records`` (in their order)."""
    tables: dict[str, dict[object, int]] = {f: {} for f in FIELDS}
    cols: dict[str, list[int]] = {f: [] for f in FIELDS}
    connectors: dict[str, int] = {}
    conn_col: list[int] = []

    def put(name: str, value: object) -> None:
        if value is None:
            cols[name].append(-1)
            return
        table = tables[name]
        code = table.get(value)
        if code is None:
            code = table[value] = len(table)
        cols[name].append(code)

    for r in records:
        conn_col.append(connectors.setdefault(r.connector_id, len(connectors)))
        name = record_name(r)
        put("given", name.given or None if name else None)
        put("surname", name.surname or None if name else None)
        # both names in either order, so a swapped first/last name still meets its record in one block
        put("names", tuple(sorted(name)) if name and name.given and name.surname else None)
        put("initials", "".join(sorted(w[0] for w in name if w)) if name else None)  # for blocking typos
        put("dob", date_key(r.birth_date))
        put("email", email_key(r.email))
        put("phone", phone_key(r.phone, region))
        member = (r.member_id or "").strip()
        put("member", (r.connector_id, member) if member else None)
        put("nid", _national_id(r.national_id))
        put("address", address_key(r.address))
        put("city", address_key(r.city))
        put("postcode", _postcode(r.postal_code))
    feats = Features(len(records), connector=np.asarray(conn_col, dtype=np.int32))
    for f in FIELDS:
        codes = np.asarray(cols[f], dtype=np.int32)
        values = np.empty(len(tables[f]), dtype=object)
        values[:] = list(tables[f])
        feats.codes[f], feats.values[f] = codes, values
        feats.counts[f] = np.bincount(codes[codes >= 0], minlength=len(values))
    return feats
