"""The reliability campaigns (tests/reliability/): their job table and harness live in bench/ beside the scripts
that run them at full size, so the tests and the printed tables measure the same thing."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
