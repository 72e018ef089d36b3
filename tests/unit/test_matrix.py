"""The reduced robustness matrix: detection holds on behaviours it was not tuned to.

Five variants of the matrix (bursty and regular buyers, visits glued to orders,
a web shop with joiners, a season and shuffled invoices, fast bursty buyers who
browse on their own) with a smaller population each. A change to a detector
that breaks the false-alarm budget or the recall on any of them fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from anomon.core.detection_config import DetectionConfig
from anomon.lab.matrix import OTHER_KINDS, REDUCED, VARIANTS, VariantResult, run_variant

# about 1.5 minutes: in `make test` (CI), not in the `make check` loop
pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parents[2] / "models" / "detectors.toml"
CUSTOMERS = 500


@pytest.fixture(scope="module")
def config() -> DetectionConfig:
    return DetectionConfig.load(MODELS)


@pytest.fixture(scope="module")
def results(config: DetectionConfig) -> dict[str, VariantResult]:
    by_name = {v.name: v for v in VARIANTS}
    return {name: run_variant(by_name[name], config, CUSTOMERS) for name in REDUCED}


@pytest.mark.parametrize("name", REDUCED)
def test_all_kinds_stay_within_one_false_alarm_per_1000_customer_days(
        results: dict[str, VariantResult], name: str) -> None:
    assert results[name].report.false_alarms_per_1000 <= 1.0


@pytest.mark.parametrize("name", REDUCED)
def test_drop_off_stays_near_its_budget(
        results: dict[str, VariantResult], config: DetectionConfig, name: str) -> None:
    """Within 2x of the budget (at most 1.1x at 500 customers, the bursty variants)."""
    realised = results[name].report.kinds["drop_off"].false_alarms_per_1000
    assert realised <= 2.0 * config.drop_off.budget_per_1000_days


def _pooled(results: dict[str, VariantResult], kind: str) -> float:
    changes = sum(r.report.kinds[kind].changes for r in results.values())
    caught = sum(r.report.kinds[kind].caught for r in results.values())
    assert changes >= 30
    return caught / changes


def test_stops_are_caught_in_time(results: dict[str, VariantResult]) -> None:
    assert _pooled(results, "drop_off/stop") >= 0.92  # 0.99 today (0.97 before the shape prior)


def test_declines_are_caught_as_often_as_today(results: dict[str, VariantResult]) -> None:
    """A regression guard: pooled over these variants declines are below the 0.6 goal
    (bursty buyers and web shops, see docs/quality.md)."""
    assert _pooled(results, "drop_off/decline") >= 0.42  # 0.48 today (0.32 before the fit)


@pytest.mark.parametrize("name", REDUCED)
def test_every_other_kind_is_caught(results: dict[str, VariantResult], name: str) -> None:
    kinds = results[name].report.kinds
    for kind in OTHER_KINDS:
        recall = kinds[kind].recall
        assert recall is not None and recall >= 0.9, (kind, recall)
