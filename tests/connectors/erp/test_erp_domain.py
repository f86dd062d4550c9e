"""Odoo domains in the emulator: every operator, the prefix operators, dotted paths, hierarchy, bad domains."""

from __future__ import annotations

from datetime import datetime

import pytest

from storesync.connectors.erp.emulator_db import OdooDB, OdooFault
from storesync.connectors.erp.emulator_domain import DomainError, compile_domain
from storesync.connectors.erp.emulator_models import seed


@pytest.fixture(scope="module")
def db() -> OdooDB:
    database = OdooDB(seed(partners=0, products=0, orders=0))
    for name, email, city, parent in [("Alice Chan", "alice@example.com", "Hong Kong", None),
                                      ("Bob Wong", None, "Kowloon", 1), ("Carol Lee", "CAROL@Example.com", None, 2),
                                      ("Dan Ho", "dan@example.org", "Hong Kong", None)]:
        database.create("res.partner", {"name": name, "email": email, "city": city, "parent_id": parent})
    return database


def names(db: OdooDB, domain: list, *, model: str = "res.partner") -> list[str]:
    predicate = compile_domain(domain, model, db)
    return sorted(r.get("name") or r.get("complete_name") for r in db.tables[model].values() if predicate(r))


@pytest.mark.parametrize(("domain", "expected"), [
    ([("city", "=", "Hong Kong")], ["Alice Chan", "Dan Ho"]),
    ([("city", "!=", "Hong Kong")], ["Bob Wong", "Carol Lee"]),
    ([("email", "=", False)], ["Bob Wong"]),
    ([("email", "!=", False)], ["Alice Chan", "Carol Lee", "Dan Ho"]),
    ([("id", ">", 2)], ["Carol Lee", "Dan Ho"]),
    ([("id", ">=", 2), ("id", "<", 4)], ["Bob Wong", "Carol Lee"]),
    ([("id", "<=", 1)], ["Alice Chan"]),
    ([("id", "in", [1, 4])], ["Alice Chan", "Dan Ho"]),
    ([("id", "not in", [1, 4])], ["Bob Wong", "Carol Lee"]),
    ([("city", "in", [False, "Kowloon"])], ["Bob Wong", "Carol Lee"]),
    ([("email", "like", "example.com")], ["Alice Chan"]),
    ([("email", "ilike", "example.com")], ["Alice Chan", "Carol Lee"]),
    ([("email", "not ilike", "example.com")], ["Bob Wong", "Dan Ho"]),
    ([("name", "=like", "_ob %")], ["Bob Wong"]),
    ([("email", "=ilike", "carol@example.com")], ["Carol Lee"]),
    ([("email", "=like", "carol@example.com")], []),
    (["|", ("city", "=", "Kowloon"), ("email", "ilike", ".org")], ["Bob Wong", "Dan Ho"]),
    (["&", ("city", "=", "Hong Kong"), ("email", "ilike", ".org")], ["Dan Ho"]),
    (["!", ("city", "=", "Hong Kong")], ["Bob Wong", "Carol Lee"]),
    (["|", "&", ("id", ">", 1), ("city", "=", "Hong Kong"), ("id", "=", 2)], ["Bob Wong", "Dan Ho"]),
    (["!", "|", ("id", "=", 1), ("id", "=", 2), ("city", "!=", False)], ["Dan Ho"]),  # leftover leaf is ANDed
    ([("parent_id.name", "=", "Alice Chan")], ["Bob Wong"]),
    ([("parent_id.parent_id.city", "=", "Hong Kong")], ["Carol Lee"]),
    ([("id", "child_of", 1)], ["Alice Chan", "Bob Wong", "Carol Lee"]),
    ([("id", "parent_of", 3)], ["Alice Chan", "Bob Wong", "Carol Lee"]),
    ([(1, "=", 1)], ["Alice Chan", "Bob Wong", "Carol Lee", "Dan Ho"]),
    ([(0, "=", 1)], []),
    ([], ["Alice Chan", "Bob Wong", "Carol Lee", "Dan Ho"]),
])
def test_domain_selects(db: OdooDB, domain: list, expected: list[str]) -> None:
    assert names(db, domain) == expected


def test_datetimes_compare_with_odoo_strings_at_full_precision(db: OdooDB) -> None:
    db.tables["res.partner"][1]["write_date"] = datetime(2026, 3, 1, 10, 0, 0, 500_000)
    assert names(db, [("write_date", ">=", "2026-03-01 10:00:00"), ("id", "=", 1)]) == ["Alice Chan"]
    assert names(db, [("write_date", "=", "2026-03-01 10:00:00"), ("id", "=", 1)]) == []  # microseconds differ
    assert names(db, [("write_date", "<", "2026-03-01 10:00:01"), ("id", "=", 1)]) == ["Alice Chan"]


def test_child_of_on_stock_locations(db: OdooDB) -> None:
    assert names(db, [("id", "child_of", 2)], model="stock.location") == ["Shelf 1", "Stock"]


@pytest.mark.parametrize(("domain", "message"), [
    ([("nope", "=", 1)], "Invalid field res.partner.nope"),
    ([("name", "~", "x")], "unknown operator '~'"),
    ([("name", "=")], "expected [field, operator, value]"),
    (["&", ("id", "=", 1)], "'&' needs two operands"),
    (["!"], "'!' needs an operand"),
    ([("id", "in", 3)], "'in' takes a list"),
    ([("name", "child_of", 1)], "needs a many2one field"),
    ("id = 1", "expected a list"),
])
def test_bad_domains_are_value_errors(db: OdooDB, domain: object, message: str) -> None:
    with pytest.raises(DomainError, match=message.replace("[", r"\[").replace("]", r"\]")):
        compile_domain(domain, "res.partner", db)


def test_search_orders_pages_and_hides_archived_unless_asked(db: OdooDB) -> None:
    db.write("res.partner", [4], {"active": False})
    try:
        assert db.search("res.partner", [], order="name desc") == [3, 2, 1]
        assert db.search("res.partner", [], order="city asc, id desc", context={"active_test": False}) == [4, 1, 2, 3]
        assert db.search("res.partner", [("active", "=", False)]) == [4]
        assert db.search("res.partner", [], offset=1, limit=1, order="id asc") == [2]
        with pytest.raises(OdooFault, match="Invalid order"):
            db.search("res.partner", [], order="id sideways")
    finally:
        db.write("res.partner", [4], {"active": True})
