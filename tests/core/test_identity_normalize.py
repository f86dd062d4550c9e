"""Identity keys (core/identity_normalize.py): the spellings one person's details arrive in meet on one key."""

from __future__ import annotations

from datetime import date

import pytest

from storesync.core.identity_normalize import (NameKey, date_key, email_key, first_name_key, is_cantonese, name_key,
                                                phone_key)


@pytest.mark.parametrize("written", ["+852 9123 4567", "91234567", "(852) 9123-4567", "852-9123-4567",
                                     "0085291234567", " 9123 4567 ", "+85291234567"])
def test_hong_kong_phones_in_every_usual_form_meet(written: str) -> None:
    assert phone_key(written) == "+85291234567"


def test_other_countries_placeholders_and_junk() -> None:
    assert phone_key("+44 20 7946 0958") == "+442079460958"
    assert phone_key("0086 138 0013 8000") == "+8613800138000"
    assert phone_key("40001234") == "+85240001234"  # possible but not allocated in Hong Kong: kept
    for junk in ("00000000", "+852 8888 8888", "12345678", "", None, "n/a", "123"):
        assert phone_key(junk) is None, junk


@pytest.mark.parametrize(("written", "key"), [
    ("Tai.Man.Chan+shop@Gmail.com", "taimanchan@gmail.com"),
    ("taimanchan@googlemail.com", "taimanchan@gmail.com"),
    ("amy+hk@outlook.com", "amy@outlook.com"),
    ("amy.lee+news@company.com.hk", "amy.lee+news@company.com.hk"),  # unknown provider: the tag may matter
    (" AMY.LEE@Company.com.hk ", "amy.lee@company.com.hk"),
])
def test_emails_fold_by_provider_rules(written: str, key: str) -> None:
    assert email_key(written) == key


def test_not_an_email() -> None:
    assert [email_key(v) for v in ("", None, "amy", "amy@", "@x.com", "a b@x.com", "amy@localhost")] == [None] * 7


@pytest.mark.parametrize(("first", "last"), [
    ("Tai Man", "Chan"), ("Tai-man", "CHAN"), ("taiman", "Chen"), ("CHAN Tai Man", None), ("Chan, Tai Man", None),
    ("Tai Man Chan", None), ("  TAI   MAN ", "chan"),
])
def test_names_fold_case_spacing_order_and_romanisation(first: str, last: str | None) -> None:
    assert name_key(first, last) == NameKey("taiman", "chan")


@pytest.mark.parametrize(("written", "key"), [
    ("Tai Mun", "taiman"), ("Taimun", "taiman"), ("Shiu-kuok", "siukwok"), ("Ka Yen", "kayan"), ("Wing Yi", "wingyee"),
    ("Chi Ho", "chiho"), ("Tsz Ho", "tszho"), ("Peter", "peter"), ("May", "may"), ("Kaitlin", "kaitlin"),
])
def test_given_names_fold_cantonese_romanisations_spaced_or_as_one_word(written: str, key: str) -> None:
    assert first_name_key(written).given == key


def test_nicknames_chinese_names_and_accents() -> None:
    assert name_key("Bill", "Wong") == name_key("William", "Wang") == NameKey("william", "wong")
    assert name_key("陳大文") == NameKey("大文", "chan")
    assert name_key("Zoë", "Lam") == NameKey("zoe", "lam")
    assert name_key(None, None) is None and name_key("", " ") is None


@pytest.mark.parametrize("written", ["1990-03-07", "07/03/1990", "7-3-1990", "19900307", "7 Mar 1990",
                                     "March 7, 1990", "1990/03/07", "7.3.1990"])
def test_birth_dates_in_several_formats(written: str) -> None:
    assert date_key(written) == date(1990, 3, 7)


def test_impossible_or_unreadable_dates_are_none() -> None:
    assert [date_key(v) for v in ("31/02/1990", "1990", "next tuesday", "", None, "7 Foo 1990")] == [None] * 6
    assert date_key(date(2001, 1, 2)) == date(2001, 1, 2)


@pytest.mark.parametrize("number", ["21234567", "31234567", "51234567", "61234567", "71234567", "81234567",
                                    "91234567", "46001234"])
def test_the_hong_kong_shortcut_gives_what_phonenumbers_gives(number: str) -> None:
    from storesync.core.identity_normalize import _e164

    for written in (number, f"+852 {number}", f"00852{number}", f"852-{number[:4]}-{number[4:]}"):
        assert phone_key(written) == _e164("HK")(number), written


@pytest.mark.parametrize(("first", "key"), [
    ("Pui Chun", NameKey("puichun", "")), ("Bill", NameKey("william", "")), ("CHAN Tai Man", NameKey("taiman", "chan")),
    ("Chan, Tai Man", NameKey("taiman", "chan")), ("Tai Man Chan", NameKey("taiman", "chan")),
    ("陳大文", NameKey("大文", "chan")), ("  ", None), ("Ho Long", NameKey("holong", "")),
    ("Siu Fai", NameKey("siufai", "")),
])
def test_a_first_name_alone_is_split_only_when_it_shows_a_whole_name(first: str, key: NameKey | None) -> None:
    assert first_name_key(first) == key


@pytest.mark.parametrize(("given", "cantonese"), [
    ("taiman", True), ("kawing", True), ("ho", True), ("peter", False), ("william", False), ("", False),
])
def test_a_given_name_of_cantonese_syllables_is_told_from_an_english_one(given: str, cantonese: bool) -> None:
    assert is_cantonese(given) is cantonese
