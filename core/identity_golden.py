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
from typing import Any

from .identity_config import CONSENT_FIELDS, GOLDEN_FIELDS, FieldRule, SurvivorshipSettings

__all__ = ["CONTACT_OF", "Golden", "SourceRecord", "choose"]

#: consent field -> the contact field it is about
CONTACT_OF = {"sms_consent": "phone", "email_consent": "email"}
_INDEX = {name: i for i, name in enumerate(GOLDEN_FIELDS)}
_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One source customer as survivorship sees it: ``values`` follow ``GOLDEN_FIELDS`` order."""

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
    values: dict[str, Any] = {}
    origin: dict[str, int | None] = {}
    for name in GOLDEN_FIELDS:
        if name in CONSENT_FIELDS:
            continue
        pick = _pick(records, name, rules.rule_for(name))
        values[name], origin[name] = (pick.get(name), pick.record_id) if pick else (None, None)
    for name in CONSENT_FIELDS:
        rule = rules.rule_for(name)
        if rule.strategy == "most_restrictive":
            values[name], origin[name] = _most_restrictive(records, name, values[CONTACT_OF[name]])
        else:
            pick = _pick(records, name, rule)
            values[name], origin[name] = (pick.get(name), pick.record_id) if pick else (None, None)
    return Golden(values, origin)


def _pick(records: Sequence[SourceRecord], name: str, rule: FieldRule) -> SourceRecord | None:
    having = [r for r in records if r.get(name) is not None and r.get(name) != ""]
    if not having:
        return None
    if rule.strategy == "most_complete":
        return max(having, key=lambda r: (r.filled, *_recency(r)))
    if rule.strategy == "source_priority":
        order = {cid: i for i, cid in enumerate(rule.sources or [])}
        best = min(order.get(r.connector_id, len(order)) for r in having)
        having = [r for r in having if order.get(r.connector_id, len(order)) == best]
    return max(having, key=_recency)


def _recency(record: SourceRecord) -> tuple[datetime, int]:
    """Later ``updated_at`` first; among equals the record stored later (a higher row id)."""
    return (record.updated_at or _OLDEST, record.record_id)


def _most_restrictive(records: Sequence[SourceRecord], name: str, contact: Any) -> tuple[bool | None, int | None]:
    """Opt-out anywhere wins; ``true`` only from a record holding the golden contact; else unknown."""
    for r in records:
        if r.get(name) is False:
            return False, r.record_id
    holder = CONTACT_OF[name]
    for r in records:
        if r.get(name) is True and r.get(holder) == contact:
            return True, r.record_id
    return None, None
