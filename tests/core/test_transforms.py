"""Built-in transforms and the transform registry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from storesync.core.errors import MappingError, PluginError
from storesync.core.transforms import TransformContext, TransformRegistry, builtin_transforms

CTX = TransformContext(timezone="Asia/Hong_Kong", default_region="HK")
HKT = ZoneInfo("Asia/Hong_Kong")


def build(name: str, ctx: TransformContext = CTX, **params):
    return builtin_transforms().build(name, ctx, params, file="m.toml", key="orders.fields.x.transform")


def rejects(fn, value, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        fn(value)


# -- text ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value", "expected"), [
    ("strip", "  a b \n", "a b"), ("lower", "ABC", "abc"), ("upper", "abc", "ABC"),
    ("title", "chan tai man", "Chan Tai Man"), ("strip", 42, "42"), ("str", 5500000000001, "5500000000001"),
    ("str", "x", "x"),
])
def test_text_transforms(name, value, expected):
    assert build(name)(value) == expected


@pytest.mark.parametrize("name", ["strip", "lower", "upper", "title", "str"])
@pytest.mark.parametrize("value", [{"a": 1}, [1], True])
def test_text_transforms_reject_non_text(name, value):
    rejects(build(name), value, "expected a string")


def test_split_join_concat():
    assert build("split")(" a, b ,,c ,") == ["a", "b", "c"]
    assert build("split", sep="|")("x|y") == ["x", "y"]
    assert build("split")(["a ", "", None, "b"]) == ["a", "b"]
    assert build("split")("") == []
    assert build("join")(["a", "b", None, 3]) == "a,b,3"
    assert build("join", sep=" / ")(["a", "b"]) == "a / b"
    assert build("join")("already") == "already"
    assert build("concat")(["Tai Man", None, "", " Chan "]) == "Tai Man Chan"
    assert build("concat", sep=", ")(["a", "b"]) == "a, b"
    assert build("concat")([None, "", "  "]) is None
    rejects(build("join"), [{"a": 1}], "expected a string")
    rejects(build("split"), {"a": 1}, "expected a string")


# -- numbers ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (5, 5), ("5", 5), (" -7 ", -7), (5.0, 5), ("5.0", 5), (Decimal("3"), 3), (10**20, 10**20)])
def test_int_accepts(value, expected):
    assert build("int")(value) == expected


@pytest.mark.parametrize("value", ["2.5", 2.5, "abc", "", float("nan"), float("inf"), "1e3", [1]])
def test_int_rejects(value):
    rejects(build("int"), value, "not an integer")


@pytest.mark.parametrize("value", [True, False])
def test_int_rejects_bools(value):
    rejects(build("int"), value, "got bool")


@pytest.mark.parametrize(("value", "expected"), [
    ("409.94", Decimal("409.94")), (" 1.50 ", Decimal("1.50")), (3, Decimal(3)), (0.1, Decimal("0.1")),
    (Decimal("2.5"), Decimal("2.5")), ("-0.00", Decimal("-0.00"))])
def test_decimal_accepts(value, expected):
    result = build("decimal")(value)
    assert result == expected and isinstance(result, Decimal) and str(result) == str(expected)


@pytest.mark.parametrize(("value", "match"), [
    ("NaN", "finite"), ("Infinity", "finite"), (float("inf"), "finite"), ("-inf", "finite"),
    ("12,50", "not a decimal"), ("", "not a decimal"), (True, "expected a number"), ({"a": 1}, "expected a number")])
def test_decimal_rejects(value, match):
    rejects(build("decimal"), value, match)


@pytest.mark.parametrize(("currency", "amount", "expected"), [
    ("HKD", 1500, "15.00"), ("JPY", 1500, "1500"), ("KRW", "900", "900"), ("BHD", 1500, "1.500"),
    ("KWD", 1, "0.001"), ("usd", 5, "0.05"), ("EUR", -250, "-2.50")])
def test_money_with_currency_param(currency, amount, expected):
    result = build("money", currency=currency)(amount)
    assert result == Decimal(expected) and str(result) == expected


def test_money_from_price_money_dict():
    money = build("money")
    assert str(money({"amount": 1500, "currency": "HKD"})) == "15.00"
    assert str(money({"amount": 1500, "currency": "JPY"})) == "1500"
    # the dict's currency wins over the param
    assert str(build("money", currency="HKD")({"amount": 1500, "currency": "OMR"})) == "1.500"


def test_money_errors():
    rejects(build("money"), {"amount": 1, "currency": "XYZ"}, "unknown currency 'XYZ'")
    rejects(build("money"), {"amount": 1}, "unknown currency None")
    rejects(build("money"), 1500, "money needs a currency")
    rejects(build("money", currency="HKD"), "15.5", "not an integer")
    with pytest.raises(MappingError, match="unknown currency 'HKX'; did you mean 'HKD'"):
        build("money", currency="HKX")


# -- booleans -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["true", "YES", "y", "T", "1", " True ", 1, True])
def test_bool_true(value):
    assert build("bool")(value) is True


@pytest.mark.parametrize("value", ["false", "No", "n", "f", "0", 0, False])
def test_bool_false(value):
    assert build("bool")(value) is False


@pytest.mark.parametrize("value", ["maybe", "", 2, 1.0, [True]])
def test_bool_rejects(value):
    rejects(build("bool"), value, "not a boolean")


# -- dates and times ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("2024-07-01T10:15:00+08:00", datetime(2024, 7, 1, 10, 15, tzinfo=timezone(timedelta(hours=8)))),
    ("2024-07-01T02:15:00Z", datetime(2024, 7, 1, 2, 15, tzinfo=UTC)),
    ("2024-07-01T02:15:00.123456Z", datetime(2024, 7, 1, 2, 15, 0, 123456, tzinfo=UTC)),
    ("2024-07-01 10:15:00", datetime(2024, 7, 1, 10, 15, tzinfo=HKT)),  # naive: read in ctx.timezone
    (1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    (1700000000.5, datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)),
    (1700000000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),  # > 1e11: millis
    ("1700000000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
])
def test_datetime_parses(value, expected):
    result = build("datetime")(value)
    assert result == expected and result.tzinfo is not None
    assert result.utcoffset() == expected.utcoffset()


def test_datetime_presets_and_formats():
    assert build("datetime", format="odoo")("2024-07-01 02:15:00") == datetime(2024, 7, 1, 2, 15, tzinfo=UTC)
    twilio = build("datetime", format="rfc2822")("Thu, 30 Jul 2015 20:12:31 +0000")
    assert twilio == datetime(2015, 7, 30, 20, 12, 31, tzinfo=UTC)
    custom = build("datetime", format="%d/%m/%Y %H:%M")("01/07/2024 10:15")
    assert custom == datetime(2024, 7, 1, 10, 15, tzinfo=HKT)
    tokyo = build("datetime", tz="Asia/Tokyo")("2024-07-01T10:15:00")
    assert tokyo.utcoffset() == timedelta(hours=9)
    utc = build("datetime", TransformContext())("2024-07-01T10:15:00")
    assert utc.tzinfo is not None and utc.utcoffset() == timedelta(0)
    aware = datetime(2024, 1, 1, tzinfo=UTC)
    assert build("datetime")(aware) is aware
    assert build("datetime")(datetime(2024, 1, 1)).tzinfo is not None


@pytest.mark.parametrize(("params", "value", "match"), [
    ({}, "2024-13-01", r"not a valid ISO 8601 datetime: '2024-13-01'"),
    ({}, "yesterday", "not a valid ISO 8601 datetime"),
    ({}, "", "not a valid ISO 8601 datetime"),
    ({"format": "odoo"}, "2024-07-01T02:15:00", "not a valid datetime in format 'odoo'"),
    ({"format": "rfc2822"}, "not a date", "not a valid datetime in format 'rfc2822'"),
    ({}, 10**30, "out of range"),
    ({}, float("nan"), "NaN"),
    ({}, True, "expected a datetime"),
    ({}, {"a": 1}, "expected a datetime"),
])
def test_datetime_rejects(params, value, match):
    rejects(build("datetime", **params), value, match)


def test_datetime_bad_params():
    with pytest.raises(MappingError, match="unknown timezone 'Asia/HongKong'"):
        build("datetime", tz="Asia/HongKong")
    with pytest.raises(MappingError, match="unknown timezone"):
        build("datetime", TransformContext(timezone="Nowhere/Town"))


def test_date():
    assert build("date")("2024-07-01") == date(2024, 7, 1)
    assert build("date")("2024-07-01T23:30:00+08:00") == date(2024, 7, 1)
    assert build("date", format="%d/%m/%Y")("01/07/2024") == date(2024, 7, 1)
    assert build("date")(datetime(2024, 7, 1, 5)) == date(2024, 7, 1)
    assert build("date")(date(2024, 7, 1)) == date(2024, 7, 1)
    rejects(build("date"), "2024-02-30", "not a valid ISO date: '2024-02-30'")
    rejects(build("date", format="%d/%m/%Y"), "2024-07-01", "not a valid date in format")
    rejects(build("date"), 20240701, "expected a date string")


# -- contact details ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("+852 9123 4567", "+85291234567"), ("9123 4567", "+85291234567"), ("0085291234567", "+85291234567"),
    ("+1 (415) 555-0100", "+14155550100"), (91234567, "+85291234567"), ("+85221234567", "+85221234567")])
def test_phone_e164(value, expected):
    assert build("phone_e164")(value) == expected


def test_phone_region_param_overrides_ctx():
    assert build("phone_e164", region="GB")("020 7946 0018") == "+442079460018"
    assert build("phone_e164", TransformContext(), region="SG")("8123 4567") == "+6581234567"


@pytest.mark.parametrize(("value", "match"), [
    ("12", "not a possible phone number"), ("hello", "not a phone number"), ("", "not a phone number"),
    (True, "expected a phone number"), ([1], "expected a phone number")])
def test_phone_rejects(value, match):
    rejects(build("phone_e164"), value, match)


def test_phone_without_region_needs_plus():
    rejects(build("phone_e164", TransformContext()), "9123 4567", "not a phone number")
    assert build("phone_e164", TransformContext())("+85291234567") == "+85291234567"
    with pytest.raises(MappingError, match="unknown region 'XX'"):
        build("phone_e164", region="XX")


@pytest.mark.parametrize(("value", "expected"), [
    (" Bob.Norman@HostMail.com ", "bob.norman@hostmail.com"), ("a+tag@example.com.hk", "a+tag@example.com.hk"),
    ("Bücher@Example.com", "bücher@example.com")])
def test_email(value, expected):
    assert build("email")(value) == expected


@pytest.mark.parametrize("value", ["x@", "no-at-sign", "a@@b.com", "a b@c.com", ""])
def test_email_rejects(value):
    rejects(build("email"), value, "not a valid email address")


def test_email_rejects_non_strings():
    rejects(build("email"), 42, "expected an email string")


# -- the registry -------------------------------------------------------------------------------------------

def test_builtins_are_registered_with_source_builtin():
    names = builtin_transforms().names()
    for name in ["strip", "lower", "upper", "title", "int", "decimal", "money", "bool", "datetime", "date",
                 "phone_e164", "email", "split", "join", "concat"]:
        assert name in names
    assert names == sorted(names)


def test_unknown_transform_suggests_and_lists():
    with pytest.raises(MappingError) as info:
        build("phone164")
    issue = info.value.issues[0]
    assert (issue.file, issue.key) == ("m.toml", "orders.fields.x.transform")
    assert "unknown transform 'phone164'; did you mean 'phone_e164'? known: bool, concat," in issue.message


def test_unknown_param_suggests_and_lists_accepted():
    with pytest.raises(MappingError, match=r"unknown parameter 'sepp' for transform 'split'; did you mean 'sep'\? "
                                           r"accepted: sep"):
        build("split", sepp=",")
    with pytest.raises(MappingError, match="accepted: none"):
        build("email", strict=True)


def test_bad_param_value_names_transform_and_accepted_params():
    with pytest.raises(MappingError, match="bad parameters for transform 'split': sep must be a non-empty string; "
                                           "accepted: sep"):
        build("split", sep="")


def test_plugin_transform_and_clash():
    registry = builtin_transforms()
    registry.register("reverse", lambda ctx, upper=False: (lambda v: v[::-1].upper() if upper else v[::-1]),
                      source="acme")
    fn = registry.build("reverse", CTX, {"upper": True}, file="f", key="k")
    assert fn("abc") == "CBA"
    with pytest.raises(PluginError, match="transform 'email' from plugin 'acme' clashes with builtin"):
        registry.register("email", lambda ctx: str, source="acme")
    with pytest.raises(PluginError, match="transform 'reverse' from plugin 'other' clashes with plugin 'acme'"):
        registry.registrar("other")("reverse", lambda ctx: str)


def test_factory_taking_kwargs_gets_any_param():
    registry = TransformRegistry()
    registry.register("tag", lambda ctx, **params: (lambda v: (v, params)))
    assert registry.build("tag", CTX, {"a": 1}, file="f", key="k")("x") == ("x", {"a": 1})


def test_register_rejects_bad_contributions():
    with pytest.raises(PluginError):
        TransformRegistry().register("", lambda ctx: str)
    with pytest.raises(PluginError):
        TransformRegistry().register("x", "not callable")  # type: ignore[arg-type]


def test_factory_returning_non_callable_is_a_mapping_error():
    registry = TransformRegistry()
    registry.register("broken", lambda ctx: 42)
    with pytest.raises(MappingError, match="did not build a callable"):
        registry.build("broken", CTX, {}, file="f", key="k")


def test_clash_message_keeps_a_preformatted_plugin_source():
    registry = builtin_transforms()
    with pytest.raises(PluginError, match=r"'email' from plugin 'acme' \(acme-dist\) clashes with builtin"):
        registry.register("email", lambda ctx: str, source="plugin 'acme' (acme-dist)")
