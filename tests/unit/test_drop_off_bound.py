"""Drop-off's cheap lower bound of its next check, and the engine's use of it."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from scipy.special import betainc
from tests.unit.conftest import History, weekly

from anomon.core.alerts import Alert
from anomon.core.detectors.drop_off import BOUND_GAPS, BOUND_MIN_P
from anomon.core.detectors.renewal import MAX_SHAPE, MIN_SHAPE
from anomon.core.engine import Engine
from anomon.core.timeutil import DAY
from anomon.lab.matrix import VARIANTS
from anomon.lab.synthetic.generator import generate
from anomon.replay import Replayer

VARIANT_NAMES = ("base", "bursty", "regular", "visits-independent")


def test_a_silence_of_the_bound_is_never_surprising_enough_to_alarm() -> None:
    """The survival at ``BOUND_GAPS`` expected gaps, over every shape and rate certainty.

    ``alpha`` runs from the weakest prior (0.5 pseudo-events) to a rate known
    almost exactly; the scale cancels (the silence is in expected gaps).
    """
    alpha = np.exp(np.linspace(np.log(0.5), np.log(1e7), 500))
    shape = np.linspace(MIN_SHAPE, MAX_SHAPE, 200)
    a, k = np.meshgrid(alpha, shape)
    survival = betainc(a + 1.0, k, 1.0 / (1.0 + k * BOUND_GAPS / a))
    assert survival.min() >= BOUND_MIN_P


def _engine(exact: bool) -> Engine:
    """An engine whose population rhythm stays at its prior.

    With the population learning, a customer woken at a bound is scheduled with
    the population as it is then, not as it was at their last order; fixed, the
    two schedules must agree exactly.
    """
    engine = Engine()
    if exact:  # every detector's exact next check, and every one asked at a sweep,
        # as before the bound existed
        engine._exact, engine._bounded = list(engine.detectors), []
        engine._sweep_order = [(d, None) for d in engine.detectors]
    engine.population.observe_gap = lambda log_gap: None  # type: ignore[method-assign]
    engine.population.observe_rhythm = lambda channel, log_mean_gap: None  # type: ignore[method-assign]
    return engine


def _replay(variant: str, exact: bool) -> tuple[list[Alert], Replayer]:
    config = next(v for v in VARIANTS if v.name == variant).config(customers=150)
    alerts: list[Alert] = []
    replayer = Replayer(_engine(exact), on_alert=alerts.append)
    replayer.run((orjson.dumps(e) for e in generate(config)), sort=False,
                 until=float(config.end_epoch))
    return alerts, replayer


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_scheduling_at_the_bound_changes_no_alert(variant: str) -> None:
    """Bounded and exact scheduling raise the same alerts at the same times (and so does
    asking every detector at every sweep)."""
    bounded, replayer = _replay(variant, exact=False)
    exact, _ = _replay(variant, exact=True)
    assert [a.to_bytes() for a in bounded] == [a.to_bytes() for a in exact]
    assert any(a.kind.value == "drop_off" for a in exact)
    # and the bound is one: never after the exact check, for any customer at the end
    engine = replayer.engine
    for state in replayer.states.values():
        now = state.last_ts
        bound = engine.drop_off.earliest_check(state, now, engine.ctx)
        assert bound <= engine.drop_off.next_check(state, now, engine.ctx)


def _spy_sweeps(engine: Engine) -> list[str]:
    asked: list[str] = []
    for detector in engine.detectors:
        def spy(*args: object, _kind: str = detector.kind, _sweep: object = detector.on_sweep
                ) -> object:
            asked.append(_kind)
            return _sweep(*args)  # type: ignore[operator]
        detector.on_sweep = spy  # type: ignore[method-assign,assignment]
    return asked


def test_a_customer_woken_at_the_bound_is_rescheduled_without_a_sweep(history: History) -> None:
    history.purchases("c1", weekly(20))
    for day in weekly(20):
        history.add("c1", day + 0.1, "interaction", kind="visit")
    history.replay()
    engine = history.replayer.engine
    state = history.replayer.states["c1"]
    assert state.bound_from_ts is not None
    assert state.bound_from_ts == state.last_purchase_ts
    exact = engine._next_check(state, state.bound_from_ts)
    assert state.last_ts < state.next_check_ts < exact
    asked = _spy_sweeps(engine)
    assert engine.sweep(state, state.next_check_ts + 1.0) == []
    assert asked == []
    assert (state.next_check_ts, state.bound_from_ts) == (exact, None)
    engine.sweep(state, exact + DAY)  # now the detectors are asked
    assert "drop_off" in asked


def test_a_sweep_for_another_detector_does_not_ask_drop_off_before_its_bound(
        history: History) -> None:
    history.purchases("c1", weekly(20))
    history.replay()
    engine = history.replayer.engine
    state = history.replayer.states["c1"]
    assert state.last_purchase_ts is not None
    now = state.last_purchase_ts + DAY
    bound = engine.drop_off.earliest_check(state, now, engine.ctx)
    assert now < bound
    asked = _spy_sweeps(engine)
    state.next_check_ts, state.bound_from_ts = now, None  # as if another detector were due
    engine.sweep(state, now)
    assert "drop_off" not in asked
    assert "churn_risk" in asked
    asked.clear()
    state.next_check_ts, state.bound_from_ts = bound, None
    engine.sweep(state, bound)
    assert "drop_off" in asked
