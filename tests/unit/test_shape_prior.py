"""Customers' fitted gap shapes are shrunk toward the population's (empirical Bayes).

A dozen gaps of a Poisson buyer can read as bursty (fitted shape 0.5) or as
regular (2): judged by their own fit, the first waits far beyond the budget's
silence, the second alarms too soon. Where every customer shares one rhythm
the population's spread of true shapes is small and a short history is read
as that rhythm; where rhythms differ, the spread is large and the customer's
own fit speaks.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from anomon.core.detection_config import DetectionConfig
from anomon.core.detectors.base import DetectionContext
from anomon.core.detectors.drop_off import DropOffDetector
from anomon.core.features import add_purchase
from anomon.core.population import SHAPE_SPREAD_FLOOR, PopulationBaseline
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY

MEAN_GAP = 7.0


def _customer(shape: float, orders: int, rng: random.Random, ctx: DetectionContext,
              detector: DropOffDetector, name: str) -> CustomerState:
    """A gamma renewal buyer (mean gap 7 days) whose orders were learned in ``ctx``."""
    state, t = CustomerState.new(name, 0.0), 0.0
    for _ in range(orders):
        t += rng.gammavariate(shape, MEAN_GAP / shape)
        add_purchase(state, t * DAY, 20.0)
        detector.learn(state, ctx)
    return state


def _population(shapes: list[float], seed: int = 0) -> DetectionContext:
    """A context whose population learned these customers, 13 orders each."""
    ctx, detector, rng = DetectionContext(DetectionConfig(), PopulationBaseline()), \
        DropOffDetector(), random.Random(seed)
    for i, shape in enumerate(shapes):
        _customer(shape, 13, rng, ctx, detector, f"p{i}")
    return ctx


@pytest.mark.parametrize(("shapes", "true_mean", "spread_at_least"), [
    ([1.0] * 250, 0.0, None),
    ([2.0] * 250, math.log(2.0), None),
    ([0.5, 4.0] * 125, 0.5 * math.log(2.0), 0.3),
])
def test_the_population_learns_the_mean_and_the_spread_of_true_shapes(
        shapes: list[float], true_mean: float, spread_at_least: float | None) -> None:
    """One rhythm: the spread is the floor (the scatter of the fits is all sampling
    noise); two rhythms far apart: a wide spread."""
    prior = _population(shapes).population.shape_prior()
    assert prior is not None
    mean, spread = prior
    if spread_at_least is None:
        assert mean == pytest.approx(true_mean, abs=0.15)
        assert spread == SHAPE_SPREAD_FLOOR
    else:
        assert spread >= spread_at_least


def test_a_population_burstier_than_shape_0_4_is_learned_as_such() -> None:
    """Shape-0.3 buyers (an order every 18 days, 25 orders; gaps of at least 72 minutes, as
    the synthetic generator makes them): learned at 0.34. With fits clamped at 0.4, as
    before, 0.44: their silences were judged by a tail too light (drop-off spent 1.7-2.0x its
    budget on populations of shape 0.3 and 0.25)."""
    ctx, detector, rng = DetectionContext(DetectionConfig(), PopulationBaseline()), \
        DropOffDetector(), random.Random(0)
    for i in range(250):
        state, t = CustomerState.new(f"b{i}", 0.0), 0.0
        for _ in range(25):
            t += max(0.05, rng.gammavariate(0.3, 18.0 / 0.3))
            add_purchase(state, t * DAY, 20.0)
            detector.learn(state, ctx)
    prior = ctx.population.shape_prior()
    assert prior is not None
    assert prior[0] == pytest.approx(math.log(0.3), abs=0.2)


def _judged_shapes(ctx: DetectionContext, seeds: range) -> list[float]:
    """The shapes Poisson buyers of 13 orders have their purchase silence judged by."""
    detector = DropOffDetector()
    return [detector.silence_model(_customer(1.0, 13, random.Random(seed), ctx, detector,
                                             f"c{seed}"), "purchase", ctx).shape
            for seed in seeds]


def test_short_histories_of_one_rhythm_are_judged_by_that_rhythm() -> None:
    """Poisson buyers of 13 orders: by their own fits, shapes from about 0.55 to 1.75;
    among Poisson buyers, within 20% of 1 and half as scattered or less."""
    def iqr(shapes: list[float]) -> float:
        q = statistics.quantiles([math.log(k) for k in shapes], n=4)
        return q[2] - q[0]

    alone = _judged_shapes(DetectionContext(DetectionConfig(), PopulationBaseline()),
                           range(100, 160))
    shrunk = _judged_shapes(_population([1.0] * 250), range(100, 160))
    assert min(alone) < 0.7 and max(alone) > 1.4
    assert all(0.8 <= k <= 1.25 for k in shrunk), sorted(shrunk)
    assert iqr(shrunk) < 0.5 * iqr(alone)


def test_among_many_rhythms_a_customer_keeps_mostly_their_own() -> None:
    """The same Poisson buyers among bursty (0.5) and regular (4) ones: the shapes judged
    stay close to their own fits (the spread of true shapes is wide)."""
    alone = _judged_shapes(DetectionContext(DetectionConfig(), PopulationBaseline()),
                           range(100, 160))
    mixed = _judged_shapes(_population([0.5, 4.0] * 125), range(100, 160))
    moved = [abs(math.log(b / a)) for a, b in zip(alone, mixed, strict=True)]
    assert statistics.median(moved) < 0.15
