"""Second-pass identity rules (core/identity_bridge.py): for each, a pair it merges and a family it keeps apart."""

from __future__ import annotations

import pytest

from storesync.core.identity_bridge import mistyped, one_slip
from storesync.core.identity_explain import _shared
from storesync.core.identity_match import IdentityRecord, MatchSettings, resolve

PHONE, EMAIL = "9123 4567", "chan.family@example.com"


def rec(cid: str, ext: str, **fields) -> IdentityRecord:
    return IdentityRecord(cid, ext, **fields)


def person_of(result, ref) -> list:
    return next(p for p in result.persons if ref in p)


def rules_of(result) -> list[str]:
    return sorted(link.rule for link in result.links)


@pytest.mark.parametrize(("x", "y", "slip"), [
    ("taiman", "taimun", True), ("siuming", "shiuming", True), ("yee", "yi", False), ("kei", "ki", True),
    ("kawing", "kawign", True), ("kuok", "kwok", True), ("kawing", "kaming", False), ("taiman", "taiman", False),
    ("peter", "taiman", False), ("a", "ab", False),
])
def test_one_slip_is_a_vowel_a_letter_more_or_less_or_a_swap_never_a_consonant(x: str, y: str, slip: bool) -> None:
    assert one_slip(x, y) is slip


@pytest.mark.parametrize(("x", "y", "typo"), [
    ("taiman", "taimgn", True), ("taimgn", "taiman", True), ("kawing", "kaming", False), ("peter", "petek", False),
    ("taiman", "taiman", False), ("taiman", "taimgnx", False), ("kaho", "kahk", True), ("ho", "hk", False),
])
def test_a_typo_leaves_no_cantonese_name_where_a_sibling_has_another_one(x: str, y: str, typo: bool) -> None:
    assert mistyped(x, y) is typo


def test_a_consonant_typo_at_one_phone_is_one_person() -> None:
    result = resolve([rec("tills", "a", phone=PHONE, full_name="CHAN Tai Man"),
                      rec("shop", "b", phone=PHONE, first_name="Tai Mgn", last_name="Chan")])
    assert len(result.persons) == 1 and rules_of(result) == ["similar name"]


def test_names_a_typo_apart_at_one_phone_are_one_person_but_siblings_sharing_a_syllable_are_not() -> None:
    one = [rec("tills", "a", phone=PHONE, full_name="CHAN Tai Man"), rec("shop", "b", phone=PHONE,
                                                                         first_name="Tai Mna", last_name="Chan")]
    result = resolve(one)
    assert len(result.persons) == 1 and rules_of(result) == ["similar name"]
    siblings = [rec("tills", "a", phone=PHONE, full_name="CHAN Ka Wing"),
                rec("shop", "b", phone=PHONE, first_name="Ka Ming", last_name="Chan")]
    assert len(resolve(siblings).persons) == 2
    cousins = [rec("tills", "a", phone=PHONE, full_name="CHAN Tai Man"),
               rec("shop", "b", phone=PHONE, first_name="Tai Mna", last_name="Wong")]
    assert len(resolve(cousins).persons) == 2


def test_an_english_and_a_chinese_name_with_one_phone_surname_and_birth_date_are_one_person() -> None:
    peter = rec("shop", "a", phone=PHONE, first_name="Peter", last_name="Chan", birth_date="1984-05-07")
    taiman = rec("tills", "b", phone=PHONE, full_name="CHAN Tai Man", birth_date="07/05/1984")
    result = resolve([peter, taiman])
    assert len(result.persons) == 1 and rules_of(result) == ["birth date"]
    son = rec("tills", "c", phone=PHONE, full_name="CHAN Kevin", birth_date="2010-01-02")
    assert len(resolve([taiman, son]).persons) == 2


def test_a_name_the_person_is_already_known_by_is_compatible_at_its_email() -> None:
    peter = rec("shop", "a", phone=PHONE, email=EMAIL, first_name="Peter", last_name="Chan", birth_date="1984-05-07")
    taiman = rec("tills", "b", phone=PHONE, full_name="CHAN Tai Man", birth_date="07/05/1984")
    later = rec("erp", "c", email=EMAIL, full_name="Tai Man Chan")
    result = resolve([peter, taiman, later])
    assert len(result.persons) == 1 and rules_of(result) == ["birth date", "known name"]
    daughter = rec("erp", "d", email=EMAIL, full_name="Mei Ling Chan")
    result = resolve([peter, taiman, daughter])
    assert person_of(result, daughter.ref) == [daughter.ref]


def test_a_phone_alone_joins_the_one_person_at_that_phone_in_marketing_mode_only_by_default() -> None:
    owner = [rec("tills", "a", phone=PHONE, full_name="CHAN Tai Man"),
             rec("shop", "b", phone=PHONE, first_name="Tai Man", last_name="Chan")]
    sms = rec("sms", "c", phone="+852 9123 4567")
    assert len(resolve([*owner, sms]).persons) == 2
    result = resolve([*owner, sms], MatchSettings(mode="marketing"))
    assert len(result.persons) == 1
    assert len(resolve([*owner, sms], MatchSettings(phone_owner=True)).persons) == 1
    assert len(resolve([*owner, sms], MatchSettings(mode="marketing", phone_owner=False)).persons) == 2
    family = [*owner, rec("tills", "d", phone=PHONE, full_name="CHAN Siu Ming")]
    result = resolve([*family, sms], MatchSettings(mode="marketing"))
    assert person_of(result, sms.ref) == [sms.ref]


@pytest.mark.parametrize(("rule", "value", "words"), [
    ("similar name", "+85291234567", "share the phone +852 9123 4567 and first names one slip apart (Tai Man / "
                                     "Tai Mun: a typo or another romanisation)"),
    ("birth date", "+85291234567", "share the phone +852 9123 4567, the surname and the birth date 1984-05-07 "
                                   "(first names Tai Man / Tai Mun: one person known by two names)"),
    ("known name", "amy@example.com taiman", "share the email address amy@example.com and the first name taiman, "
                                             "one this person is already known by from another record"),
    ("phone owner", "+85291234567", "share the phone +852 9123 4567 (one of them has no name; no other person's "
                                    "record carries this number)"),
    ("own phone", "+85291234567", "share the phone +852 9123 4567 which both systems hold as the customer's own "
                                  "number (first names Tai Man / Tai Mun)"),
    ("whole name", "+85291234567", "share the phone +852 9123 4567 and the same first name and surname (Tai Man), "
                                   "though other people use this contact too"),
    ("email name", "+85291234567", "share the phone +852 9123 4567 and one's email spells the other's first name "
                                   "(Tai Man / Tai Mun: one person known by two names)"),
])
def test_every_second_pass_rule_is_explained_in_words(rule: str, value: str, words: str) -> None:
    a = {"first_name": "Tai Man", "birth_date": "1984-05-07"}
    assert _shared(rule, value, a, {"first_name": "Tai Mun"}, []) == words


def test_second_pass_rules_reach_stored_persons_but_never_relink_two_of_them() -> None:
    stored = [rec("tills", "a", phone=PHONE, full_name="CHAN Tai Man", birth_date="1984-05-07"),
              rec("erp", "b", phone=PHONE, full_name="Peter Chan", birth_date="07/05/1984")]
    new = rec("shop", "c", phone=PHONE, first_name="Tai Mna", last_name="Chan")
    result = resolve([*stored, new], known={stored[0].ref: "P1", stored[1].ref: "P2"})
    assert sorted(len(p) for p in result.persons) == [1, 2] and rules_of(result) == ["similar name"]
    assert person_of(result, new.ref) == sorted([new.ref, stored[0].ref])


def test_a_phone_alone_joins_the_one_person_who_gave_it_as_their_own_in_strict_mode_too() -> None:
    own = MatchSettings(own_phone_sources=("erp", "sms"))
    owner = [rec("erp", "a", phone=PHONE, full_name="CHAN Tai Man"),
             rec("tills", "b", phone=PHONE, full_name="CHAN Tai Man")]
    sms = rec("sms", "c", phone="+852 9123 4567")
    assert len(resolve([*owner, sms]).persons) == 2
    result = resolve([*owner, sms], own)
    assert len(result.persons) == 1 and "own phone" in rules_of(result)
    # a child who gave the parent's number at the till is at the phone too: the parent's ERP account says whose
    child = rec("tills", "d", phone=PHONE, full_name="CHAN Siu Ming")
    result = resolve([*owner, child, sms], own)
    assert person_of(result, sms.ref) == sorted([owner[0].ref, owner[1].ref, sms.ref])
    assert person_of(result, child.ref) == [child.ref]


def test_a_phone_alone_stays_apart_when_only_the_till_holds_its_number() -> None:
    own = MatchSettings(own_phone_sources=("erp", "sms"))
    child = rec("tills", "d", phone=PHONE, full_name="CHAN Siu Ming")  # perhaps a parent's number
    sms = rec("sms", "c", phone=PHONE)
    assert len(resolve([child, sms], own).persons) == 2
    # nor when two people both call it their own, nor when the phone-only record is not from such a source
    two = [rec("erp", "a", phone=PHONE, full_name="CHAN Tai Man"), rec("erp", "b", phone=PHONE, full_name="WONG Mei")]
    assert person_of(resolve([*two, sms], own), sms.ref) == [sms.ref]
    walk_in = rec("tills", "w", phone=PHONE)
    assert person_of(resolve([two[0], walk_in], own), walk_in.ref) == [walk_in.ref]


def test_two_names_that_both_gave_one_phone_as_their_own_are_one_person_unless_surname_or_birth_differs() -> None:
    own = MatchSettings(own_phone_sources=("erp", "sms"))
    taiman = rec("erp", "a", phone=PHONE, full_name="CHAN Tai Man", birth_date="1970-01-02")
    peter = rec("sms", "b", phone=PHONE, first_name="Peter")
    result = resolve([taiman, peter], own)
    assert len(result.persons) == 1 and rules_of(result) == ["own phone"]
    assert len(resolve([taiman, peter]).persons) == 2
    son = rec("erp", "c", phone=PHONE, full_name="CHAN Siu Ming", birth_date="1999-03-04")
    wife = rec("erp", "d", phone=PHONE, full_name="WONG Mei Ling")
    assert len(resolve([taiman, son], own).persons) == 2
    assert len(resolve([taiman, wife], own).persons) == 2


def test_the_same_whole_name_at_a_phone_shared_by_a_family_is_one_person_unless_born_apart() -> None:
    family = [rec("tills", "a", phone=PHONE, full_name="CHAN Tai Man"), rec("shop", "b", phone=PHONE,
              first_name="Peter", last_name="Chan"), rec("tills", "c", phone=PHONE, full_name="CHAN Siu Ming"),
              rec("tills", "d", phone=PHONE, full_name="CHAN Mei Ling")]
    again = rec("shop", "e", phone=PHONE, first_name="Tai-man", last_name="Chan")
    result = resolve([*family, again])
    assert "+85291234567" in result.shared  # four given names: the phone alone is no evidence
    assert person_of(result, again.ref) == sorted([family[0].ref, again.ref])
    assert rules_of(result) == ["whole name"]
    son = rec("shop", "f", phone=PHONE, first_name="Tai Man", last_name="Chan", birth_date="2001-02-03")
    father = rec("tills", "g", phone=PHONE, full_name="CHAN Tai Man", birth_date="1970-05-06")
    result = resolve([*family[1:], son, father])
    assert person_of(result, son.ref) == [son.ref]
    first_only = rec("sms", "h", phone=PHONE, first_name="Siu Ming")  # no surname: no whole name, a known name
    result = resolve([*family, first_only])
    assert person_of(result, first_only.ref) == sorted([family[2].ref, first_only.ref])
    assert rules_of(result) == ["known name"]


def test_an_email_spelling_the_other_kind_of_name_joins_two_persons_at_one_phone_in_marketing_mode() -> None:
    marketing = MatchSettings(mode="marketing")
    peter = rec("shop", "a", phone=PHONE, email="taimanchan@example.com", first_name="Peter", last_name="Chan")
    taiman = rec("tills", "b", phone=PHONE, full_name="CHAN Tai Man")
    result = resolve([peter, taiman], marketing)
    assert len(result.persons) == 1 and rules_of(result) == ["email name"]
    assert len(resolve([peter, taiman]).persons) == 2  # not in strict mode by default
    assert len(resolve([peter, taiman], MatchSettings(email_names=True)).persons) == 1


def test_an_email_of_a_spouse_or_sibling_does_not_join_two_persons_at_one_phone() -> None:
    marketing = MatchSettings(mode="marketing")
    # the wife shops with her husband's email and phone; he holds the email himself
    wife = rec("shop", "a", phone=PHONE, email="taimanchan@example.com", first_name="Mary", last_name="Chan")
    husband = [rec("tills", "b", phone=PHONE, full_name="CHAN Tai Man"),
               rec("shop", "c", phone=PHONE, email="taimanchan@example.com", first_name="Tai Man", last_name="Chan")]
    assert person_of(resolve([wife, *husband], marketing), wife.ref) == [wife.ref]
    # an English name in the email of a person with an English name: a sibling's email
    calvin = rec("shop", "d", phone=PHONE, email="gary.ma@example.com", first_name="Calvin", last_name="Ma")
    gary = rec("tills", "e", phone=PHONE, full_name="MA Gary")
    assert len(resolve([calvin, gary], marketing).persons) == 2
    # another surname
    janice = rec("shop", "f", phone=PHONE, email="mokwan667@example.com", first_name="Janice", last_name="Yau")
    mokwan = rec("tills", "g", phone=PHONE, full_name="Mo Kwan Yeung")
    assert len(resolve([janice, mokwan], marketing).persons) == 2


def test_a_name_the_person_is_known_by_joins_at_a_phone_the_family_shares_and_the_child_stays_apart() -> None:
    peter = rec("shop", "a", phone=PHONE, email=EMAIL, first_name="Peter", last_name="Chan", birth_date="1984-05-07")
    taiman = rec("tills", "b", email=EMAIL, full_name="CHAN Tai Man", birth_date="07/05/1984")
    child = rec("tills", "c", phone=PHONE, full_name="CHAN Siu Ming")
    erp = rec("erp", "d", phone=PHONE, full_name="Tai Man Chan")
    result = resolve([peter, taiman, child, erp])
    assert "+85291234567" in result.shared  # Peter, Tai Man and Siu Ming at one phone
    assert person_of(result, erp.ref) == sorted([peter.ref, taiman.ref, erp.ref])
    assert person_of(result, child.ref) == [child.ref]
