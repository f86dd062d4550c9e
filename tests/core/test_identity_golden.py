"""Golden-record survivorship (core/identity_golden.py) and the [identity] settings (core/identity_config.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from storesync.core.config import load_config
from storesync.core.identity_config import GOLDEN_FIELDS, IdentitySettings, SurvivorshipSettings, identity_issues
from storesync.core.identity_golden import SourceRecord, choose


def rec(record_id: int, connector: str, day: int | None, **values: object) -> SourceRecord:
    updated = datetime(2026, 1, day, tzinfo=UTC) if day else None
    return SourceRecord(record_id, connector, updated, tuple(values.get(f) for f in GOLDEN_FIELDS))


def rules(**data: object) -> SurvivorshipSettings:
    return SurvivorshipSettings.model_validate(data)


def test_most_recent_takes_each_field_from_the_latest_record_that_has_it() -> None:
    old = rec(1, "erp", 1, first_name="Tai Man", email="old@example.com", city="Kowloon")
    new = rec(2, "shop", 5, first_name="Tommy", email=None, city="")
    golden = choose([old, new], rules())
    assert golden.values["first_name"] == "Tommy"
    assert golden.values["email"] == "old@example.com"  # the newer record has none: the older one's survives
    assert golden.values["city"] == "Kowloon"  # an empty string is no value
    assert golden.origin == {**golden.origin, "first_name": 2, "email": 1, "city": 1}


def test_a_record_without_updated_at_counts_as_oldest() -> None:
    undated = rec(9, "tills", None, last_name="CHAN")
    dated = rec(1, "shop", 2, last_name="Chan")
    assert choose([undated, dated], rules()).values["last_name"] == "Chan"


def test_source_priority_prefers_the_listed_order_then_recency() -> None:
    shop = rec(1, "shop", 9, phone="+85291234567")
    till_old = rec(2, "tills", 1, phone="+85261111111")
    till_new = rec(3, "tills", 3, phone="+85262222222")
    other = rec(4, "sms", 10, phone="+85263333333")
    settings = rules(default="source_priority", sources=["tills", "shop"])
    assert choose([shop, till_old, till_new, other], settings).values["phone"] == "+85262222222"
    # a connector not in the list only counts when no listed one has the field
    assert choose([other, rec(5, "shop", 1)], settings).values["phone"] == "+85263333333"


def test_per_field_rule_overrides_the_default() -> None:
    erp = rec(1, "erp", 1, address_line1="1 Queen's Road", first_name="Tai Man")
    shop = rec(2, "shop", 5, address_line1="Flat 3", first_name="Tommy")
    settings = rules(fields={"address_line1": {"strategy": "source_priority", "sources": ["erp"]}})
    golden = choose([erp, shop], settings)
    assert golden.values["address_line1"] == "1 Queen's Road"
    assert golden.values["first_name"] == "Tommy"  # still most_recent


def test_most_complete_takes_the_best_kept_record() -> None:
    sparse = rec(1, "sms", 9, first_name="T", phone="+85291234567")
    full = rec(2, "erp", 1, first_name="Tai Man", last_name="Chan", city="Kowloon", phone="+85291234567")
    assert choose([sparse, full], rules(default="most_complete")).values["first_name"] == "Tai Man"


def test_an_opt_out_anywhere_in_the_person_wins_by_default() -> None:
    yes = rec(1, "shop", 9, phone="+85291234567", sms_consent=True)
    no = rec(2, "tills", 1, phone="+85291234567", sms_consent=False)
    golden = choose([yes, no], rules())
    assert golden.values["sms_consent"] is False
    assert golden.origin["sms_consent"] == 2


def test_consent_is_not_lent_to_another_records_contact() -> None:
    # the newer record gives the golden phone but no consent; the older record consented for ITS number
    consented = rec(1, "shop", 1, phone="+85261111111", sms_consent=True, email="a@example.com")
    newer = rec(2, "tills", 9, phone="+85292222222", email="a@example.com", email_consent=True)
    golden = choose([consented, newer], rules())
    assert golden.values["phone"] == "+85292222222"
    assert golden.values["sms_consent"] is None
    assert golden.values["email_consent"] is True  # same address: the consent is about this contact
    # once the consenting record holds the golden number, its consent applies
    same_number = rec(3, "tills", 9, phone="+85261111111")
    assert choose([consented, same_number], rules()).values["sms_consent"] is True


def test_an_explicit_rule_lets_the_newest_consent_decide() -> None:
    opted_out = rec(1, "tills", 1, phone="+85291234567", sms_consent=False)
    opted_in_again = rec(2, "shop", 5, phone="+85291234567", sms_consent=True)
    assert choose([opted_out, opted_in_again], rules()).values["sms_consent"] is False
    explicit = rules(fields={"sms_consent": "most_recent"})
    assert choose([opted_out, opted_in_again], explicit).values["sms_consent"] is True


def test_a_single_record_keeps_its_own_values() -> None:
    only = rec(7, "shop", 1, first_name="Mei", sms_consent=True, email_consent=False)
    golden = choose([only], rules())
    assert golden.values["sms_consent"] is True and golden.values["email_consent"] is False
    assert golden.origin["first_name"] == 7 and golden.origin["city"] is None


@pytest.mark.parametrize(("data", "message"), [
    ({"fields": {"emial": "most_recent"}}, "did you mean 'email'"),
    ({"fields": {"phone": "most_restrictive"}}, "consent fields only"),
    ({"fields": {"phone": "source_priority"}}, "needs a list of connector ids"),
    ({"default": "source_priority"}, "needs sources"),
    ({"default": "newest"}, "most_recent"),
])
def test_bad_survivorship_settings_say_what_is_wrong(data: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SurvivorshipSettings.model_validate(data)


def test_identity_issues_name_the_key_and_unknown_connectors(tmp_path: Path) -> None:
    path = tmp_path / "plugins.toml"
    path.write_text('[connectors.shop]\ntype = "shopify"\n\n[identity]\nmode = "loose"\n', encoding="utf-8")
    issues = identity_issues(load_config(path))
    assert [i.key for i in issues] == ["identity.mode"]
    path.write_text('[connectors.shop]\ntype = "shopify"\n\n[identity.survivorship]\nsources = ["shp"]\n'
                    '[identity.match]\nmax_clustr = 3\n', encoding="utf-8")
    issues = identity_issues(load_config(path))
    keys = {i.key: i.message for i in issues}
    assert "did you mean 'shop'" in keys["identity.survivorship.sources[0]"]
    assert any(k.startswith("identity.match") and "max_clustr" in k for k in keys), keys
    path.write_text('[connectors.shop]\ntype = "shopify"\n\n[identity.match]\nown_phone_sources = ["shop", "smss"]\n',
                    encoding="utf-8")
    issues = identity_issues(load_config(path))
    assert [i.key for i in issues] == ["identity.match.own_phone_sources[1]"], issues


def test_mode_reaches_the_matcher_settings() -> None:
    settings = IdentitySettings.model_validate({"mode": "marketing", "match": {"max_cluster": 9}})
    match = settings.match_settings()
    assert match.mode == "marketing" and match.max_cluster == 9
