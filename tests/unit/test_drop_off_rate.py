"""Drop-off's purchase rate comes from the count of gaps, and declines need a rate to fall from."""

from __future__ import annotations

import random

import orjson
import pytest

from anomon.core.detection_config import DetectionConfig
from anomon.core.detectors.base import DetectionContext
from anomon.core.detectors.drop_off import DropOffDetector
from anomon.core.features import add_purchase, basket_gaps, merged_orders
from anomon.core.population import PopulationBaseline
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY


def _customer(gaps: list[float]) -> tuple[CustomerState, DropOffDetector, DetectionContext]:
    """A customer who ordered after each of ``gaps`` (days), learned by drop-off order by order."""
    ctx = DetectionContext(DetectionConfig(), PopulationBaseline())
    state, detector = CustomerState.new("c1", 0.0), DropOffDetector()
    t = 0.0
    add_purchase(state, t, 20.0)
    for gap in gaps:
        t += gap * DAY
        add_purchase(state, t, 20.0)
        detector.learn(state, ctx)
    return state, detector, ctx


@pytest.mark.parametrize("seed", range(8))
def test_a_bursty_buyers_expected_gap_is_the_mean_of_their_gaps(seed: int) -> None:
    """Shape 0.7, mean 6 days: the mean log gap, read with a misjudged shape, is off by up to 30%.

    Forty orders, all in the purchase window: the count is worth much more than
    the prior, so the expected gap is within 3% of the mean gap.
    """
    rng = random.Random(seed)
    state, detector, ctx = _customer([rng.gammavariate(0.7, 6.0 / 0.7) for _ in range(40)])
    gaps, days = basket_gaps(state)
    assert gaps >= 25  # a few orders share a basket
    model = detector.model(state, "purchase", ctx)
    assert model.expected_gap == pytest.approx(days / gaps, rel=0.03)


def test_the_decline_test_starts_once_the_customer_has_enough_gaps() -> None:
    needed = DetectionConfig().drop_off.decline_min_gaps
    state, _, _ = _customer([14.0] * (needed - 1))
    assert state.decline[1] == 0.0  # no reference rate: no decline test yet
    state, _, _ = _customer([14.0] * needed)
    assert 0.0 < state.decline[1] < 1.0 / 14.0  # a cautious reference, below the rate


def test_a_burst_of_early_orders_is_no_rate_to_fall_from() -> None:
    """Seven orders in the first fortnight, then one every 11 days: the reference waits until
    the orders span ``decline_min_days``, and the customer's steady pace is no decline.

    From the burst's rate the reference would be a gap of about 3 days, and 20 orders at 11
    days would pile up decline evidence far past any threshold, never to resolve.
    """
    cfg = DetectionConfig().drop_off
    burst = [2.0] * 6
    state, _, _ = _customer(burst)
    assert state.gap_n >= cfg.decline_min_gaps
    assert state.decline[1] == 0.0  # six gaps, but twelve days: no reference yet
    state, _, _ = _customer(burst + [11.0] * 20)
    assert state.decline[1] > 0.0  # the orders now span enough days
    assert state.decline[0] == 0.0  # and buying every 11 days is no evidence of a decline


def test_a_daily_buyers_full_window_is_rate_enough() -> None:
    """48 orders a day apart fill the purchase window before it spans ``decline_min_days``:
    the decline test starts anyway."""
    state, _, _ = _customer([1.0] * 60)
    assert basket_gaps(state)[1] < DetectionConfig().drop_off.decline_min_days
    assert 0.0 < state.decline[1] < 1.0


@pytest.mark.parametrize("seed", range(6))
def test_the_basket_gaps_kept_as_orders_come_and_go_equal_a_recount(seed: int) -> None:
    """Orders of 2025 in bursts, some late, over two years: the window is capped (48) and
    expires (a year), and its gaps kept order by order are exactly those counted afresh."""
    rng = random.Random(seed)
    state = CustomerState.new("c1", 1.7e9)
    t = 1.7e9
    for _ in range(400):
        t += rng.choice([0.05, 0.3, 1.0, 4.0]) * rng.random() * DAY
        late = rng.random() < 0.1
        ts = t - rng.random() * 2 * DAY if late else t
        add_purchase(state, ts, 20.0)
        kept = (state.basket_n, state.basket_s, state.basket_m)
        kept_logs = state.basket_l
        recount = CustomerState.from_bytes(state.to_bytes())
        recount.basket_n = -1  # as a state stored before the fields: counted on first read
        assert basket_gaps(recount) == basket_gaps(state)
        assert merged_orders(recount)[0] == merged_orders(state)[0]
        assert merged_orders(recount)[1] == pytest.approx(merged_orders(state)[1], abs=1e-9)
        assert kept[0] == -1 or kept == (recount.basket_n, recount.basket_s, recount.basket_m)
        assert kept[0] == -1 or kept_logs == pytest.approx(recount.basket_l, abs=1e-9)
    assert len(state.purchases) == 48


def test_a_state_stored_before_the_merged_orders_were_kept_counts_them_on_first_read() -> None:
    state = CustomerState.new("c1", 1.7e9)
    for day in (0.0, 5.0, 5.1, 12.0, 12.2, 20.0):
        add_purchase(state, 1.7e9 + day * DAY, 20.0)
    merged, logs = merged_orders(state)
    assert merged == 2
    older = orjson.loads(state.to_bytes())[:-2]  # the array before the two fields
    restored = CustomerState.from_bytes(orjson.dumps(older))
    assert restored.basket_m == -1
    assert merged_orders(restored) == (merged, pytest.approx(logs))
    add_purchase(restored, 1.7e9 + 20.1 * DAY, 20.0)
    assert merged_orders(restored)[0] == 3
