"""``storesync demo``: the README's first command, then the commands it suggests, against the store it left."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_job_and_its_suggestions_work(cli, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = cli("demo", "--dir", str(out), cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert re.search(r"the whole job in \d+\.\d s", text)
    assert "Oversold: TEAPOT-CELADON at cwb" in text and "flagged for cancellation" in text
    assert "to +85298765432: Sorry Wing Sze, the Ceramic Teapot, Celadon" in text  # the oversold web customer
    ready = re.findall(r"to (\+852\d+): Hi (\w+ \w+), your pre-order", text)
    assert ready == [("+85291234567", "Tai Man"), ("+85251234567", "Ka Yan")]  # first come, first served
    assert re.search(r"[1-9]\d* stock level\(s\) corrected in the web shop", text)
    assert "web order(s) written into the ERP" in text
    people = re.search(r"Customers: (\d+) records across the systems are (\d+) people \((\d+) of them", text)
    assert people and int(people[2]) < int(people[1]) and int(people[3]) >= 1
    assert re.search(r"These \d+ records are person \d+: .* share the email address taiman\.chan@gmail\.com", text)
    # the family sharing one mobile and the walk-ins sharing the shop's landline are never one person
    export = cli("--config", str(out / "plugins.toml"), "identities", "export", "--format", "jsonl", cwd=tmp_path)
    person = {(r["connector_id"], r["external_id"]): r["person_id"]
              for r in map(json.loads, export.stdout.splitlines())}
    lees = {person[("tills", f"DEMOLEE{k}")] for k in ("KAHO", "KAYAN", "WAIMAN")}
    walkins = {person[("tills", f"DEMOWALKIN{k}")] for k in ("LAU", "NG", "TSE")}
    assert len(lees) == 3 and len(walkins) == 3

    config = str(out / "plugins.toml")
    suggested = re.findall(r"^   storesync --config \S+ (.+)$", text, flags=re.M)
    assert suggested, text
    for command in suggested:
        done = cli("--config", config, *command.split(), cwd=tmp_path)
        assert done.returncode in (0, 1), (command, done.stderr)  # 1: the SKU shown has a conflict
        assert done.stdout.strip()
    shown = cli("--config", config, "inventory", "show", "TEAPOT-CELADON", "--json", cwd=tmp_path)
    cwb = next(p for p in json.loads(shown.stdout)["locations"] if p["location"] == "cwb")
    assert cwb["on_hand"] == -1  # two tills sold the one teapot


class _Cells(__import__("html.parser").parser.HTMLParser):
    """Rows of the page's tables: {table name: [{field: text}]}, and whether each row is marked oversold."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self.marked: dict[str, list[bool]] = {}
        self._table = self._field = None
        self._row: dict[str, str] | None = None
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        if tag == "table":
            self._table = a.get("data-table")
            self.tables.setdefault(self._table, [])
            self.marked.setdefault(self._table, [])
        elif tag == "tr" and self._table:
            self._row = {}
            self.marked[self._table].append(a.get("class") == "oversold")
        elif tag == "td":
            self._field = a.get("data-field")

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._field:
            self._row[self._field] = self._row.get(self._field, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._field = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.tables[self._table].append(self._row)
            else:
                self.marked[self._table].pop()  # the header row
            self._row = None
        elif tag == "table":
            self._table = None


def test_the_report_page_shows_the_figures_of_the_store(cli, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    # a relative --dir, as the README's set-up runs it (the default, storesync-demo)
    assert cli("demo", "--dir", "demo", cwd=tmp_path, timeout=240).returncode == 0
    config = str(out / "plugins.toml")
    page = tmp_path / "page.html"
    written = cli("--config", config, "report", "--html", str(page), cwd=tmp_path)
    assert written.returncode == 0 and written.stdout.strip() == str(page)
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"<script|<link|<img|(src|href)=[\"']https?:", text)  # self-contained: nothing fetched
    cells = _Cells()
    cells.feed(text)
    assert cells.svgs >= 2  # two inline charts

    status = json.loads(cli("--config", config, "status", "--json", cwd=tmp_path).stdout)
    runs = cells.tables["runs"]
    assert len(runs) >= 4 and {r["connector"] for r in runs} >= {"shop", "tills", "erp"}
    assert all(int(r["records"]) >= 0 for r in runs) and status  # the store answers

    stock = {(r["sku"], r["location"]): (r, marked) for r, marked in zip(cells.tables["stock"],
                                                                         cells.marked["stock"], strict=True)}
    shown = json.loads(cli("--config", config, "inventory", "show", "TEAPOT-CELADON", "--json",
                           cwd=tmp_path).stdout)
    for p in shown["locations"]:
        row, marked = stock[("TEAPOT-CELADON", p["location"])]
        assert (int(row["on_hand"]), int(row["committed"]), int(row["available"])) == \
            (p["on_hand"], p["committed"], p["available"])
        assert marked == (p["location"] == "cwb")  # the oversold shelf is marked
    persons = cells.tables.get("person", [])
    assert {"tills", "shop"} <= {r["connector"] for r in persons}  # a merged person's source records are listed
    queue = [r for r in cells.tables["preorders"] if r["sku"] == "MOON-2027"]
    assert [r["state"] for r in queue] == ["allocated", "allocated", "preorder"]
