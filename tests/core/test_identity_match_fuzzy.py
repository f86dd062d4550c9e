"""Fuzzy identity evidence (core/identity_match.py with identity_score/blocking/features): scored links between
records that share no identifier, and the guards that keep families and twins apart."""

from __future__ import annotations

import random

import pytest

from storesync.core.identity_match import IdentityRecord, MatchSettings, block_keys, resolve

SYLLABLES = ["Ka", "Yan", "Wai", "Ming", "Hoi", "Chi", "Wing", "Kin", "Mei", "Ling", "Suet", "Lok", "Hei", "Tsz",
             "Ching", "Yuk", "Wah", "Kei", "Pui", "Shan", "Chun", "Fung", "Lai", "Nga", "Ying", "Tin", "Hin", "Sau"]
SURNAMES = ["Chan", "Wong", "Lee", "Cheung", "Lau", "Ng", "Ho", "Leung", "Lam", "Chow", "Tsang", "Yeung", "Tse"]


def background(n: int = 3000, seed: int = 7) -> list[IdentityRecord]:
    """Other customers, so names and birthdays are as common as in a real shop (one record each)."""
    rnd = random.Random(seed)
    out = []
    for k in range(n):
        given = " ".join(rnd.sample(SYLLABLES, 2))
        out.append(IdentityRecord(
            "erp", f"bg{k}", first_name=given, last_name=rnd.choice(SURNAMES),
            birth_date=f"{rnd.randrange(1, 28)}/{rnd.randrange(1, 13)}/{rnd.randrange(1950, 2005)}",
            address=f"Flat {rnd.choice('ABCDEFGH')}, {rnd.randrange(1, 40)}/F, Block {k % 7}, Estate {k}",
            phone=f"6{rnd.randrange(10**7):07d}"))
    return out


def person_of(result, ref) -> list:
    return next(p for p in result.persons if ref in p)


SHOP = IdentityRecord("shop", "s1", email="peter@example.com", first_name="Tai-man", last_name="Chan",
                      address="Flat B, 12/F, Block 3, Taikoo Shing, 22 Taikoo Shing Road", birth_date="1984-05-07")
ERP = IdentityRecord("erp", "e1", full_name="CHAN Tai Man", address="Flat B 12/F Blk 3 Taikoo Shing 22 Taikoo Shing Rd",
                     birth_date="07/05/1984")


def test_a_record_sharing_no_identifier_is_linked_by_name_address_and_birth_date_with_evidence() -> None:
    result = resolve([*background(), SHOP, ERP])
    assert person_of(result, SHOP.ref) == [ERP.ref, SHOP.ref]
    link = next(link for link in result.links if {link.a, link.b} == {SHOP.ref, ERP.ref})
    assert link.rule == "fuzzy" and link.score >= MatchSettings().strict_threshold
    assert "same first name taiman" in link.evidence and "same birth date 1984-05-07" in link.evidence
    assert "same address flat b 12 f blk 3 taikoo shing 22 taikoo shing rd" in link.evidence  # Block/Blk, Road/Rd


def test_swapped_first_and_last_name_still_match() -> None:
    swapped = IdentityRecord("erp", "e2", first_name="Chan", last_name="Tai Man", address=ERP.address,
                             birth_date="1984-05-07")
    result = resolve([*background(), SHOP, swapped])
    assert person_of(result, SHOP.ref) == [swapped.ref, SHOP.ref]


@pytest.mark.parametrize("mode", ["strict", "marketing"])
def test_twins_and_a_parent_sharing_phone_and_address_stay_apart_in_strict_mode(mode: str) -> None:
    home = dict(address="Flat C, 3/F, Block 1, Kornhill, 1 Kornhill Road", phone="9123 4567", last_name="Wong")
    twins = [IdentityRecord("till", "t1", first_name="Ka Yan", birth_date="2001-02-03", **home),
             IdentityRecord("shop", "t2", first_name="Ka Yee", birth_date="2001-02-03", **home)]
    mother = IdentityRecord("erp", "m", first_name="Mei Ling", birth_date="1970-08-09", **home)
    result = resolve([*background(), *twins, mother], MatchSettings(mode=mode))
    assert len(person_of(result, mother.ref)) == 1
    if mode == "strict":
        assert len(person_of(result, twins[0].ref)) == 1


def test_two_persons_are_not_chained_through_one_weak_link() -> None:
    a1 = IdentityRecord("till", "a1", member_id="M1", first_name="Siu Ming", last_name="Lam")
    a2 = IdentityRecord("till", "a2", member_id="M1")
    b1 = IdentityRecord("shop", "b1", email="sm.lam@example.com", first_name="Siu Ming", last_name="Lam")
    b2 = IdentityRecord("shop", "b2", email="sm.lam@example.com")
    single = IdentityRecord("sms", "c1", first_name="Siu Ming", last_name="Lam", phone="6000 1234")
    # a1-b1 is the only pair between the two persons, and a weak one (a name alone)
    settings = MatchSettings(mode="marketing", marketing_threshold=0.6)
    result = resolve([*background(), a1, a2, b1, b2], settings)
    assert person_of(result, a1.ref) == [a1.ref, a2.ref]
    assert person_of(result, b1.ref) == [b1.ref, b2.ref]
    assert any({p.a, p.b} == {a1.ref, b1.ref} for p in result.possible)
    # the same weak link may bring a single record into a person
    assert single.ref in person_of(resolve([*background(), a1, a2, single], settings), a1.ref)


def test_a_new_record_resolved_incrementally_lands_where_a_full_run_puts_it() -> None:
    records = [*background(), SHOP]
    full = resolve([*records, ERP])
    stored = resolve(records)
    known = {ref: f"P{k}" for k, person in enumerate(stored.persons) for ref in person}
    keys = block_keys(ERP)
    candidates = [r for r in records if block_keys(r) & keys]
    incremental = resolve([*candidates, ERP], known={r.ref: known[r.ref] for r in candidates},
                          population=len(records) + 1)
    assert person_of(incremental, ERP.ref) == person_of(full, ERP.ref) == [ERP.ref, SHOP.ref]
    assert len(candidates) < 50


def test_a_placeholder_address_and_a_shared_phone_are_no_evidence() -> None:
    shared = [IdentityRecord("till", f"w{k}", phone="2891 2345", first_name=name, last_name="Chan")
              for k, name in enumerate(["Ka Yan", "Wai Ming", "Hoi Chi", "Mei Ling"])]
    result = resolve([*background(), *shared])
    assert all(len(person_of(result, r.ref)) == 1 for r in shared)
    assert result.shared["+85228912345"] == {"kayan", "waiming", "hoichi", "meiling"}
