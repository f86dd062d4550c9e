"""Why records are one person, in words a store manager understands (``identities explain`` and ``review``).

Each record is named by what it is in its system ("the Shopify customer 123", "the till customer 0042", "the ERP
contact 7", or "the ``files`` connector's customer" as "the tills record 0042"), and each link by what the
records share ("share the phone +852 9123 4567 and the first name Tai Man"). Values shown are the records' own
(as stored), not the matcher's folded keys.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
import sqlalchemy as sa

from . import identity_store as db
from .identity_config import CONSENT_FIELDS, GOLDEN_FIELDS, IdentitySettings
from .identity_golden import choose
from .identity_store import load_customers

__all__ = ["explain_person", "possible_links", "pretty_phone"]

#: connector type -> what one of its customer records is called
_KINDS = {"shopify": "Shopify customer", "square": "till customer", "odoo": "ERP contact", "twilio": "SMS contact"}
_LABELS = {"first_name": "first name", "last_name": "last name", "email": "email", "phone": "phone",
           "member_id": "member number", "birth_date": "birth date", "language": "language",
           "address_line1": "address", "city": "city", "postal_code": "postal code", "country_code": "country",
           "sms_consent": "SMS marketing", "email_consent": "email marketing"}


def pretty_phone(phone: str | None) -> str:
    """``+85291234567`` -> ``+852 9123 4567`` (as given when it cannot be parsed)."""
    if not phone:
        return ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(phone, None),
                                          phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return phone


class _Namer:
    """Names records by their connector's type, from plugins.toml."""

    def __init__(self, connector_types: dict[str, str]) -> None:
        self.types = connector_types

    def __call__(self, connector_id: str, external_id: str) -> str:
        kind = _KINDS.get(self.types.get(connector_id, ""))
        return f"the {kind} {external_id}" if kind else f"the {connector_id} record {external_id}"


def explain_person(store: Any, settings: IdentitySettings, connector_types: dict[str, str],
                   person_id: int) -> dict[str, Any]:
    """Everything behind one person, as plain data plus ``sentences`` in words."""
    name = _Namer(connector_types)
    found = db.members(store, person_ids=[person_id])
    customers = load_customers(store, [m.record_id for m in found])
    by_id = {m.record_id: m for m in found}
    values = {m.record_id: customers.sources[m.ref] for m in found if m.ref in customers.sources}
    records = [{"record": f"{m.connector_id}:{m.external_id}", "connector_id": m.connector_id, "stream": m.stream,
                "external_id": m.external_id, "rule": m.rule, "name": name(m.connector_id, m.external_id),
                **({f: values[m.record_id].get(f) for f in GOLDEN_FIELDS} if m.record_id in values else {})}
               for m in found]
    links = _links(store, person_id, name)
    golden = choose(list(values.values()), settings.survivorship) if values else None
    origin = {f: _ref_of(by_id.get(rid)) for f, rid in golden.origin.items()} if golden else {}
    data = {"person_id": person_id, "records": records, "links": [x for x in links if x["kind"] == "auto"],
            "undone": [x for x in links if x["kind"] == "undone"],
            "possible": [x for x in links if x["kind"] == "possible"],
            "golden": golden.values if golden else {}, "golden_from": origin,
            "overrides": [_override(o) for o in db.override_rows(store, {m.ref for m in found})]}
    data["sentences"] = _sentences(data, name)
    return data


def _ref_of(member: Any) -> str | None:
    return f"{member.connector_id}:{member.external_id}" if member is not None else None


def _links(store: Any, person_id: int, name: _Namer) -> list[dict[str, Any]]:
    link = db.LINK.c
    a, b = db.MEMBER.alias("a"), db.MEMBER.alias("b")
    query = (sa.select(link.kind, link.rule, link.value, link.score, link.evidence, link.person_id,
                       link.other_person_id, a.c.connector_id, a.c.external_id, b.c.connector_id, b.c.external_id,
                       link.a_record, link.b_record)
             .join(a, a.c.record_id == link.a_record).join(b, b.c.record_id == link.b_record)
             .where(sa.or_(link.person_id == person_id, link.other_person_id == person_id)).order_by(link.id))
    with store.read() as conn:
        rows = conn.execute(query).all()
        records = {r for row in rows for r in row[-2:]}
    customers = load_customers(store, records)
    out = []
    for kind, rule, value, score, evidence, pa, pb, ac, ae, bc, be, _ra, _rb in rows:
        shared = _shared(rule, value, customers.sources.get((ac, ae)), customers.sources.get((bc, be)), evidence,
                         score)
        out.append({"kind": kind, "rule": rule, "value": value, "score": score, "evidence": evidence or [],
                    "a": f"{ac}:{ae}", "b": f"{bc}:{be}", "person_a": pa, "person_b": pb,
                    "sentence": f"{name(ac, ae)} and {name(bc, be)} {shared}"})
    return out


def _shared(rule: str, value: str, a: Any, b: Any, evidence: list[str] | None, score: float = 1.0) -> str:
    """What two records have in common, by the rule that linked them."""
    def field(name: str) -> Any:
        return (a.get(name) if a is not None else None) or (b.get(name) if b is not None else None)

    if rule == "member_id":
        return f"have the same member number {field('member_id') or value}"
    if rule == "national_id":
        return f"have the same ID number (ending {str(value)[-4:]})"
    if rule == "email":
        return f"share the email address {field('email') or value}"
    if rule == "phone+name":
        return f"share the phone {pretty_phone(field('phone'))} and the first name {field('first_name')}"
    if rule in _BRIDGE_WORDS:
        return _bridged(rule, value, a or {}, b or {})
    if rule == "manual":
        return f"were merged by hand ({value})"
    if a is None or b is None:  # a record changed or went since: the matcher's own words
        return f"looked like the same person ({'; '.join(evidence or []) or value})"
    return _alike(a, b, score)


_BRIDGE_WORDS = {
    "similar name": "and first names one slip apart ({a} / {b}: a typo or another romanisation)",
    "birth date": "the surname and the birth date{dob} (first names {a} / {b}: one person known by two names)",
    "known name": "and the first name {name}, one this person is already known by from another record",
    "phone owner": "(one of them has no name; no other person's record carries this number)",
    "own phone": "which both systems hold as the customer's own number (first names {a} / {b})",
    "email name": "and one's email spells the other's first name ({a} / {b}: one person known by two names)",
    "whole name": "and the same first name and surname ({a}), though other people use this contact too",
}


def _bridged(rule: str, value: str, a: dict[str, Any], b: dict[str, Any]) -> str:
    """A second-pass link (``core/identity_bridge.py``) in words."""
    contact, _sep, name = value.partition(" ")
    shown = contact if "@" in contact else pretty_phone(contact)
    kind = "email address" if "@" in contact else "phone"
    dob = a.get("birth_date") or b.get("birth_date")
    words = _BRIDGE_WORDS[rule].format(a=a.get("first_name") or "?", b=b.get("first_name") or "?", name=name,
                                       dob=f" {dob}" if dob else "")
    return f"share the {kind} {shown}{',' if rule == 'birth date' else ''} {words}"


def _alike(a: Any, b: Any, score: float) -> str:
    """A scored link in words: what the two records have in common, where they differ, and how sure it is."""
    same, differ = [], []
    for label, x, y in _compared(a, b):
        if x and y:
            if " ".join(str(x).lower().split()) == " ".join(str(y).lower().split()):
                same.append(f"the same {label} {x}")
            else:
                differ.append(f"{label} ({x} / {y})")
    text = "look like the same person: " + (", ".join(same) or "similar details")
    if differ:
        text += f"; they differ in {', '.join(differ)}"
    return f"{text} (match probability {score:.1%})"


def _compared(a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    def name(r: Any) -> str:
        return " ".join(filter(None, (r.get("first_name"), r.get("last_name"))))

    return [("name", name(a), name(b)), ("birth date", a.get("birth_date"), b.get("birth_date")),
            ("email", a.get("email"), b.get("email")),
            ("phone", pretty_phone(a.get("phone")), pretty_phone(b.get("phone"))),
            ("address", a.get("address_line1"), b.get("address_line1")), ("city", a.get("city"), b.get("city")),
            ("postal code", a.get("postal_code"), b.get("postal_code"))]


def _override(row: dict[str, Any]) -> dict[str, Any]:
    return {"kind": row["kind"], "a": f"{row['a_connector_id']}:{row['a_external_id']}",
            "b": f"{row['b_connector_id']}:{row['b_external_id']}", "command": row["command"], "who": row["who"],
            "at": row["created_at"]}


def _sentences(data: dict[str, Any], name: _Namer) -> list[str]:
    records = data["records"]
    pid = data["person_id"]
    if len(records) == 1:
        (only,) = records
        lines = [f"Person {pid} is one record: {only['name']}; no other record in the store matched it."]
    else:
        reasons = "; ".join(x["sentence"] for x in data["links"]) or "they were joined in an earlier run"
        lines = [f"These {len(records)} records are person {pid}: {reasons}."]
    for x in data["undone"]:
        lines.append(f"No longer linked (a record changed or was split off): {x['sentence']}.")
    for x in data["possible"]:
        lines.append(f"Not merged, kept for review (score {x['score']:.3f}): {x['sentence']}.")
    for o in data["overrides"]:
        verb = "always one person" if o["kind"] == "must_link" else "never one person"
        lines.append(f"By hand ({o['command']}, {o['who']}): {o['a']} and {o['b']} are {verb}.")
    lines += _golden_sentences(data, name)
    return lines


def _golden_sentences(data: dict[str, Any], name: _Namer) -> list[str]:
    golden, origin = data["golden"], data["golden_from"]
    shown = []
    for f in GOLDEN_FIELDS:
        if f in CONSENT_FIELDS or golden.get(f) in (None, ""):
            continue
        value = pretty_phone(golden[f]) if f == "phone" else golden[f]
        shown.append(f"{_LABELS[f]} {value} (from {_named(origin.get(f), name)})")
    lines = [f"Golden record: {', '.join(shown)}." if shown else "Golden record: no values."]
    for f in CONSENT_FIELDS:
        value, where = golden.get(f), _named(origin.get(f), name)
        if value is False:
            lines.append(f"{_LABELS[f]}: opted out ({where} says no; an opt-out on any record wins).")
        elif value is True:
            lines.append(f"{_LABELS[f]}: consented ({where}, which holds this contact, says yes).")
        else:
            lines.append(f"{_LABELS[f]}: unknown (no record holding this contact gave consent).")
    return lines


def _named(ref: str | None, name: _Namer) -> str:
    if not ref:
        return "no record"
    cid, _sep, ext = ref.partition(":")
    return name(cid, ext)


def possible_links(store: Any, connector_types: dict[str, str], limit: int) -> list[dict[str, Any]]:
    """Links held back for review (never used to route messages), best score first."""
    name = _Namer(connector_types)
    link = db.LINK.c
    a, b = db.MEMBER.alias("a"), db.MEMBER.alias("b")
    query = (sa.select(link.rule, link.value, link.score, link.evidence, link.person_id, link.other_person_id,
                       a.c.connector_id, a.c.external_id, b.c.connector_id, b.c.external_id,
                       link.a_record, link.b_record)
             .join(a, a.c.record_id == link.a_record).join(b, b.c.record_id == link.b_record)
             .where(link.kind == "possible", link.person_id != link.other_person_id)
             .order_by(link.score.desc(), link.id).limit(limit))
    with store.read() as conn:
        rows = conn.execute(query).all()
    customers = load_customers(store, [r for row in rows for r in row[-2:]])
    out = []
    for rule, value, score, evidence, pa, pb, ac, ae, bc, be, _ra, _rb in rows:
        shared = _shared(rule, value, customers.sources.get((ac, ae)), customers.sources.get((bc, be)), evidence,
                         score)
        out.append({"a": f"{ac}:{ae}", "b": f"{bc}:{be}", "person_a": pa, "person_b": pb, "rule": rule,
                    "value": value, "score": score, "evidence": evidence or [],
                    "sentence": f"{name(ac, ae)} (person {pa}) and {name(bc, be)} (person {pb}) {shared}"})
    return out
