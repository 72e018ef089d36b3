"""The learned-rate bound (``bench.decline_learned``): its statistic and its threshold."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from tests.unit.conftest import bench_module

decline_learned = bench_module("decline_learned")


def test_told_the_rate_it_is_the_poisson_cusum() -> None:
    orders = np.array([0.0, 10.0, 20.0, 55.0])
    got = decline_learned.statistics(orders, np.array([90.0]), 0.2,
                                     decline_learned.known_rate(10.0))[0]
    # onset at each order: log 0.2 per later order, 0.8 x rate per day since the onset
    want = max(n2 * math.log(0.2) + 0.8 * 0.1 * (90.0 - tau)
               for tau, n2 in ((0.0, 3), (10.0, 2), (20.0, 1), (55.0, 0)))
    assert got == pytest.approx(want)


def test_a_stop_is_judged_by_the_silence_survival() -> None:
    orders = np.array([0.0, 8.0, 20.0])
    prior = decline_learned.known_rate(10.0)
    got = decline_learned.statistics(orders, np.array([60.0]), decline_learned.STOP_RATIO,
                                     prior, shape=2.0)[0]
    survival = decline_learned.log_survival(2.0, np.array([2.0 * 0.1 * 40.0]))[0]
    assert got == pytest.approx(-survival, abs=0.01)


def test_an_uncertain_rate_weighs_a_short_silence_less() -> None:
    """A newcomer's two quick orders are no rate to fall from when the population is slow."""
    orders = np.array([0.0, 2.0, 4.0])
    checks = np.array([30.0])
    known = decline_learned.statistics(orders, checks, 0.2, decline_learned.known_rate(2.0))[0]
    slow = decline_learned.population_prior(np.full(50, 20.0))
    prior = decline_learned.population_prior(np.concatenate([np.full(50, 2.0),
                                                             np.full(50, 20.0)]))
    learned = decline_learned.statistics(orders, checks, 0.2, prior)[0]
    assert known > learned + 3.0
    assert decline_learned.statistics(orders, checks, 0.2, slow)[0] < learned


def test_the_threshold_spends_at_most_the_pooled_budget() -> None:
    rng = random.Random(5)
    prior = decline_learned.population_prior(np.array([5.0, 10.0, 20.0, 40.0]))
    series, days = [], 0.0
    for i in range(150):
        gap = (5.0, 10.0, 20.0, 40.0)[i % 4]
        t, orders = 0.0, []
        while t < 365.0:
            orders.append(t)
            t += rng.expovariate(1.0 / gap)
        days += 365.0
        o = np.array(orders)
        series.append(decline_learned.statistics(o, np.append(o[1:], 365.0), 0.25, prior))
    alarms = decline_learned.upcrossings(series, decline_learned.H_GRID)
    rate = 1000.0 * alarms / days
    budget = 5.0
    h = decline_learned.threshold_for(alarms, days, budget)
    i = int(np.searchsorted(decline_learned.H_GRID, h))
    assert i > 0 and (rate[i:] <= budget).all() and rate[i - 1] > budget
    assert rate[0] < budget  # at zero the statistic never falls below: one alarm each
