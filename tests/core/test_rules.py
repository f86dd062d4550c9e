"""[notifications] rules: validation with file/key errors, language choice, quiet hours, rendering."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from storesync.core.config import load_config
from storesync.core.errors import ConfigError
from storesync.core.rules import load_rules, notification_issues, pick_language, quiet_until, render

GOOD = '''
[notifications]
default_language = "en"
quiet_hours = ["21:00", "09:00"]
[notifications.rules.order_confirmation]
event = "order.created"
templates.en = "Hi {first_name}, order {order_number} ({currency} {total}) is confirmed."
templates.zh-HK = "{customer_name}你好，已收到你的訂單 {order_number}。"
[notifications.rules.restock]
event = "stock.back_in_stock"
purpose = "marketing"
templates.en = "{sku_title} is back at {location}. Reply STOP to opt out."
'''


def config(tmp_path: Path, text: str):
    path = tmp_path / "plugins.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_a_good_configuration(tmp_path: Path) -> None:
    settings = load_rules(config(tmp_path, GOOD))
    assert set(settings.rules) == {"order_confirmation", "restock"}
    assert settings.rules["restock"].purpose == "marketing"
    assert settings.max_age_hours == 72 and settings.quiet_hours == ("21:00", "09:00")


def test_a_misspelt_placeholder_names_file_key_and_known_fields(tmp_path: Path) -> None:
    cfg = config(tmp_path, GOOD.replace("{order_number} ({currency}", "{ordr_number} ({currency}"))
    (issue,) = notification_issues(cfg)
    text = str(issue)
    assert text.startswith(f"{tmp_path / 'plugins.toml'}: notifications.rules.order_confirmation.templates.en:")
    assert "unknown placeholder {ordr_number}" in text and "did you mean 'order_number'" in text
    assert "customer_name" in text  # the fields this event has are listed
    with pytest.raises(ConfigError):
        load_rules(cfg)


@pytest.mark.parametrize(("change", "key", "message"), [
    (('event = "order.created"', 'event = "order.create"'), "order_confirmation.event", "unknown event type"),
    (("{first_name}", "{first_name"), "order_confirmation.templates.en", "bad template"),
    (("{first_name}", "{first_name!r}"), "order_confirmation.templates.en", "no format spec"),
    (('purpose = "marketing"', 'purpose = "promo"'), "rules.restock.purpose", "'transactional' or 'marketing'"),
    (('["21:00", "09:00"]', '["9pm", "09:00"]'), "notifications.quiet_hours", "HH:MM"),
    (('default_language = "en"', 'default_langauge = "en"'), "notifications.default_langauge", "did you mean"),
    ((" Reply STOP to opt out.", ""), "rules.restock.templates.en", "must tell how to opt out"),
])
def test_each_mistake_is_reported_where_it_is(tmp_path: Path, change, key: str, message: str) -> None:
    issues = notification_issues(config(tmp_path, GOOD.replace(*change)))
    assert any(key in i.key and message in i.message for i in issues), [str(i) for i in issues]


def test_unknown_sending_connector(tmp_path: Path) -> None:
    text = GOOD.replace("[notifications]\n", '[notifications]\nconnector = "smss"\n')
    issues = notification_issues(config(tmp_path, text))
    assert [i.key for i in issues] == ["notifications.connector"]


@pytest.mark.parametrize(("wanted", "expected"), [
    ("zh-HK", "zh-HK"), ("zh_hk", "zh-HK"), ("zh-Hant", "zh-HK"), ("zh", "zh-HK"), ("en-GB", "en"),
    ("fr", "en"), (None, "en"),
])
def test_language_choice(wanted: str | None, expected: str) -> None:
    assert pick_language({"en": "a", "zh-HK": "b"}, wanted, "en") == expected
    assert pick_language({"zh-HK": "b", "ja": "c"}, "fr", "en") == "zh-HK"  # no default template: the first


def test_quiet_hours_in_the_merchants_timezone() -> None:
    hours = ("21:00", "09:00")
    late = datetime(2025, 6, 1, 14, 30, tzinfo=UTC)  # 22:30 in Hong Kong
    assert quiet_until(late, hours, "Asia/Hong_Kong") == datetime(2025, 6, 2, 1, 0, tzinfo=UTC)  # 09:00 HKT
    early = datetime(2025, 6, 1, 23, 0, tzinfo=UTC)  # 07:00 HKT the next day
    assert quiet_until(early, hours, "Asia/Hong_Kong") == datetime(2025, 6, 2, 1, 0, tzinfo=UTC)
    noon = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
    assert quiet_until(noon, hours, "Asia/Hong_Kong") is None
    assert quiet_until(noon, ("12:00", "13:00"), "Asia/Hong_Kong") is not None  # a window within one day
    assert quiet_until(late, None, "Asia/Hong_Kong") is None


def test_render_leaves_missing_fields_empty() -> None:
    assert render("Hi {first_name}, order {order_number}", {"first_name": None, "order_number": "#7"}) == \
        "Hi , order #7"
    assert render("{customer_name}你好", {}) == "你好"
