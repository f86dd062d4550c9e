"""Fault campaign at CI size: every connector's job under 10% 5xx, 5% truncated bodies, 429 bursts and slow
replies ends with the same store (and the same ERP orders and SMS) as a fault-free run, within its retry budget;
faults that outlast the retries end in exit 3 naming the connector and the last error.

Full size: ``.venv/bin/python bench/fault_campaign.py --scale 10`` (see docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from campaign_jobs import JOBS, SECRETS
from fault_campaign import campaign_faults, exhaust, fault_run, run_job
from campaign_jobs import fast_http

FAULT_JOBS = [name for name, job in JOBS.items() if "faults" in job.tags]


@pytest.mark.slow
@pytest.mark.parametrize("name", FAULT_JOBS)
def test_faults_lose_nothing_duplicate_nothing_and_stay_within_the_retry_budget(name: str, tmp_path: Path) -> None:
    result = run_job(JOBS[name], scale=1, seed=1, workdir=tmp_path)
    clean, faulty, cmp = result.clean, result.faulty, result.comparison
    assert clean.exit_codes == [0], clean.stderr[-3000:]
    assert faulty.exit_codes[-1] == 0, (faulty.exit_codes, faulty.stderr[-3000:])
    assert cmp.reference > 0 and len(faulty.outcome) == len(clean.outcome)
    assert (cmp.lost, cmp.duplicated, cmp.changed) == (0, 0, 0), cmp
    assert (cmp.effects_lost, cmp.effects_duplicated) == (0, 0), cmp
    injected = faulty.injected
    assert min(injected["5xx"], injected["truncated"], injected["429"]) > 0, injected  # the faults happened ...
    assert faulty.retries > 0 and clean.retries == 0  # ... and were retried, by the client, not by luck
    assert faulty.max_attempt <= result.max_retries
    assert faulty.retries <= result.budget * len(faulty.exit_codes)
    assert faulty.bad_log_lines == [] and faulty.log_lines > 0  # --log-format json: every stderr line is JSON
    for secret in SECRETS:
        assert secret not in faulty.stderr


@pytest.mark.parametrize("name", FAULT_JOBS)
def test_faults_outlasting_the_retries_exit_3_naming_the_connector_and_the_last_error(name: str,
                                                                                        tmp_path: Path) -> None:
    result = exhaust(JOBS[name], tmp_path)
    assert result.exit_code == 3, result
    assert result.names_connector and result.names_error, result.message
    assert not result.traceback


def test_a_run_that_uses_up_its_retry_budget_fails_naming_the_budget(tmp_path: Path) -> None:
    job = JOBS["shopify sync"]
    run = fault_run(job, campaign_faults(seed=1), 1, tmp_path, f"sqlite:///{tmp_path / 'store.db'}",
                    fast_http(retry_budget=3))
    assert run.exit_codes == [3]
    assert run.retries == 3  # not one retry past the budget
    errors = [line for line in run.stderr.splitlines() if '"level":"error"' in line]
    assert errors and all("retry budget of 3 retries for this run is used up" in e for e in errors), errors
    assert any("shopify 'shop'" in e for e in errors)
