"""Identity keys: phones, emails, names and birth dates as the matcher compares them (groundwork for issue 8).

Each function works once per distinct value (``lru_cache``): a million customer records hold far fewer distinct
phones, emails and names. They return ``None`` for what cannot serve as evidence, never raise.

- ``phone_key``: E.164 through the mapping transform ``phone_e164`` behind a small pre-normaliser for the ways
  Hong Kong numbers arrive (``+852 9123 4567``, ``91234567``, ``(852) 9123-4567``, ``852-9123-4567``,
  ``0085291234567``). A number that is possible but not allocated is kept (real customers type them; the matcher
  guards against shared ones); placeholders such as ``00000000`` or ``12345678`` are dropped.
- ``email_key``: checked and lower-cased by the mapping transform ``email``, then the provider rules
  email-validator does not apply: Gmail ignores dots and ``+tags`` in the local part (and googlemail.com is
  gmail.com); Outlook, Hotmail, Live, iCloud, Proton and Fastmail ignore ``+tags``.
- ``name_key``: case, spacing, accents and punctuation folded; Hong Kong surname-first order (``CHAN Tai Man``,
  ``Chan, Tai Man``) recognised; a surname's romanisations share one key (Chan/Chen/陳) and common English
  nicknames their formal name (Bill/William).
- ``date_key``: birth dates in ISO, day-first (Hong Kong) and written-out forms.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from typing import NamedTuple

from .transforms import TransformContext, _phone_e164, _to_email

__all__ = ["NameKey", "date_key", "email_key", "first_name_key", "is_cantonese", "name_key", "phone_key"]

_DIGITS = re.compile(r"\d+")
_PLACEHOLDER_PHONES = {"12345678", "87654321", "23456789", "98765432"}

# surname romanisations (Cantonese, Mandarin pinyin, Chinese characters) -> one key
_SURNAMES = [
    ("chan", "chen", "陳", "陈"), ("wong", "wang", "huang", "黃", "黄", "王"), ("lee", "li", "李"),
    ("cheung", "chang", "zhang", "張", "张"), ("ho", "he", "何"), ("ng", "wu", "吳", "吴"),
    ("lau", "liu", "劉", "刘"), ("yeung", "yang", "楊", "杨"), ("tsang", "zeng", "曾"), ("leung", "liang", "梁"),
    ("lam", "lin", "林"), ("cheng", "zheng", "鄭", "郑"), ("tse", "xie", "謝", "谢"), ("chow", "zhou", "周"),
    ("kwok", "guo", "郭"), ("lo", "law", "luo", "羅", "罗"), ("ma", "馬", "马"), ("fung", "feng", "馮", "冯"),
    ("tang", "deng", "鄧", "邓"), ("yip", "ye", "葉", "叶"), ("siu", "xiao", "蕭", "萧"), ("poon", "pan", "潘"),
    ("mak", "mai", "麥", "麦"), ("choi", "cai", "tsoi", "蔡"), ("hui", "xu", "許", "许"), ("kwan", "guan", "關", "关"),
    ("tam", "tan", "譚", "谭"), ("yau", "qiu", "邱"), ("fong", "fang", "方"), ("so", "su", "蘇", "苏"),
    ("au", "ou", "區", "歐", "欧"), ("chu", "zhu", "朱"), ("sze", "shi", "施"), ("tong", "唐"), ("yuen", "yuan", "袁"),
    ("kong", "jiang", "江"), ("shek", "石"), ("lui", "lv", "呂", "吕"),
]
SURNAME_ALIASES = {alias: group[0] for group in _SURNAMES for alias in group}

_NICKNAMES = {
    "bill": "william", "billy": "william", "will": "william", "willy": "william", "liam": "william",
    "bob": "robert", "bobby": "robert", "rob": "robert", "robbie": "robert", "dick": "richard",
    "rick": "richard", "ricky": "richard", "rich": "richard", "jim": "james", "jimmy": "james",
    "jamie": "james", "mike": "michael", "mick": "michael", "mickey": "michael", "tom": "thomas",
    "tommy": "thomas", "tony": "anthony", "alex": "alexander", "sandy": "alexandra", "kate": "katherine",
    "katie": "katherine", "kathy": "katherine", "cathy": "catherine", "liz": "elizabeth", "beth": "elizabeth",
    "betty": "elizabeth", "lizzie": "elizabeth", "eliza": "elizabeth", "jenny": "jennifer", "jen": "jennifer",
    "sam": "samuel", "sammy": "samuel", "ben": "benjamin", "benny": "benjamin", "dan": "daniel",
    "danny": "daniel", "dave": "david", "steve": "steven", "stephen": "steven", "chris": "christopher",
    "matt": "matthew", "nick": "nicholas", "pete": "peter", "joe": "joseph", "joey": "joseph",
    "ed": "edward", "eddie": "edward", "ted": "edward", "fred": "frederick", "greg": "gregory",
    "ken": "kenneth", "kenny": "kenneth", "larry": "lawrence", "andy": "andrew", "drew": "andrew",
    "vicky": "victoria", "sue": "susan", "suzy": "susan", "peggy": "margaret", "maggie": "margaret",
    "meg": "margaret", "jess": "jessica", "jessie": "jessica", "becky": "rebecca", "abby": "abigail",
    "patty": "patricia", "pat": "patricia", "debbie": "deborah", "chloe": "chloe",
}

# Cantonese syllables of given names, as Hong Kong romanises them (with the variants below), for cutting a name
# written as one word; and the variants that are only ever another spelling of one syllable. Spellings that are
# also a syllable of their own (Chi/Tsz, Hong/Hung, Sam/Sum, San/Shan, Cheng/Ching, Kim/Kin) and the English
# name May are left alone.
_CANTONESE = frozenset("""
    ah chak chan chau chee cheng cheuk cheung chi chin ching chiu cho choi chok chong chu chuen chun chung fai fan
    fat fei fong fu fuk fun fung ha hang hau hay hei hin hing ho hoi hok hon hong hou hoy hung ka kai kam kan kar
    kat kei ki kim kin king kit kiu ko kong kuan kuen kuok kwai kwan kwok kwong lai lam lan lap lau lei leung lik
    lim lin ling lit lo lok long lui luk lun lung ma man mau may mei meng mi mik ming miu mo mok mui mun na nam nga
    ngai ngan ngok ning oi on pak pan pei pik ping po pok pong pui pun sai sam san sang sau sek shan sheung shing
    shiu shu shuen shuet shuk shun si sik sin sing siu so suen suet sui sum sun sung sze tai tak tat tim tin ting
    to tong tsan tse tsing tsoi tsui tsun tsz tung tze wa wah wai wan wang wei wing wo wong wun yan yau ye yee yen
    yeung yi yik yin ying yip yiu yu yue yuen yuet yuk yung
""".split())
_SYLLABLE_VARIANTS = {
    "mun": "man", "shiu": "siu", "meng": "ming", "yen": "yan", "wei": "wai", "yi": "yee", "ye": "yee",
    "kuok": "kwok", "hoy": "hoi", "chee": "chi", "shuet": "suet", "hay": "hei", "ki": "kei", "wa": "wah",
    "chuen": "chun", "kuan": "kwan", "tsoi": "choi",
}

_MONTHS = {m: i for i, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")], start=1) for m in names}


class NameKey(NamedTuple):
    """A person's name as the matcher compares it: ``given`` words joined without spaces, ``surname`` aliased."""

    given: str
    surname: str


@functools.lru_cache(maxsize=1 << 16)
def phone_key(value: str | None, region: str = "HK") -> str | None:
    """E.164 of ``value`` read in ``region`` when it has no country code; ``None`` if it is no usable number."""
    if not value:
        return None
    text = value.strip()
    digits = "".join(_DIGITS.findall(text))
    if not digits or len(set(digits[-8:])) == 1 or digits[-8:] in _PLACEHOLDER_PHONES:
        return None
    if text.startswith("+"):
        candidate = "+" + digits
    elif region == "HK" and digits.startswith("852") and len(digits) == 11:  # "852-9123-4567", "(852) 9123 4567"
        candidate = "+" + digits
    else:
        candidate = digits  # the transform reads a leading 00 as +
    local = digits[5:] if digits.startswith("00852") else digits[3:] if candidate.startswith("+852") else digits
    if region == "HK" and len(local) == 8 and local[0] in "23456789" and (candidate[0] != "+" or digits[:3] == "852"):
        return "+852" + local  # what phonenumbers says for every 8-digit Hong Kong number, 50 times faster
    try:
        return _e164(region)(candidate)
    except ValueError:
        return None


@functools.lru_cache(maxsize=None)
def _e164(region: str) -> Callable[[str], str]:
    """The mapping transform ``phone_e164`` for ``region``: what a synced record's phone went through."""
    return _phone_e164(TransformContext(default_region=region))


_TAG_PROVIDERS = {"outlook.com", "hotmail.com", "live.com", "icloud.com", "me.com", "protonmail.com", "proton.me",
                  "fastmail.com", "gmail.com"}


@functools.lru_cache(maxsize=1 << 16)
def email_key(value: str | None) -> str | None:
    """The address the mailbox really is, lower-cased; ``None`` for something that is not an address."""
    if not value:
        return None
    try:
        text = _to_email(value)  # the mapping transform's check and case folding
    except (TypeError, ValueError):
        return None
    local, _at, domain = text.rpartition("@")
    if domain == "googlemail.com":
        domain = "gmail.com"
    if domain in _TAG_PROVIDERS:
        local = local.split("+", 1)[0]
    if domain == "gmail.com":
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


_PUNCTUATION = re.compile(r"[^\w\s,]")
_SEPARATORS = re.compile(r"[\s,]+")


def _fold(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return _PUNCTUATION.sub(" ", text.casefold()).strip()


@functools.lru_cache(maxsize=1 << 16)
def name_key(first: str | None, last: str | None = None) -> NameKey | None:
    """Folded given names and surname; ``first`` alone may hold a whole name (``"CHAN Tai Man"``)."""
    raw_first, raw_last = (first or "").strip(), (last or "").strip()
    if not raw_first and not raw_last:
        return None
    if not raw_last:
        raw_first, raw_last = _split_whole(raw_first)
    surname = "".join(w for w in _SEPARATORS.split(_fold(raw_last)) if w)
    return NameKey(_given_key(raw_first), SURNAME_ALIASES.get(surname, surname))


@functools.lru_cache(maxsize=1 << 16)
def first_name_key(first: str | None) -> NameKey | None:
    """A first-name field with no surname beside it: split into given names and surname only when it shows a
    whole name (``CHAN Tai Man``, ``Chan, Tai Man``, ``Tai Man Chan`` with a known surname); otherwise it is
    given names alone (an SMS contact's ``Pui Chun``), with an empty surname. Two words are given names even
    when one is also a surname (``Ho Long``, ``Siu Fai``: most Cantonese given names are two syllables)."""
    text = (first or "").strip()
    if not text:
        return None
    words = text.split()
    whole = "," in text or (len(words) > 1 and words[0].isupper() and not words[-1].isupper()) or (
        len(words) > 2 and (_fold(words[0]) in SURNAME_ALIASES or _fold(words[-1]) in SURNAME_ALIASES))
    if whole or (len(words) == 1 and len(text) >= 2 and all(unicodedata.category(c) == "Lo" for c in text)):
        return name_key(text)
    return NameKey(_given_key(text), "")


def _given_key(text: str) -> str:
    """Given names folded: one English name to its formal form (Bill/William), the syllables of a Cantonese
    name, spaced or written as one word, each to one romanisation (``Tai Mun``, ``Taimun`` -> ``taiman``)."""
    words = [w for w in _SEPARATORS.split(_fold(text)) if w]
    if len(words) == 1 and words[0] in _NICKNAMES:
        return _NICKNAMES[words[0]]
    return "".join(_SYLLABLE_VARIANTS.get(s, s) for w in words for s in _syllables(w))


@functools.lru_cache(maxsize=1 << 14)
def _syllables(word: str) -> tuple[str, ...]:
    """``word`` cut into Cantonese syllables, fewest first (``taimun`` -> ``tai``, ``mun``); the word itself
    when it is not made of them (``peter``)."""
    best: list[tuple[str, ...] | None] = [()] + [None] * len(word)
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 6), end):
            head = best[start]
            if head is not None and word[start:end] in _CANTONESE and (
                    best[end] is None or len(head) + 1 < len(best[end])):
                best[end] = (*head, word[start:end])
    return best[-1] or (word,)


@functools.lru_cache(maxsize=1 << 16)
def is_cantonese(given: str) -> bool:
    """Whether a folded given name (``given_key``) is made of Cantonese syllables (``taiman``), not an English
    name (``peter``); a few are both (``sam``)."""
    return bool(given) and all(s in _CANTONESE for s in _syllables(given))


def _split_whole(name: str) -> tuple[str, str]:
    """``"Chan, Tai Man"``, ``"CHAN Tai Man"``, ``"陳大文"`` or ``"Tai Man Chan"`` -> (given, surname)."""
    if "," in name:
        surname, _, given = name.partition(",")
        return given.strip(), surname.strip()
    words = name.split()
    if len(words) == 1:
        word = words[0]
        if len(word) >= 2 and all(unicodedata.category(c) == "Lo" for c in word):  # Chinese: surname first
            return word[1:], word[0]
        return word, ""
    upper_first = words[0].isupper() and not words[-1].isupper()  # "CHAN Tai Man"
    known_first = _fold(words[0]) in SURNAME_ALIASES and _fold(words[-1]) not in SURNAME_ALIASES  # "Chan Tai Man"
    if upper_first or known_first:
        return " ".join(words[1:]), words[0]
    return " ".join(words[:-1]), words[-1]


@functools.lru_cache(maxsize=1 << 16)
def date_key(value: str | date | None) -> date | None:
    """A birth date from ISO (``1990-03-07``), day-first (``07/03/1990``, ``7-3-1990``), compact (``19900307``)
    or written-out (``7 Mar 1990``, ``March 7, 1990``) text; ``None`` if it is none of these or impossible."""
    if value is None or isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    text = value.strip().lower().replace(",", " ")
    parts = [p for p in re.split(r"[\s/.\-]+", text) if p]
    try:
        if len(parts) == 1 and parts[0].isdigit() and len(parts[0]) == 8:
            return date(int(parts[0][:4]), int(parts[0][4:6]), int(parts[0][6:]))
        if len(parts) != 3:
            return None
        if all(p.isdigit() for p in parts):
            a, b, c = (int(p) for p in parts)
            return date(a, b, c) if len(parts[0]) == 4 else date(c, b, a)  # Hong Kong writes day first
        numbers = [p for p in parts if p.isdigit()]
        months = [_MONTHS[p] for p in parts if p in _MONTHS]
        if len(numbers) != 2 or len(months) != 1:
            return None
        year = next(int(n) for n in numbers if len(n) == 4)
        day = next(int(n) for n in numbers if len(n) <= 2)
        return date(year, months[0], day)
    except (ValueError, StopIteration):
        return None
