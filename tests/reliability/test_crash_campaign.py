"""Crash campaign at CI size: each job of the table (sync of every connector, order forwarding into the ERP, SMS
delivery) is SIGKILLed at seeded random moments of its work, rerun, and compared with an uninterrupted run:
the same store, no sale order created twice, no SMS sent twice.

Full size (4 kills per job, 24 in all, or more): ``.venv/bin/python bench/crash_campaign.py [--kills 20]``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from campaign_jobs import JOBS
from crash_campaign import crash_job

CRASH_JOBS = [name for name, job in JOBS.items() if "crash" in job.tags]


@pytest.mark.slow
@pytest.mark.parametrize("name", CRASH_JOBS)
def test_sigkill_at_random_moments_then_rerun_converges_to_an_uninterrupted_run(name: str, tmp_path: Path) -> None:
    result = crash_job(JOBS[name], tmp_path, kills=2, scale=1, seed=1)
    assert result.failures == []
    assert result.kills == 2, result  # really killed mid-work, twice
    for comparison in result.comparisons:
        assert comparison.reference > 0
        assert (comparison.lost, comparison.duplicated, comparison.changed) == (0, 0, 0), comparison
        assert (comparison.effects_lost, comparison.effects_duplicated) == (0, 0), comparison
    assert all(codes[-1] == 0 for codes in result.final_codes)


def test_adding_a_kind_of_job_is_one_table_entry() -> None:
    """Every job the campaigns know is complete: they reach it only through its JOBS entry."""
    for name, job in JOBS.items():
        assert job.name == name and job.command and callable(job.observe) and callable(job.emulator)
        assert job.tags <= {"faults", "crash"} and job.tags
    assert {"shopify sync", "square sync", "odoo sync", "odoo order forwarding", "twilio notify",
            "files sync"} <= set(JOBS)
