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
