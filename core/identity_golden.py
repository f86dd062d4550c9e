"""Golden records: one value per field for a person, chosen among its source records by survivorship rules.

Strategies (``[identity.survivorship]``, see ``identity_config.py``), each over the records that have a value:

- ``most_recent``: the record updated last (``updated_at``; a record without one counts as oldest);
- ``most_complete``: the record with the most golden fields filled (the best-kept record), then the most recent;
- ``source_priority``: the record of the first connector in the list, then the most recent; connectors not in
  the list come last;
- ``most_restrictive`` (consent fields only, their default): an opt-out on any record wins; otherwise ``true``
  only if a record holding the golden contact (same phone for ``sms_consent``, same email for ``email_consent``)
  says ``true``; otherwise unknown. So one record's consent never lends itself to another record's number.

``choose`` also returns, per field, the record it came from, so ``identities explain`` can say where each golden
value came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .identity_config import CONSENT_FIELDS, GOLDEN_FIELDS, FieldRule, SurvivorshipSettings

__all__ = ["CONTACT_OF", "Golden", "SourceRecord", "choose"]

#: consent field -> the contact field it is about
CONTACT_OF = {"sms_consent": "phone", "email_consent": "email"}
_INDEX = {name: i for i, name in enumerate(GOLDEN_FIELDS)}
_OLDEST = datetime.min.replace(tzinfo=UTC)


class SourceRecord(NamedTuple):
    """One source customer as survivorship sees it: ``values`` follow ``GOLDEN_FIELDS`` order.

    A named tuple: a million of them are built per full resolve, and a tuple is built in C.
    """

    record_id: int
    connector_id: str
    updated_at: datetime | None  # aware
    values: tuple[Any, ...]

    def get(self, name: str) -> Any:
        return self.values[_INDEX[name]]

    @property
    def filled(self) -> int:
        return sum(v is not None and v != "" for v in self.values)


@dataclass(frozen=True, slots=True)
class Golden:
    """A person's golden ``values`` (field -> value) and ``origin`` (field -> record id it came from, or None)."""

    values: dict[str, Any]
    origin: dict[str, int | None]


def choose(records: Sequence[SourceRecord], rules: SurvivorshipSettings) -> Golden:
    """The golden record of one person's ``records``."""
    if len(records) == 1:  # the common case: nothing to choose, consent stays with its own record
        (only,) = records
        return Golden(dict(zip(GOLDEN_FIELDS, only.values)),
                      {f: only.record_id if v is not None else None for f, v in zip(GOLDEN_FIELDS, only.values)})
    plan = _plan(rules)
    ranked = {order: sorted(records, key=key, reverse=True) for order, key in plan.orders.items()}
    values: dict[str, Any] = {}
    origin: dict[str, int | None] = {}
    for name, index, order in plan.fields:
        values[name], origin[name] = _first_filled(ranked[order], index)
    for name, index, order in plan.consent:
        if order is None:
            values[name], origin[name] = _most_restrictive(records, index, _INDEX[CONTACT_OF[name]],
                                                           values[CONTACT_OF[name]])
        else:
            values[name], origin[name] = _first_filled(ranked[order], index)
    return Golden(values, origin)


def _first_filled(ranked: list[SourceRecord], index: int) -> tuple[Any, int | None]:
    for r in ranked:
        value = r.values[index]
        if value is not None and value != "":
            return value, r.record_id
    return None, None


class _Plan:
    """A survivorship configuration compiled once: per field its position and the record order it reads in.

    An order is a sort key over records (best first after a reverse sort); fields sharing a strategy share
    one sort per person.
    """

    def __init__(self, rules: SurvivorshipSettings) -> None:
        self.orders: dict[tuple[str, tuple[str, ...]], Any] = {}
        self.fields: list[tuple[str, int, tuple[str, tuple[str, ...]]]] = []
        self.consent: list[tuple[str, int, tuple[str, tuple[str, ...]] | None]] = []
        for name in GOLDEN_FIELDS:
            rule = rules.rule_for(name)
            order = None if rule.strategy == "most_restrictive" else self._order(rule)
            (self.consent if name in CONSENT_FIELDS else self.fields).append((name, _INDEX[name], order))

    def _order(self, rule: FieldRule) -> tuple[str, tuple[str, ...]]:
        key = (rule.strategy, tuple(rule.sources or ()) if rule.strategy == "source_priority" else ())
        if key not in self.orders:
            self.orders[key] = _sort_key(*key)
        return key


def _sort_key(strategy: str, sources: tuple[str, ...]) -> Any:
    if strategy == "most_complete":
        return lambda r: (r.filled, r.updated_at or _OLDEST, r.record_id)
    if strategy == "source_priority":
        rank = {cid: len(sources) - i for i, cid in enumerate(sources)}  # unlisted connectors rank 0 (last)
        return lambda r: (rank.get(r.connector_id, 0), r.updated_at or _OLDEST, r.record_id)
    return lambda r: (r.updated_at or _OLDEST, r.record_id)  # most_recent; among equals the later-stored row


_PLANS: dict[int, tuple[SurvivorshipSettings, _Plan]] = {}


def _plan(rules: SurvivorshipSettings) -> _Plan:
    """The compiled plan of ``rules`` (kept per settings object; the object is held so its id stays unique)."""
    cached = _PLANS.get(id(rules))
    if cached is None or cached[0] is not rules:
        cached = _PLANS[id(rules)] = (rules, _Plan(rules))
    return cached[1]


def _most_restrictive(records: Sequence[SourceRecord], index: int, holder: int,
                      contact: Any) -> tuple[bool | None, int | None]:
    """Opt-out anywhere wins; ``true`` only from a record holding the golden contact; else unknown."""
    for r in records:
        if r.values[index] is False:
            return False, r.record_id
    for r in records:
        if r.values[index] is True and r.values[holder] == contact:
            return True, r.record_id
    return None, None
