"""The shared models: late labels train the churn model; checkpoints round-trip or are refused."""

from __future__ import annotations

import pickle

import pytest
from tests.unit.conftest import History, weekly

from anomon.core.detection_config import DetectionConfig
from anomon.core.engine import MODELS_VERSION, Engine
from anomon.core.learners.silence_unscaled import SilenceUnscaled
from anomon.core.population import STORED, PopulationBaseline


def churn_config() -> DetectionConfig:
    """Learn at every label (no rehearsal skipping) so one label shows in the weights."""
    cfg = DetectionConfig()
    return cfg.model_copy(update={"churn_risk": cfg.churn_risk.model_copy(
        update={"rehearse_every": 1})})


def weights(engine: Engine) -> dict[str, float]:
    return dict(engine.churn.model.model["LogisticRegression"].weights)


def test_a_label_resolved_after_the_horizon_trains_the_model() -> None:
    h = History()
    h.purchases("gone", weekly(5))  # then silent: its last snapshot resolves as 1 after 90 days
    before = Engine(churn_config())
    h.replay(until_day=100, engine=before)
    assert before.churn.labels == {0: 4, 1: 0}
    after = Engine(churn_config())
    h.replay(until_day=140, engine=after)
    assert after.churn.labels[1] >= 1
    assert weights(after) != weights(before)


def test_a_return_resolves_the_pending_label_as_zero() -> None:
    h = History()
    h.purchases("back", [0.0, 60.0])
    engine = Engine(churn_config())
    h.replay(engine=engine)
    # the snapshot at the first order and the one after 30 silent days both resolve as 0
    assert engine.churn.labels == {0: 2, 1: 0}
    assert len(h.replayer.states["back"].pending) == 1  # the second purchase's own snapshot


def test_a_checkpoint_round_trips() -> None:
    h = History()
    for n in range(40):
        h.purchases(f"c{n}", weekly(6 + n % 5, start=n % 7))
    engine = Engine()
    h.replay(until_day=200, engine=engine)
    restored = Engine()
    restored.load_models_state(pickle.loads(pickle.dumps(engine.models_state())))
    state = h.replayer.states["c3"]
    now = state.last_ts + 30 * 86400
    assert restored.churn.probability_at(state, now, restored.ctx) == (
        engine.churn.probability_at(state, now, engine.ctx))
    assert restored.population.rate_prior("purchase") == engine.population.rate_prior("purchase")
    assert restored.churn.labels == engine.churn.labels
    assert plain(restored.population.state_dict()) == plain(engine.population.state_dict())


def plain(state: dict) -> dict:
    """River statistics compared by value."""
    return {k: v if isinstance(v, dict) else v.get() if hasattr(v, "get") else v
            for k, v in state.items()}


def test_a_checkpoint_of_another_version_is_refused() -> None:
    data = Engine().models_state()
    data["version"] = MODELS_VERSION + 1
    with pytest.raises(ValueError, match="version"):
        Engine().load_models_state(data)


def test_the_population_checkpoint_names_every_attribute_but_the_prior_cache() -> None:
    """``STORED`` lists the attributes by name (a compiled build has no ``__dict__``): one
    added to the baseline and not to it would be lost at every restart."""
    assert list(vars(PopulationBaseline())) == [*STORED, "_priors"]


def test_a_checkpoint_naming_the_churn_scaler_where_it_was_still_loads() -> None:
    """The scaler moved to ``core.learners``; checkpoints written before name the churn module."""
    engine = Engine()
    old = pickle.dumps(engine.churn.model, protocol=0).replace(
        b"anomon.core.learners.silence_unscaled", b"anomon.core.detectors.churn_risk")
    assert b"anomon.core.detectors.churn_risk\nSilenceUnscaled" in old
    scaler = next(iter(pickle.loads(old).model.steps.values()))
    assert isinstance(scaler, SilenceUnscaled)
