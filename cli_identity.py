"""``storesync identities``: one person per real customer across systems, explained, overridable, exportable.

The work is in ``core/identity_persons.py`` (resolve, merge, split), ``core/identity_explain.py`` (the words)
and ``core/identity_store.py`` (the tables); this module parses and renders.
"""

from __future__ import annotations

import csv
import getpass
import sys
from pathlib import Path
from typing import Any

import click
import orjson

__all__ = ["identities"]


@click.group()
def identities() -> None:
    """Link customers of every system into persons with a golden record (see README "Identities").

    \b
    Exit codes: 0 ok, 1 a person or record was not found, 2 bad usage or bad [identity] settings,
                4 another resolve, merge or split of this store is running.
    """


def _setup(c: Any) -> tuple[Any, Any]:
    from .core.identity_config import identity_settings

    session = c.session()
    return session, identity_settings(session.config)


def _types(session: Any) -> dict[str, str]:
    return {cid: section.type for cid, section in session.config.connectors.items()}


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@identities.command("resolve")
@click.option("--full", is_flag=True, help="Re-resolve every customer from scratch (default: only new and changed "
                                           "customers, matched against the stored persons).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
@click.option("--no-progress", is_flag=True, help="No progress lines on stderr.")
@click.pass_obj
def identities_resolve(c: Any, full: bool, as_json: bool, no_progress: bool) -> None:
    """Match the stored customers of every connector into persons and write their golden records.

    Incremental by default: customers new or changed since the last resolve are matched against the persons
    that share an identifier or name key with them. The first run, and --full, match everything. Stored merges
    and splits (``identities merge`` / ``split``) always win over the rules.

    \b
    Exit codes: 0 resolved, 2 bad [identity] settings or store, 4 another resolve/merge/split is running.
    """
    from .cli import Steps, emit_json, table
    from .core.identity_persons import resolve_store

    session, settings = _setup(c)
    summary = resolve_store(session.store, settings, full=full, progress=Steps(not (no_progress or as_json)))
    if as_json:
        return emit_json(summary.as_dict())
    if not (summary.full or summary.records or summary.changed):
        click.echo(f"nothing new or changed since the last resolve; the store holds {summary.total_persons:,} "
                   f"persons for {summary.total_records:,} records")
        return
    kind = "full" if summary.full else "incremental"
    against = f" against {summary.against:,} stored ones" if not summary.full else ""
    click.echo(f"{kind} resolve ({summary.mode} mode) in {summary.seconds}s: {summary.records:,} records matched"
               f"{against}"
               f"{f', {summary.changed:,} changed or deleted records left their persons' if summary.changed else ''}"
               f"; the store now holds {summary.total_persons:,} persons for {summary.total_records:,} records")
    if summary.links:
        table("merges by rule", ["rule", "links"], [[r, n] for r, n in sorted(summary.links.items())])
    click.echo(f"{summary.multi:,} {'person joins' if summary.multi == 1 else 'persons join'} several records "
               f"(largest: {summary.largest}); "
               f"{summary.possible:,} possible links kept for review (storesync identities review)")
    if summary.duplicates:
        click.echo(f"{summary.duplicates:,} records left out: the same external id in a second customer stream "
                   "of one connector")


@identities.command("explain")
@click.argument("target", metavar="PERSON_ID|CONNECTOR_ID:EXTERNAL_ID")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: records, links, golden record.")
@click.pass_obj
def identities_explain(c: Any, target: str, as_json: bool) -> None:
    """Say why the records of a person are one person, where each golden value came from, and what was held back.

    \b
    Exit codes: 0 explained, 1 no such person or record, 2 bad [identity] settings.
    """
    from .cli import emit_json, table
    from .core.identity_explain import explain_person
    from .core.identity_persons import find_person

    session, settings = _setup(c)
    data = explain_person(session.store, settings, _types(session), find_person(session.store, target))
    if as_json:
        return emit_json(data)
    for line in data["sentences"]:
        click.echo(line)
    table(f"person {data['person_id']}: records", ["record", "stream", "joined by", "name", "email", "phone"],
          [[r["record"], r["stream"], r["rule"], " ".join(filter(None, [r.get("first_name"), r.get("last_name")])),
            r.get("email"), r.get("phone")] for r in data["records"]])


def _override_options(command: Any) -> Any:
    """``--by`` and ``--json`` of ``merge`` and ``split``, and the context object."""
    command = click.pass_obj(command)
    command = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(command)
    return click.option("--by", help="Who decided (default: the login name); stored with the override.")(command)


@identities.command("merge")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@_override_options
def identities_merge(c: Any, a: str, b: str, by: str | None, as_json: bool) -> None:
    """Make A and B one person (each a PERSON_ID or CONNECTOR_ID:EXTERNAL_ID), now and in every later resolve.

    The smaller person's records join the larger one, which keeps its id.

    \b
    Exit codes: 0 merged, 1 not found or already one person, 2 bad usage, 4 a resolve/split is running.
    """
    from .cli import emit_json
    from .core.identity_persons import merge

    session, settings = _setup(c)
    kept, gone = merge(session.store, settings, a, b, _who(by))
    if as_json:
        return emit_json({"person_id": kept, "merged_away": gone})
    click.echo(f"person {gone} merged into person {kept}; the merge is stored and survives every resolve")


@identities.command("split")
@click.argument("person", metavar="PERSON_ID")
@click.argument("record", metavar="CONNECTOR_ID:EXTERNAL_ID")
@_override_options
def identities_split(c: Any, person: str, record: str, by: str | None, as_json: bool) -> None:
    """Take RECORD out of PERSON_ID into a person of its own, now and in every later resolve.

    Stored as "never the same person" between RECORD and each other record of the person.

    \b
    Exit codes: 0 split, 1 no such person, or the record is not in it, 2 bad usage,
                4 a resolve/merge is running.
    """
    from .cli import emit_json
    from .core.identity_persons import split

    session, settings = _setup(c)
    pid, new_id = split(session.store, settings, person, record, _who(by))
    if as_json:
        return emit_json({"person_id": pid, "record": record, "new_person_id": new_id})
    click.echo(f"{record} left person {pid} and is now person {new_id}; the split is stored and survives "
               "every resolve")


@identities.command("review")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with evidence).")
@click.pass_obj
def identities_review(c: Any, limit: int, as_json: bool) -> None:
    """List possible links: pairs that look alike but were not merged (below the mode's threshold, or held back
    by a guard). They never route messages; merge the right ones with ``identities merge``.

    \b
    Exit codes: 0 listed (also when there are none), 2 bad [identity] settings.
    """
    from .cli import emit_json, table
    from .core.identity_explain import possible_links

    session, _settings = _setup(c)
    rows = possible_links(session.store, _types(session), limit)
    if as_json:
        return emit_json(rows)
    if not rows:
        click.echo("no possible links to review")
        return
    table("possible links (not merged)", ["score", "record", "person", "record", "person", "why", "evidence"],
          [[f"{r['score']:.3f}", r["a"], r["person_a"], r["b"], r["person_b"], r["sentence"],
            "; ".join(r["evidence"])] for r in rows])


@identities.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write to FILE instead of stdout.")
@click.pass_obj
def identities_export(c: Any, fmt: str, output: Path | None) -> None:
    """One line per resolved source record: connector_id, stream, external_id, person_id, rule.

    ``rule`` is how the record joined its person (member_id, email, phone+name, similar name, birth date,
    known name, fuzzy, phone owner, manual) or ``single``.

    \b
    Exit codes: 0 exported, 2 bad usage or store.
    """
    from .core.identity_store import export_rows

    session = c.session()
    handle = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        written = _export(export_rows(session.store), fmt, handle)
    finally:
        if output:
            handle.close()
    if not written:
        click.echo("no resolved records yet: run `storesync identities resolve` first", err=True)


_EXPORT_COLUMNS = ("connector_id", "stream", "external_id", "person_id", "rule")


def _export(rows: Any, fmt: str, handle: Any) -> int:
    """Write the rows as CSV (with a header) or JSON Lines; return how many."""
    count = 0
    writer = csv.writer(handle) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(_EXPORT_COLUMNS)
    for row in rows:
        if writer is not None:
            writer.writerow(row)
        else:
            handle.write(orjson.dumps(dict(zip(_EXPORT_COLUMNS, row))).decode() + "\n")
        count += 1
    return count
