"""Puts ``bench/identity`` on the import path so the evaluation tests run the benchmark code itself."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "identity"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
