"""The declines oracle (``bench.decline_limit``): its threshold spends exactly the budget."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.unit.conftest import bench_module

decline_limit = bench_module("decline_limit")


def test_the_poisson_silence_evidence_is_the_exact_linear_term() -> None:
    s = np.array([0.5, 2.0, 6.0])
    got = decline_limit.silence_evidence(1.0, 5.0, s)
    assert np.allclose(got, (1.0 - 1.0 / 5.0) * s)


@pytest.mark.parametrize("shape", [0.7, 4.0])
def test_the_threshold_spends_the_budget_it_is_set_for(shape: float) -> None:
    grid = decline_limit.H_GRID
    rates = decline_limit.false_alarm_rates(shape, 5.0, grid, gaps=600, paths=300, seed=1)
    per_gap = 0.01
    h = float(decline_limit.threshold_for(rates, np.array([per_gap]), 600 * 300)[0])
    realised = decline_limit.false_alarm_rates(shape, 5.0, [h], gaps=4000, paths=500, seed=2)[0]
    assert realised == pytest.approx(per_gap, rel=0.15)
    assert h < -math.log(per_gap)  # the exact threshold is below the run-length bound


def test_more_budget_and_more_regular_rhythms_catch_more() -> None:
    rng = np.random.default_rng(3)
    window = np.full(3000, 8.0)
    caught = {}
    for shape, h in ((1.0, 6.0), (1.0, 3.0), (4.0, 6.0)):
        caught[shape, h] = decline_limit.caught(shape, 5.0, np.full(3000, h), window, rng).mean()
    assert caught[1.0, 3.0] > caught[1.0, 6.0] + 0.1
    assert caught[4.0, 6.0] > caught[1.0, 6.0] + 0.3
