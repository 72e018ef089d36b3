"""Basket merging and the gap shape (``bench.basket_shape``): what docs/quality.md quotes."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.conftest import bench_module

basket_shape = bench_module("basket_shape")


def test_merging_makes_a_bursty_buyers_log_gaps_look_regular() -> None:
    row = basket_shape.measure(0.5, 3.0, np.random.default_rng(3), gaps_drawn=300_000, draws=20)
    assert row["merged_share"] == pytest.approx(0.32, abs=0.02)
    assert row["shape_by_log_variance"] > 1.2  # the true shape is 0.5
    assert row["real_over_nominal_by_log_variance"] > 3.0
    assert row["real_over_nominal_by_moments"] < 1.8


def test_merged_orders_counted_as_short_gaps_give_the_shape_back() -> None:
    row = basket_shape.measure(0.5, 3.0, np.random.default_rng(5), gaps_drawn=300_000, draws=40)
    assert row["shape_by_censored"] == pytest.approx(0.5, abs=0.03)
    assert row["real_over_nominal_by_censored"] == pytest.approx(1.0, abs=0.2)
    low, median, high = row["window_quartiles_by_censored"]
    assert 0.35 < low <= median <= high < 0.8  # one window's worth of gaps is enough


def test_a_regular_buyer_loses_nothing_to_merging() -> None:
    row = basket_shape.measure(4.0, 6.0, np.random.default_rng(4), gaps_drawn=300_000, draws=20)
    assert row["merged_share"] < 0.005
    assert row["shape_by_log_variance"] == pytest.approx(4.0, abs=0.2)
    assert row["real_over_nominal_by_log_variance"] == pytest.approx(1.0, abs=0.25)
