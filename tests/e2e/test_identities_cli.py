"""``storesync identities ...`` as a user runs it, over customers synced from three ``files`` connectors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from e2e_support import CUSTOMER_HEADER, explain, parse_json, sync

SYSTEMS = {
    "web": ["123,taiman.chan@example.com,+852 9123 4567,Tai Man,Chan,,,en,2026-11-01 10:00:00",
            "124,mei@example.com,,Mei,Wong,,,en,2026-11-01 10:00:00"],
    "tills": ["0042,,91234567,Tai Man,CHAN,0042,,zh-HK,2026-11-03 10:00:00",
              "0043,,(852) 9123-4567,Siu Ming,Chan,0043,,zh-HK,2026-11-01 10:00:00"],
    "erp": ["7,TaiMan.Chan@example.com,,Tai Man,Chan,,1990-02-01,en,2026-11-02 10:00:00"],
}


def project(root: Path) -> Path:
    lines = ["[storesync]", f'database = "sqlite:///{root / "store.db"}"', 'default_region = "HK"', ""]
    for cid, rows in SYSTEMS.items():
        folder = root / cid
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "customers.csv").write_text("\n".join([CUSTOMER_HEADER, *rows]) + "\n", encoding="utf-8")
        lines += [f"[connectors.{cid}]", 'type = "files"', f'directory = "{folder}"',
                  f"[connectors.{cid}.files.customers]", 'pattern = "customers*.csv"', ""]
    lines += ["[identity]", 'mode = "strict"', "[identity.survivorship]", 'default = "most_recent"',
              "[identity.survivorship.fields]", 'email = { strategy = "source_priority", sources = ["erp", "web"] }']
    (root / "plugins.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def run(cli, root: Path, *args: str, expect: int = 0):
    proc = cli("identities", *args, cwd=root)
    assert proc.returncode == expect, explain(proc)
    return proc


def person_of(cli, root: Path) -> dict[str, int]:
    lines = run(cli, root, "export").stdout.splitlines()
    return {f"{r['connector_id']}:{r['external_id']}": r["person_id"] for r in map(json.loads, lines)}


def test_resolve_explain_export_and_review(cli, tmp_path: Path) -> None:
    root = project(tmp_path)
    sync(cli, root)
    summary = parse_json(run(cli, root, "resolve", "--json"))
    assert summary["full"] is True and summary["records"] == 5
    assert summary["links"] == {"email": 1, "phone+name": 1}
    p = person_of(cli, root)
    assert p["web:123"] == p["tills:0042"] == p["erp:7"] != p["tills:0043"]

    words = run(cli, root, "explain", "tills:0042").stdout
    assert f"These 3 records are person {p['web:123']}" in words
    assert "share the phone +852 9123 4567 and the first name Tai Man" in words
    assert "share the email address taiman.chan@example.com" in words
    assert "email taiman.chan@example.com (from the erp record 7)" in words  # source_priority for email
    data = parse_json(run(cli, root, "explain", str(p["web:123"]), "--json"))
    assert sorted(r["record"] for r in data["records"]) == ["erp:7", "tills:0042", "web:123"]
    assert {x["rule"] for x in data["links"]} == {"email", "phone+name"}
    assert data["golden"]["member_id"] == "0042" and data["golden_from"]["birth_date"] == "erp:7"

    exported = tmp_path / "persons.csv"
    run(cli, root, "export", "--format", "csv", "--output", str(exported))
    rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8"))))
    assert len(rows) == 5
    assert {r["rule"] for r in rows if r["connector_id"] == "web" and r["external_id"] == "124"} == {"single"}
    assert {(r["stream"], int(r["person_id"])) for r in rows if r["external_id"] == "0043"} == \
        {("customers", p["tills:0043"])}

    assert parse_json(run(cli, root, "review", "--json")) == []
    missing = run(cli, root, "explain", "web:999", expect=1)
    assert "no resolved customer record web:999" in missing.stderr
    run(cli, root, "explain", "nonsense", expect=1)


def test_overrides_survive_full_resolve_and_new_records_join_incrementally(cli, tmp_path: Path) -> None:
    root = project(tmp_path)
    sync(cli, root)
    run(cli, root, "resolve", "--no-progress")
    p = person_of(cli, root)
    merged = parse_json(run(cli, root, "merge", "web:124", "tills:0043", "--by", "manager", "--json"))
    split = parse_json(run(cli, root, "split", str(p["web:123"]), "erp:7", "--json"))
    assert split["person_id"] == p["web:123"]
    after = person_of(cli, root)
    assert after["web:124"] == after["tills:0043"] == merged["person_id"]
    assert after["erp:7"] == split["new_person_id"]

    run(cli, root, "resolve", "--full", "--no-progress")
    again = person_of(cli, root)
    assert again == after  # overrides win over the rules; ids are stable
    words = run(cli, root, "explain", "web:124").stdout
    assert "merge web:124 tills:0043, manager" in words

    with open(root / "web" / "customers.csv", "a", encoding="utf-8") as fh:
        fh.write("125,,+85291234567,Tai Man,Chan,,,en,2026-11-05 10:00:00\n")
    sync(cli, root)
    summary = parse_json(run(cli, root, "resolve", "--json"))
    assert summary["full"] is False and summary["links"] == {"phone+name": 1}
    final = person_of(cli, root)
    assert final["web:125"] == final["web:123"] and len(final) == 6
    assert {k: v for k, v in final.items() if k != "web:125"} == again


def test_bad_identity_settings_exit_2_naming_the_key(cli, tmp_path: Path) -> None:
    root = project(tmp_path)
    with open(root / "plugins.toml", "a", encoding="utf-8") as fh:
        fh.write('sms_consent = "newest"\n')
    proc = cli("identities", "resolve", cwd=root)
    assert proc.returncode == 2, explain(proc)
    assert "identity.survivorship.fields.sms_consent" in proc.stderr
    check = cli("config", "check", cwd=root)
    assert check.returncode == 2 and "identity.survivorship.fields.sms_consent" in check.stderr


def test_possible_links_are_reviewed_in_strict_mode_and_merged_in_marketing_mode(cli, tmp_path: Path) -> None:
    root = project(tmp_path)
    # a population of unrelated people (the matcher's prior odds depend on how many records there are)
    filler = [f"F{i},,,Given{i:03d}x,Family{i % 37:02d}y,,19{50 + i % 40}-0{1 + i % 9}-1{i % 9},en,"
              "2026-11-01 10:00:00" for i in range(300)]
    with open(root / "erp" / "customers.csv", "a", encoding="utf-8") as fh:
        fh.write("\n".join([*filler, "77,,,Wing Sze,Cheung,,1985-03-04,en,2026-11-01 10:00:00"]) + "\n")
    with open(root / "tills" / "customers.csv", "a", encoding="utf-8") as fh:
        fh.write("0099,,96667777,Wing Sze,Cheung,0099,1985-03-05,en,2026-11-01 10:00:00\n")
    sync(cli, root)
    run(cli, root, "resolve", "--no-progress")
    p = person_of(cli, root)
    assert p["erp:77"] != p["tills:0099"]  # a birth date one day apart: not certain enough for strict mode
    review = parse_json(run(cli, root, "review", "--json"))
    pair = [r for r in review if {r["a"], r["b"]} == {"erp:77", "tills:0099"}]
    assert len(pair) == 1 and pair[0]["rule"] == "fuzzy" and pair[0]["score"] < 1
    assert any("same surname" in e for e in pair[0]["evidence"])
    words = run(cli, root, "explain", "tills:0099").stdout
    assert f"Person {p['tills:0099']} is one record" in words
    assert "Not merged, kept for review" in words and "the erp record 77" in words

    config = (root / "plugins.toml").read_text(encoding="utf-8").replace('mode = "strict"', 'mode = "marketing"')
    (root / "plugins.toml").write_text(config, encoding="utf-8")
    summary = parse_json(run(cli, root, "resolve", "--full", "--json"))
    assert summary["mode"] == "marketing" and summary["links"].get("fuzzy", 0) >= 1
    merged = person_of(cli, root)
    assert merged["erp:77"] == merged["tills:0099"]
    words = run(cli, root, "explain", "erp:77").stdout
    assert "look like the same person: the same name Wing Sze Cheung" in words
    assert "they differ in birth date (1985-03-0" in words and "(match probability 9" in words
