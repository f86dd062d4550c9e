"""Where the real API payloads live: ``shared/fixtures`` beside the repository (as CI and sessions lay it out).

``STORESYNC_SHARED_FIXTURES`` overrides the location. Tests that need a payload call ``fixture_path``, which
skips the test with a reason when the folder is absent, so the rest of the suite passes anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("STORESYNC_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))


def fixture_path(*parts: str) -> Path:
    """The path of a shared fixture; skips the calling test when the shared fixtures are not there."""
    path = SHARED_FIXTURES.joinpath(*parts)
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED_FIXTURES} (set STORESYNC_SHARED_FIXTURES)")
    return path
