"""The customer profile: what it shows, and that building it changes nothing."""

from __future__ import annotations

import pickle

import orjson

from anomon.core.alerts import fingerprint
from anomon.core.engine import Engine
from anomon.core.events import EVENT_ADAPTER
from anomon.core.profile import customer_profile
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY, to_rfc3339

T0 = 1.77e9


def _feed(engine: Engine, events: list[dict[str, object]]) -> CustomerState:
    state = None
    for n, raw in enumerate(events):
        event = EVENT_ADAPTER.validate_python({"event_id": f"e{n}", "customer_id": "c9", **raw})
        state = engine.process(state, event).state
    assert state is not None
    return state


def _history() -> list[dict[str, object]]:
    events: list[dict[str, object]] = [
        {"type": "purchase", "ts": to_rfc3339(T0 + 7 * w * DAY), "amount": 30.0}
        for w in range(12)]
    events += [{"type": "complaint", "ts": to_rfc3339(T0 + (80 + i) * DAY), "severity": 5}
               for i in range(3)]
    return events


def test_profile_shows_features_segment_scores_and_open_alerts() -> None:
    engine = Engine()
    state = _feed(engine, _history())
    profile = customer_profile(engine, state, now=T0 + 83 * DAY)
    assert profile["customer_id"] == "c9"
    features = profile["features"]
    assert features["purchases"] == 12 and features["complaints_90d"] == 3
    assert 6.0 <= features["usual_gap_days"] <= 8.5
    assert abs(features["silence_days"] - 6.0) < 0.01
    assert profile["segment"]["tier"] in ("high", "mid", "low")
    spike = profile["scores"]["complaint_spike"]
    assert spike["score"] >= spike["threshold"]
    assert profile["scores"]["drop_off"]["score"] < profile["scores"]["drop_off"]["threshold"]
    assert profile["scores"]["churn_risk"]["score"] is None  # the model has too few labels
    assert profile["open_alerts"] == [{
        "kind": "complaint_spike", "fingerprint": fingerprint("c9", "complaint_spike"),
        "episode": 1, "since": profile["open_alerts"][0]["since"], "evidence": None}]
    orjson.dumps(profile)  # JSON as it is


def test_building_a_profile_changes_neither_the_state_nor_the_models() -> None:
    engine = Engine()
    state = _feed(engine, _history())
    before_state, before_models = state.to_bytes(), pickle.dumps(engine.models_state())
    for days in (83, 120, 400):
        customer_profile(engine, state, now=T0 + days * DAY)
    assert state.to_bytes() == before_state
    assert pickle.dumps(engine.models_state()) == before_models


def test_silence_raises_the_drop_off_score_over_its_threshold() -> None:
    engine = Engine()
    state = _feed(engine, _history()[:12])
    quiet = customer_profile(engine, state, now=T0 + 80 * DAY)["scores"]["drop_off"]
    gone = customer_profile(engine, state, now=T0 + 160 * DAY)["scores"]["drop_off"]
    assert quiet["score"] < quiet["threshold"] <= gone["score"]


def test_profile_scores_are_the_alert_scores() -> None:
    """The profile asks the detector itself: at an alert, both show the same numbers."""
    engine = Engine()
    state = _feed(engine, _history()[:12])
    now = state.last_ts
    while True:
        now += DAY
        alerts = engine.sweep(state, now) if engine.due(state, now) else []
        if alerts:
            break
        assert now < state.last_ts + 200 * DAY
    (alert,) = alerts
    shown = customer_profile(engine, state, now)["scores"][alert.kind.value]
    assert shown["score"] == round(alert.score, 4) or abs(shown["score"] - alert.score) < 2e-3
    assert abs(shown["threshold"] - alert.threshold) < 2e-3
    assert shown["score"] >= shown["threshold"]
