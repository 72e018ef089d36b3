"""Drop-off judges a purchase silence on the customer's fitted order process.

The real alarm rate of an unchanged customer whose order gaps are gamma (shape
``k``, mean ``m``) at a silence threshold of ``s`` days is ``Q(k, k s / m) / m``
per day: each order's gap has one chance to outlast ``s``. It must stay near
the purchase silence's budget for bursty buyers whose short gaps vanish into
baskets and for regular buyers alike.
"""

from __future__ import annotations

import random
import statistics

import pytest
from scipy.special import gammaincc

from anomon.core.detection_config import DetectionConfig
from anomon.core.detectors.base import DetectionContext
from anomon.core.detectors.drop_off import DropOffDetector
from anomon.core.detectors.renewal import censored_shape
from anomon.core.features import MIN_GAP_DAYS, add_purchase, basket_gaps, merged_orders
from anomon.core.population import PopulationBaseline
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY


def _orders(shape: float, mean_gap: float, n: int, seed: int) -> list[float]:
    """Order times (days) of a gamma renewal buyer."""
    rng = random.Random(seed)
    t, out = 0.0, [0.0]
    for _ in range(n):
        t += rng.gammavariate(shape, mean_gap / shape)
        out.append(t)
    return out


def _learned(days: list[float], lines: int = 1) -> tuple[CustomerState, DropOffDetector,
                                                         DetectionContext]:
    """A customer who placed these orders, each sent as ``lines`` events a minute apart."""
    ctx = DetectionContext(DetectionConfig(), PopulationBaseline())
    state, detector = CustomerState.new("c1", 0.0), DropOffDetector()
    for day in days:
        for line in range(lines):
            add_purchase(state, day * DAY + 60.0 * line, 20.0)
            detector.learn(state, ctx)
    return state, detector, ctx


def _real_over_budget(shape: float, mean_gap: float, seed: int, fitted: bool = True) -> float:
    """The real alarm rate of an unchanged customer over the purchase silence's budget."""
    state, detector, ctx = _learned(_orders(shape, mean_gap, 40, seed))
    budget = detector.budgets(state, ctx.config.drop_off)["purchase_silence"]
    model = (detector.silence_model(state, "purchase", ctx) if fitted
             else detector.model(state, "purchase", ctx))
    silence = model.silence_threshold_days(budget)
    real = float(gammaincc(shape, shape * silence / mean_gap)) / mean_gap
    return real / budget


@pytest.mark.parametrize(("shape", "mean_gap"), [(0.5, 3.0), (0.7, 6.0), (1.0, 10.0),
                                                 (4.0, 7.0)])
def test_an_unchanged_customers_silence_alarms_spend_about_the_budget(
        shape: float, mean_gap: float) -> None:
    """Median over 15 customers of 40 orders each: within 2x of the budget."""
    ratios = [_real_over_budget(shape, mean_gap, seed) for seed in range(15)]
    assert statistics.median(ratios) <= 2.0, ratios


def test_a_bursty_fast_buyer_is_no_longer_judged_by_the_too_regular_basket_gaps() -> None:
    """Shape 0.5, every 3 days: a third of the orders merge into baskets; the basket
    gaps' model spends several times the budget, the fitted order process does not."""
    basket = statistics.median(_real_over_budget(0.5, 3.0, s, fitted=False) for s in range(15))
    fitted = statistics.median(_real_over_budget(0.5, 3.0, s) for s in range(15))
    assert basket > 2.0 * fitted
    assert fitted <= 2.0


def test_a_regular_buyer_is_judged_as_regular_as_the_gaps_show() -> None:
    """Shape 4, weekly, 40 orders: the fitted silence comes sooner than the basket
    model's, whose shape is shrunk toward Poisson."""
    state, detector, ctx = _learned(_orders(4.0, 7.0, 40, seed=3))
    budget = detector.budgets(state, ctx.config.drop_off)["purchase_silence"]
    fitted = detector.silence_model(state, "purchase", ctx)
    basket = detector.model(state, "purchase", ctx)
    assert fitted.shape > basket.shape
    assert fitted.silence_threshold_days(budget) < basket.silence_threshold_days(budget)


def test_orders_sent_line_by_line_are_judged_as_whole_orders() -> None:
    days = _orders(1.0, 4.0, 14, seed=5)  # 45 events: within the window of 48
    whole = _learned(days)
    lines = _learned(days, lines=3)
    assert merged_orders(lines[0])[0] == merged_orders(whole[0])[0]
    models = [d.silence_model(s, "purchase", c) for s, d, c in (whole, lines)]
    assert models[0].shape == pytest.approx(models[1].shape, rel=1e-3)
    assert models[0].expected_gap == pytest.approx(models[1].expected_gap, rel=1e-3)


@pytest.mark.parametrize(("shape", "mean_gap"), [(0.5, 3.0), (1.0, 3.0), (4.0, 6.0)])
def test_the_censored_shape_recovers_the_gap_shape_from_one_window(
        shape: float, mean_gap: float) -> None:
    """Median over 60 windows of 30 basket gaps within 15% of the true shape (the basket
    gaps alone read a shape-0.5 buyer with 3-day gaps as about 1.5)."""
    fits = []
    for seed in range(60):
        state, _, _ = _learned(_orders(shape, mean_gap, 47, seed)[:48])
        gaps, days = basket_gaps(state)
        merged, logs = merged_orders(state)
        fits.append(censored_shape(gaps, days, logs, merged, MIN_GAP_DAYS))
    assert statistics.median(fits) == pytest.approx(shape, rel=0.15)
