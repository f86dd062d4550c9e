"""Deterministic identity links (core/identity_match.py): the same person across systems, never a family."""

from __future__ import annotations

from storesync.core.identity_match import IdentityRecord, MatchSettings, block_keys, resolve


def rec(cid: str, ext: str, **fields) -> IdentityRecord:
    return IdentityRecord(cid, ext, **fields)


def person_of(result, ref) -> list:
    return next(p for p in result.persons if ref in p)


def test_one_shopper_in_four_systems_becomes_one_person_with_explained_links() -> None:
    records = [
        rec("shop", "s1", email="Tai.Man.Chan+hk@gmail.com", first_name="Tai Man", last_name="Chan"),
        rec("tills", "t1", member_id="M001", phone="9123 4567", email="taimanchan@gmail.com",
            first_name="CHAN Tai Man"),
        rec("tills", "t2", member_id="M001", first_name="Tai Man"),  # entered again at another till
        rec("sms", "x1", phone="+852 9123 4567", first_name="Taiman", last_name="Chen"),
    ]
    result = resolve(records)
    assert result.persons == [[("shop", "s1"), ("sms", "x1"), ("tills", "t1"), ("tills", "t2")]]
    assert {(link.rule, link.value) for link in result.links} == {
        ("member_id", "M001"), ("email", "taimanchan@gmail.com"), ("phone+name", "+85291234567 taiman")}


def test_a_family_phone_never_links_different_people() -> None:
    records = [rec("tills", "a", phone="91234567", first_name="Tai Man", last_name="Chan"),
               rec("tills", "b", phone="91234567", first_name="Siu Ming", last_name="Chan"),
               rec("shop", "c", phone="+85291234567", first_name="Tai Man", last_name="Chan")]
    result = resolve(records)
    assert person_of(result, ("tills", "a")) == [("shop", "c"), ("tills", "a")]
    assert person_of(result, ("tills", "b")) == [("tills", "b")]


def test_a_shared_address_is_ignored_as_evidence() -> None:
    office = [rec("shop", str(i), email="orders@company.hk", first_name=name)
              for i, name in enumerate(["Amy", "Ben", "Cathy", "Dan"])]
    result = resolve(office)
    assert len(result.persons) == 4 and not result.links
    assert result.shared["orders@company.hk"] == {"amy", "benjamin", "catherine", "daniel"}


def test_placeholders_are_no_evidence() -> None:
    result = resolve([rec("tills", "a", phone="00000000", first_name="Amy"),
                      rec("tills", "b", phone="00000000", first_name="Amy")])
    assert len(result.persons) == 2


def test_a_link_that_would_grow_a_person_past_the_cap_is_held_for_review() -> None:
    records = [rec("tills", str(i), member_id="M9", first_name="Amy") for i in range(4)]
    result = resolve(records, MatchSettings(max_cluster=3))
    assert sorted(len(p) for p in result.persons) == [1, 3]
    assert len(result.possible) == 1 and result.possible[0].rule == "member_id"


def test_member_ids_of_different_systems_do_not_meet() -> None:
    result = resolve([rec("tills", "a", member_id="100"), rec("erp", "b", member_id="100")])
    assert len(result.persons) == 2


def test_known_persons_stay_whole_and_new_records_join_them() -> None:
    stored = [rec("tills", "a", phone="91234567", first_name="Amy", last_name="Lee"),
              rec("erp", "b", first_name="Amy", last_name="Lee", address="1 Queen's Road")]
    new = rec("shop", "c", phone="+852 9123 4567", first_name="Amy", last_name="Li")
    result = resolve([*stored, new], known={("tills", "a"): "P1", ("erp", "b"): "P1"})
    assert result.persons == [[("erp", "b"), ("shop", "c"), ("tills", "a")]]
    assert [(link.rule, {link.a, link.b}) for link in result.links] == [
        ("phone+name", {("shop", "c"), ("tills", "a")})]


def test_two_known_persons_are_not_relinked_by_rules() -> None:
    a = rec("tills", "a", phone="91234567", first_name="Amy")
    b = rec("shop", "b", phone="91234567", first_name="Amy")
    result = resolve([a, b], known={a.ref: "P1", b.ref: "P2"})
    assert len(result.persons) == 2 and not result.links


def test_must_link_joins_and_cannot_link_refuses_what_rules_would_join() -> None:
    a = rec("tills", "a", email="amy@example.com", first_name="Amy")
    b = rec("shop", "b", email="amy@example.com", first_name="Amy")
    c = rec("sms", "c", first_name="Bob")
    result = resolve([a, b, c], must_link=[(a.ref, c.ref)], cannot_link=[(b.ref, c.ref)])
    assert sorted(result.persons) == sorted([sorted([a.ref, c.ref]), [b.ref]])
    assert [link.rule for link in result.links] == ["manual"]
    assert [(link.rule, {link.a, link.b}) for link in result.possible] == [("email", {a.ref, b.ref})]


def test_a_split_record_leaves_its_known_person() -> None:
    a = rec("tills", "a", first_name="Amy")
    b = rec("shop", "b", first_name="Amy")
    result = resolve([a, b], known={a.ref: "P1", b.ref: "P1"}, cannot_link=[(a.ref, b.ref)])
    assert len(result.persons) == 2


def test_block_keys_put_spellings_of_one_person_together() -> None:
    a = rec("tills", "a", member_id=" M1 ", phone="9123 4567", email="Amy.Lee@gmail.com", first_name="LEE Amy")
    b = rec("shop", "b", phone="+85291234567", email="amylee+x@gmail.com", first_name="Amy", last_name="Li")
    ka, kb = block_keys(a, MatchSettings()), block_keys(b, MatchSettings())
    assert "m:tills:M1" in ka and {"p:+85291234567", "e:amylee@gmail.com"} <= ka & kb


def test_settings_refuse_unknown_keys_and_pick_the_mode_threshold() -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match="max_clustr"):
        MatchSettings.model_validate({"mode": "strict", "max_clustr": 3})
    assert MatchSettings(mode="marketing").auto_threshold < MatchSettings().auto_threshold


def test_no_records_records_without_evidence_and_a_ref_given_twice() -> None:
    import pytest

    assert resolve([]).persons == []
    assert resolve([rec("a", "1"), rec("a", "2")]).persons == [[("a", "1")], [("a", "2")]]
    assert block_keys(rec("a", "1")) == set()
    with pytest.raises(ValueError, match="a:1 is given twice"):
        resolve([rec("a", "1", email="x@y.com"), rec("a", "1")])


def test_resolve_leaves_the_cycle_collector_as_it_found_it() -> None:
    import gc

    records = [IdentityRecord("shop", "a", phone="9123 4567", first_name="Tai Man", last_name="Chan"),
               IdentityRecord("tills", "b", phone="91234567", full_name="CHAN Tai Man")]
    assert gc.isenabled()
    assert len(resolve(records).persons) == 1 and gc.isenabled()
    gc.disable()
    try:
        resolve(records)
        assert not gc.isenabled()
    finally:
        gc.enable()
