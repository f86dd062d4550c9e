"""Named value transforms usable in TOML mappings, and the registry that holds them.

A transform is registered as a *factory*: ``factory(ctx, **params)`` checks its parameters once, when a
mapping is compiled, and returns a one-argument callable run on the hot path. A transform callable raises
``ValueError`` or ``TypeError`` with a clear message for a bad value; the mapping turns that into a
``RecordMappingError``. Transforms never see ``None`` or ``""``: the compiled mapping passes them through.
Built-ins are registered exactly like plugin transforms (``source="builtin"``).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from .errors import ConfigIssue, MappingError, PluginError, did_you_mean, known

__all__ = ["TransformContext", "TransformFactory", "TransformRegistry", "builtin_transforms"]


@dataclass(frozen=True)
class TransformContext:
    """What transforms may depend on besides their parameters."""

    timezone: str = "UTC"  #: IANA name; naive datetimes are read in it
    default_region: str | None = None  #: phonenumbers default region, e.g. "HK"


TransformFactory = Callable[..., Callable[[Any], Any]]


class TransformRegistry:
    """Transform factories by name, each remembering which plugin (or ``builtin``) registered it."""

    def __init__(self) -> None:
        self._factories: dict[str, tuple[TransformFactory, str]] = {}

    def register(self, name: str, factory: TransformFactory, *, source: str = "plugin") -> None:
        """Add ``factory`` as transform ``name``; a name already taken raises ``PluginError``."""
        if not isinstance(name, str) or not name or not callable(factory):
            raise PluginError(f"transform from {_who(source)} must be registered as (name: str, factory)")
        if name in self._factories:
            other = self._factories[name][1]
            raise PluginError(f"transform '{name}' from {_who(source)} clashes with {_who(other)}")
        self._factories[name] = (factory, source)

    def registrar(self, source: str) -> Callable[[str, TransformFactory], None]:
        """The ``register`` callable handed to ``storesync_register_transforms`` for plugin ``source``."""
        return lambda name, factory: self.register(name, factory, source=source)

    def names(self) -> list[str]:
        """Registered transform names, sorted."""
        return sorted(self._factories)

    def build(self, name: str, ctx: TransformContext, params: dict, *, file: str, key: str) -> Callable[[Any], Any]:
        """Build transform ``name`` with ``params``; unknown names and bad params raise ``MappingError``."""
        if name not in self._factories:
            msg = f"unknown transform '{name}'{did_you_mean(name, self._factories)}{known(self._factories)}"
            raise MappingError([ConfigIssue(file, key, msg)])
        factory = self._factories[name][0]
        accepted = _accepted(factory)
        for param in params:
            if accepted is not None and param not in accepted:
                hint = did_you_mean(param, accepted)
                msg = (f"unknown parameter '{param}' for transform '{name}'{hint}{' ' if hint else '; '}"
                       f"accepted: {', '.join(accepted) or 'none'}")
                raise MappingError([ConfigIssue(file, key, msg)])
        try:
            fn = factory(ctx, **params)
        except (TypeError, ValueError) as exc:
            msg = f"bad parameters for transform '{name}': {exc}; accepted: {', '.join(accepted or ()) or 'none'}"
            raise MappingError([ConfigIssue(file, key, msg)]) from exc
        if not callable(fn):
            raise MappingError([ConfigIssue(file, key, f"transform '{name}' did not build a callable")])
        return fn


def _who(source: str) -> str:
    if source == "builtin" or source.startswith("plugin "):
        return source
    return f"plugin '{source}'"


def _accepted(factory: TransformFactory) -> list[str] | None:
    """The parameter names ``factory`` takes after ``ctx``; ``None`` when it takes ``**kwargs`` or is opaque."""
    try:
        params = list(inspect.signature(factory).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _text(value: Any) -> str:
    """A string, or a number as a string; anything else is a ``TypeError``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__} {_short(value)}")


# -- text -----------------------------------------------------------------------------------------------------

def _str_method(method: Callable[[str], str]) -> TransformFactory:
    def factory(ctx: TransformContext) -> Callable[[Any], str]:
        return lambda value: method(_text(value))
    return factory


def _split(ctx: TransformContext, sep: str = ",") -> Callable[[Any], list[str]]:
    if not isinstance(sep, str) or not sep:
        raise ValueError("sep must be a non-empty string")

    def split(value: Any) -> list[str]:
        items = value if isinstance(value, list) else _text(value).split(sep)
        return [s for s in (_text(i).strip() for i in items if i is not None) if s]
    return split


def _join(ctx: TransformContext, sep: str = ",") -> Callable[[Any], str]:
    if not isinstance(sep, str):
        raise ValueError("sep must be a string")

    def join(value: Any) -> str:
        if not isinstance(value, list):
            return _text(value)
        return sep.join(_text(i) for i in value if i is not None)
    return join


def _concat(ctx: TransformContext, sep: str = " ") -> Callable[[Any], str | None]:
    if not isinstance(sep, str):
        raise ValueError("sep must be a string")

    def concat(value: Any) -> str | None:
        items = value if isinstance(value, list) else [value]
        text = sep.join(s for s in (_text(i).strip() for i in items if i is not None) if s)
        return text or None
    return concat


# -- numbers --------------------------------------------------------------------------------------------------

_INT_TEXT = re.compile(r"\s*[+-]?\d+(?:\.0*)?\s*")


def _integral(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, Decimal):
        return value.is_finite() and value.adjusted() < 40 and value == value.to_integral_value()
    return False


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got bool {value!r}")
    if isinstance(value, int):
        return value
    if _integral(value):
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value.strip().split(".")[0])
    raise ValueError(f"not an integer: {_short(value)}")


def _to_decimal(value: Any) -> Decimal:
    kind = value.__class__
    try:
        if kind is str or kind is int or kind is Decimal:  # Decimal() strips surrounding whitespace itself
            result = Decimal(value)
        elif kind is float:
            result = Decimal(str(value))
        elif isinstance(value, str | int) and not isinstance(value, bool):
            result = Decimal(str(value))
        else:
            raise TypeError(f"expected a number or numeric string, got {type(value).__name__} {_short(value)}")
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {_short(value)}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite decimal number: {_short(value)}")
    return result


#: ISO 4217 minor-unit exponents; currencies not listed are unknown
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
    **dict.fromkeys(
        "AED ARS AUD BDT BGN BRL CAD CHF CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR KES KZT LKR MAD MOP "
        "MXN MYR NGN NOK NZD PEN PHP PKR PLN QAR RON RSD RUB SAR SEK SGD THB TRY TWD UAH USD VES ZAR".split(), 2),
}


def _exponent(currency: Any) -> int:
    if not isinstance(currency, str) or currency.upper() not in CURRENCY_EXPONENTS:
        raise ValueError(f"unknown currency {_short(currency)}{did_you_mean(str(currency), CURRENCY_EXPONENTS)}")
    return CURRENCY_EXPONENTS[currency.upper()]


def _money(ctx: TransformContext, currency: str | None = None) -> Callable[[Any], Decimal]:
    default_exp = None if currency is None else _exponent(currency)

    def money(value: Any) -> Decimal:
        exp = default_exp
        if isinstance(value, dict):
            exp, value = _exponent(value.get("currency")), value.get("amount")
        elif exp is None:
            raise ValueError("money needs a currency: set param currency or pass {amount, currency}")
        return Decimal(_to_int(value)).scaleb(-exp)
    return money


# -- booleans -------------------------------------------------------------------------------------------------

_BOOL_TEXT = {"true": True, "t": True, "yes": True, "y": True, "1": True,
              "false": False, "f": False, "no": False, "n": False, "0": False}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.strip().lower()]
    raise ValueError(f"not a boolean (true/false/yes/no/y/n/t/f/1/0): {_short(value)}")


# -- dates and times ------------------------------------------------------------------------------------------

_PRESETS = {"odoo": "%Y-%m-%d %H:%M:%S", "rfc2822": "rfc2822"}


def _zone(name: Any) -> tzinfo:
    if not isinstance(name, str):
        raise ValueError(f"timezone must be an IANA name like 'Asia/Hong_Kong', got {_short(name)}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}; use an IANA name like 'Asia/Hong_Kong'") from None


def _from_epoch(number: float) -> datetime:
    try:
        return datetime.fromtimestamp(number / 1000 if abs(number) > 1e11 else number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"epoch timestamp out of range: {_short(number)}") from None


def _parse_datetime(value: str, fmt: str | None) -> datetime:
    if fmt == "rfc2822":
        return parsedate_to_datetime(value)
    if fmt is not None:
        return datetime.strptime(value, fmt)
    if value.isdigit():
        return _from_epoch(int(value))
    return datetime.fromisoformat(value)


def _datetime(ctx: TransformContext, format: str | None = None, tz: str | None = None) -> Callable[[Any], datetime]:
    if format is not None and not isinstance(format, str):
        raise ValueError("format must be a strptime format or one of: " + ", ".join(_PRESETS))
    zone = _zone("UTC" if format == "odoo" else tz if tz is not None else ctx.timezone)
    fmt = _PRESETS.get(format, format) if format else None
    what = f"datetime in format {format!r}" if format else "ISO 8601 datetime"

    def to_datetime(value: Any) -> datetime:
        if isinstance(value, datetime):
            result = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if value != value:
                raise ValueError("not a timestamp: NaN")
            result = _from_epoch(value)
        elif isinstance(value, str):
            try:
                result = _parse_datetime(value.strip(), fmt)
            except (ValueError, TypeError, IndexError):
                raise ValueError(f"not a valid {what}: {_short(value)}") from None
        else:
            raise TypeError(f"expected a datetime string or epoch number, got {type(value).__name__}")
        return result if result.tzinfo is not None else result.replace(tzinfo=zone)
    return to_datetime


def _date(ctx: TransformContext, format: str | None = None) -> Callable[[Any], date]:
    if format is not None and not isinstance(format, str):
        raise ValueError("format must be a strptime format string")

    def to_date(value: Any) -> date:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if not isinstance(value, str):
            raise TypeError(f"expected a date string, got {type(value).__name__}")
        text = value.strip()
        try:
            if format:
                return datetime.strptime(text, format).date()
            return date.fromisoformat(text) if len(text) <= 10 else datetime.fromisoformat(text).date()
        except ValueError:
            raise ValueError(f"not a valid {'date in format ' + repr(format) if format else 'ISO date'}: "
                             f"{_short(value)}") from None
    return to_date


# -- contact details ------------------------------------------------------------------------------------------

def _phone_e164(ctx: TransformContext, region: str | None = None) -> Callable[[Any], str]:
    region = region if region is not None else ctx.default_region
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {region!r}; use a two-letter code like 'HK'")

    @functools.lru_cache(maxsize=32768)  # parsing costs ~50us; customers' numbers repeat across records
    def parse(text: str) -> str:
        if text.startswith("00"):
            text = "+" + text[2:]
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"not a phone number: {_short(text)} ({exc})") from None
        if not phonenumbers.is_possible_number(number):
            raise ValueError(f"not a possible phone number: {_short(text)}")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def phone_e164(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise TypeError(f"expected a phone number string, got {type(value).__name__}")
        return parse(value.strip())
    return phone_e164


_EMAIL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


@functools.lru_cache(maxsize=8192)
def _slow_email(text: str) -> str:
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {_short(text)} ({exc})") from None


def _to_email(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected an email string, got {type(value).__name__}")
    text = value.strip().lower()
    return text if _EMAIL.fullmatch(text) else _slow_email(text)


def _simple(fn: Callable[[Any], Any]) -> TransformFactory:
    def factory(ctx: TransformContext) -> Callable[[Any], Any]:
        return fn
    return factory


def builtin_transforms() -> TransformRegistry:
    """A fresh registry holding the built-in transforms."""
    registry = TransformRegistry()
    builtins: dict[str, TransformFactory] = {
        "str": _simple(_text), "strip": _str_method(str.strip), "lower": _str_method(str.lower),
        "upper": _str_method(str.upper), "title": _str_method(str.title),
        "int": _simple(_to_int), "decimal": _simple(_to_decimal), "money": _money, "bool": _simple(_to_bool),
        "datetime": _datetime, "date": _date, "phone_e164": _phone_e164, "email": _simple(_to_email),
        "split": _split, "join": _join, "concat": _concat,
    }
    for name, factory in builtins.items():
        registry.register(name, factory, source="builtin")
    return registry
