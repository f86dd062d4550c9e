"""How many SMS segments a text costs, and in which encoding (GSM 03.38 rules).

GSM-7: 160 septets in one segment, 153 per part when concatenated; the extension characters ``^{}\\[~]|€`` and
form feed cost two septets. Any character outside the GSM-7 alphabet (any Chinese character, an emoji) switches
the whole message to UCS-2: 70 UTF-16 code units in one segment, 67 per part; an astral character counts two.
Gateways bill per segment, so ``messages list`` shows this as the estimated cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Segments", "count_segments"]

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXTENSION = set("^{}\\[~]|€\f")

#: (single-segment capacity, per-part capacity) in the encoding's units
_LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True, slots=True)
class Segments:
    """``encoding`` of the whole text, its length in that encoding's ``units``, and the ``segments`` billed."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    segments: int


def count_segments(text: str) -> Segments:
    """The encoding, length in units and segment count of ``text`` (an empty text is one segment)."""
    septets = 0
    for ch in text:
        if ch in _GSM_BASIC:
            septets += 1
        elif ch in _GSM_EXTENSION:
            septets += 2
        else:
            units = len(text.encode("utf-16-le")) // 2
            return Segments("UCS-2", units, _parts(units, *_LIMITS["UCS-2"]))
    return Segments("GSM-7", septets, _parts(septets, *_LIMITS["GSM-7"]))


def _parts(units: int, single: int, per_part: int) -> int:
    if units <= single:
        return 1
    return -(-units // per_part)
