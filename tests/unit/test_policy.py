"""The alert policy: one alert per change, cooldown, resolve, deterministic ids."""

from __future__ import annotations

from anomon.core.alerts import ModelRef, Reason, Segment
from anomon.core.detectors.base import Verdict
from anomon.core.policy import AlertPolicy, severity_for
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY

SEG = Segment(tier="high", stage="active")
MODEL = ModelRef(name="test", version="1")


def fire(kind: str = "complaint_spike") -> Verdict:
    return Verdict(kind, firing=True, score=0.99, threshold=0.9,
                   reasons=[Reason(feature="f", value=3, baseline=0.1)], events=["e9"])


def clear(kind: str = "complaint_spike") -> Verdict:
    return Verdict(kind, firing=False)


def test_one_alert_per_episode_then_resolved() -> None:
    policy, state = AlertPolicy(cooldown_days=14), CustomerState.new("c1", now=0.0)
    first = policy.apply(state, fire(), 1 * DAY, SEG, MODEL)
    assert first is not None and first.status == "firing" and first.episode == 1
    assert policy.apply(state, fire(), 2 * DAY, SEG, MODEL) is None
    resolved = policy.apply(state, clear(), 5 * DAY, SEG, MODEL)
    assert resolved is not None and resolved.status == "resolved"
    assert resolved.fingerprint == first.fingerprint and resolved.alert_id != first.alert_id
    assert policy.apply(state, clear(), 6 * DAY, SEG, MODEL) is None


def test_cooldown_suppresses_a_refire_then_allows_it() -> None:
    policy, state = AlertPolicy(cooldown_days=14), CustomerState.new("c1", now=0.0)
    policy.apply(state, fire(), 1 * DAY, SEG, MODEL)
    policy.apply(state, clear(), 3 * DAY, SEG, MODEL)
    assert policy.apply(state, fire(), 10 * DAY, SEG, MODEL) is None
    assert policy.suppressed == 1
    again = policy.apply(state, fire(), 18 * DAY, SEG, MODEL)
    assert again is not None and again.episode == 2


def test_ids_are_deterministic_across_runs() -> None:
    def run() -> list[str]:
        policy, state = AlertPolicy(), CustomerState.new("c1", now=0.0)
        alerts = [policy.apply(state, fire(), DAY, SEG, MODEL),
                  policy.apply(state, clear(), 2 * DAY, SEG, MODEL)]
        return [a.alert_id for a in alerts if a is not None]

    assert run() == run()
    assert len(set(run())) == 2


def test_kinds_have_separate_fingerprints() -> None:
    policy, state = AlertPolicy(), CustomerState.new("c1", now=0.0)
    a = policy.apply(state, fire("complaint_spike"), DAY, SEG, MODEL)
    b = policy.apply(state, fire("refund_abuse"), DAY, SEG, MODEL)
    assert a is not None and b is not None and a.fingerprint != b.fingerprint


def test_severity_follows_value_tier() -> None:
    assert severity_for("drop_off", "high", "loyal") == "critical"
    assert severity_for("drop_off", "low", "new") == "info"
    assert severity_for("payment_arrears", "low", "active") == "warning"


def test_alert_serialises_to_the_contract() -> None:
    policy, state = AlertPolicy(), CustomerState.new("c1", now=0.0)
    alert = policy.apply(state, fire(), DAY, SEG, MODEL)
    assert alert is not None
    data = alert.model_validate_json(alert.to_bytes()).model_dump(mode="json")
    for key in ("alert_id", "fingerprint", "customer_id", "kind", "status", "severity", "score",
                "threshold", "ts", "segment", "reasons", "action", "model", "events"):
        assert key in data
    assert data["segment"] == {"tier": "high", "stage": "active"}
    assert data["reasons"][0]["feature"] == "f"
