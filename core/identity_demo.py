"""The identity step of ``storesync demo`` and the persons of ``storesync report``: resolve, count, explain one."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["demo_summary", "merged_persons"]


def demo_summary(session: Any) -> dict[str, Any]:
    """Resolve the store's customers; how many records became how many people, and the biggest person in words."""
    from .identity_config import identity_settings
    from .identity_explain import explain_person
    from .identity_persons import resolve_store
    from .identity_store import MEMBER

    settings = identity_settings(session.config)
    summary = resolve_store(session.store, settings, full=True)
    with session.store.engine.connect() as conn:
        sizes = conn.execute(sa.select(MEMBER.c.person_id, sa.func.count()).group_by(MEMBER.c.person_id)
                             .order_by(sa.func.count().desc(), MEMBER.c.person_id)).all()
    merged = [pid for pid, n in sizes if n > 1]
    out: dict[str, Any] = {"records": summary.total_records, "persons": summary.total_persons,
                           "merged": len(merged), "possible": summary.possible, "links": summary.links}
    if merged:
        types = {cid: section.type for cid, section in session.config.connectors.items()}
        data = explain_person(session.store, settings, types, merged[0])
        out["example"] = "\n".join(data["sentences"])
        out["example_id"] = str(merged[0])
    return out


def merged_persons(conn: Any, limit: int = 100) -> list[dict[str, Any]]:
    """Persons of more than one record, biggest first, with their source records (for the report page)."""
    from .identity_store import MEMBER, PERSON

    m, p = MEMBER, PERSON
    sizes = (sa.select(m.c.person_id, sa.func.count().label("n")).group_by(m.c.person_id)
             .having(sa.func.count() > 1).order_by(sa.func.count().desc(), m.c.person_id).limit(limit).subquery())
    people = conn.execute(sa.select(p.c.id, p.c.first_name, p.c.last_name).join(sizes, sizes.c.person_id == p.c.id)
                          .order_by(sizes.c.n.desc(), p.c.id)).all()
    out = []
    for pid, first, last in people:
        rows = conn.execute(sa.select(m.c.connector_id, m.c.stream, m.c.external_id, m.c.rule)
                            .where(m.c.person_id == pid).order_by(m.c.connector_id, m.c.external_id)).mappings()
        out.append({"person_id": pid, "name": " ".join(filter(None, [first, last])),
                    "records": [dict(r) for r in rows]})
    return out
