"""Spend anomaly's order-size baseline: customers differ in what they spend, not only the
population's spread; a short history's spread is known less well than a long one's."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from anomon.core.detection_config import DetectionConfig
from anomon.core.detectors.base import DetectionContext
from anomon.core.detectors.spend_anomaly import SpendAnomalyDetector, order_size_baseline, t_as_z
from anomon.core.events import EVENT_ADAPTER, Event
from anomon.core.features import add_purchase
from anomon.core.population import PopulationBaseline
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY

START = 1_750_000_000.0


def population(spread_between: float = 0.85, spread_within: float = 0.15) -> PopulationBaseline:
    """Customers spending 45 a typical order, their typical orders far apart."""
    pop = PopulationBaseline()
    pop.amt_mu, pop.amt_var = math.log1p(45.0), spread_between + spread_within
    pop.n_amounts = 10_000  # the customer under test moves it no more than any other
    pop.amt_within_var, pop.n_within = spread_within, 10_000
    return pop


def order(n: int, amount: float, customer: str = "c1") -> Event:
    """The customer's ``n``-th order, 20 days after the one before."""
    ts = datetime.fromtimestamp(START + n * 20 * DAY, UTC).isoformat()
    return EVENT_ADAPTER.validate_python({"event_id": f"{customer}-{n}", "customer_id": customer,
                                          "type": "purchase", "amount": amount, "ts": ts})


def judged(amounts: list[float], last: float, pop: PopulationBaseline) -> bool:
    """Whether ``last``, after orders of ``amounts``, fires (the order is judged before it is
    learned, as the engine does)."""
    ctx = DetectionContext(DetectionConfig(), pop)
    detector, state = SpendAnomalyDetector(), CustomerState.new("c1", START)
    for i, amount in enumerate(amounts):
        assert detector.on_event(state, order(i, amount), ctx) is None
    verdict = detector.on_event(state, order(len(amounts), last), ctx)
    return verdict is not None and verdict.firing


def test_a_small_spender_is_judged_by_their_own_orders() -> None:
    """Six orders of 5-8 against a population spending 45: an order of 65 is ten times theirs.
    Shrunk toward the population's mean and total spread as before (3 pseudo-orders), their
    typical order read as about 13 and the spread as 0.6: z 2.7, nothing fired."""
    small = [5.0, 7.0, 6.0, 8.0, 5.5, 7.0]
    assert judged(small, 65.0, population())
    assert not judged(small, 14.0, population())


def test_where_customers_spend_alike_the_population_mean_counts_more() -> None:
    mu_apart, _, _ = order_size_baseline(4, 2.0, 0.1, 3.8, 0.15, 0.85, 3.0)
    mu_alike, _, _ = order_size_baseline(4, 2.0, 0.1, 3.8, 0.15, 0.02, 3.0)
    assert abs(mu_apart - 2.0) < 0.1
    assert mu_alike > 2.5


def test_a_newcomer_is_judged_by_the_whole_population() -> None:
    mu, sd, _ = order_size_baseline(0, 0.0, 0.0, 3.8, 0.15, 0.85, 3.0)
    assert (mu, round(sd, 6)) == (3.8, 1.0)


def test_a_short_history_needs_a_larger_order() -> None:
    """The same deviation counts for less when the spread rests on three orders than on twelve."""
    assert t_as_z(6.0, 3.0 + 3.0) < 4.0 < t_as_z(6.0, 12.0 + 3.0)
    assert t_as_z(-5.0, 6.0) == -t_as_z(5.0, 6.0)


def test_the_population_learns_one_customers_spread_not_everyones() -> None:
    """Two kinds of customer, 5 and 200 a typical order, each within 20% of their own."""
    ctx = DetectionContext(DetectionConfig(), PopulationBaseline())
    detector = SpendAnomalyDetector()
    for c in range(40):
        state = CustomerState.new(f"c{c}", START)
        level = 5.0 if c % 2 else 200.0
        for i in range(10):
            detector.on_event(state, order(i, level * (0.8 if i % 2 else 1.2), f"c{c}"), ctx)
    pop = ctx.population
    assert pop.amt_within_var < 0.1 < 1.5 < pop.amt_var
    assert pop.amt_between_var() > 1.5


def test_the_profile_shows_the_score_the_alert_had() -> None:
    """A flagged order is not learned, so the last order's score is the alert's, to the
    rounding the alert carries."""
    ctx = DetectionContext(DetectionConfig(), population())
    detector, state = SpendAnomalyDetector(), CustomerState.new("c1", START)
    amounts = [5.0, 7.0, 6.0, 8.0, 5.5, 7.0, 65.0]
    for i, amount in enumerate(amounts):
        event = order(i, amount)
        verdict = detector.on_event(state, event, ctx)
        add_purchase(state, event.epoch, amount, learn_amount=False)
    assert verdict is not None and verdict.firing
    score = detector.score(state, state.last_ts, ctx)
    assert score.score == pytest.approx(verdict.score, abs=1e-3)
