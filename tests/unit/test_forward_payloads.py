"""What ``anomon forward`` posts, against the tools' documented schemas (no network here).

The schemas (``tests/schemas/``) are checked first to reject what the
documentation rejects, so a schema that accepts anything cannot pass these.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from anomon.core.alerts import Alert, alert_id, fingerprint
from anomon.ops.forward import build_payloads, wanted
from anomon.ops.notify.alertmanager_api import ActiveAlerts
from anomon.ops.notify.backoff import jittered, retry_after, wait_before_retry
from anomon.ops.notify.pagerduty import pagerduty_event
from anomon.settings import Settings

pytest.importorskip("jsonschema", reason="the payload schema checks need the dev extra")

from payload_schemas import ALERTMANAGER, PAGERDUTY, problems

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def make(customer: str = "c-1", kind: str = "drop_off", status: str = "firing",
         severity: str = "critical", ts: str = "2026-03-01T00:00:00+00:00",
         tier: str = "high", stage: str = "loyal", episode: int = 1) -> Alert:
    fp = fingerprint(customer, kind)
    return Alert.model_validate({
        "alert_id": alert_id(fp, episode, status), "fingerprint": fp, "customer_id": customer,
        "kind": kind, "status": status, "severity": severity, "score": 0.9995,
        "threshold": 0.998, "ts": ts, "episode": episode,
        "segment": {"tier": tier, "stage": stage},
        "reasons": [{"feature": "silence_days", "value": 40, "baseline": 7,
                     "text": "no purchase for 40 days; usually buys every 7 days"}],
        "action": "Call today.", "model": {"name": "rhythm-gamma", "version": "1.1"},
        "events": ["e1"]})


@pytest.mark.parametrize(("name", "body", "where"), [
    (ALERTMANAGER, [{"annotations": {"a": "b"}}], "labels"),
    (ALERTMANAGER, [{"labels": {"a": 1}}], "1 is not of type 'string'"),
    (ALERTMANAGER, [{"labels": {"a": "b"}, "endsAt": "0001-01-01"}], "is not a 'date-time'"),
    (ALERTMANAGER, [{"labels": {"a": "b"}, "generatorURL": ""}], "is not a 'uri'"),
    (ALERTMANAGER, [{"labels": {"bad-name": "b"}}], "does not match"),
    (ALERTMANAGER, {"version": "4", "alerts": []}, "is not of type 'array'"),
    (PAGERDUTY, {"routing_key": "k", "event_action": "trigger"}, "payload"),
    (PAGERDUTY, {"routing_key": "k", "event_action": "resolve"}, "dedup_key"),
    (PAGERDUTY, {"routing_key": "k", "event_action": "trigger", "payload": {
        "summary": "s", "source": "x", "severity": "high"}}, "severity"),
    (PAGERDUTY, {"routing_key": "k", "event_action": "trigger", "payload": {
        "summary": "s" * 1025, "source": "x", "severity": "info"}}, "summary"),
    (PAGERDUTY, {"routing_key": "k", "event_action": "close", "dedup_key": "d"}, "close"),
])
def test_the_schemas_reject_what_the_documentation_rejects(name: str, body: Any,
                                                           where: str) -> None:
    found = problems(name, body)
    assert found and any(where in p for p in found), found


def test_alertmanager_api_bodies_fit_postable_alerts() -> None:
    active = ActiveAlerts(resend_s=60.0)
    fired = [make(), make("c-2", "payment_arrears", severity="warning", tier="mid",
                          stage="active")]
    first = active.update(fired, now=NOW)
    resolved = active.update([make(status="resolved", severity="info",
                                   ts="2026-03-05T00:00:00+00:00")], now=NOW)
    resend = active.current(now=NOW)
    for body in (first, resolved, resend):
        assert body and problems(ALERTMANAGER, body) == []
    assert [a["labels"]["customer_id"] for a in resend] == ["c-2"]
    assert resolved[0]["endsAt"] == "2026-03-05T00:00:00+00:00"
    assert resolved[0]["labels"] == first[0]["labels"]  # Alertmanager matches it by labels


def test_webhook_payloads_are_not_alertmanager_api_bodies() -> None:
    # the webhook mode is what Alertmanager sends, not what it takes: its API refuses it
    [payload] = build_payloads([make()], Settings(forward_format="webhook"))
    assert payload["version"] == "4"
    assert problems(ALERTMANAGER, payload) and problems(ALERTMANAGER, payload["alerts"])


@pytest.mark.parametrize("severity", ["info", "warning", "critical"])
def test_pagerduty_events_fit_events_v2(severity: str) -> None:
    for alert in (make(severity=severity), make(status="resolved", severity=severity)):
        assert problems(PAGERDUTY, pagerduty_event(alert, "R0UTINGKEY")) == []


@pytest.mark.parametrize(("settings", "kept"), [
    ({}, {"a", "b", "c"}),
    ({"forward_kinds": "drop_off"}, {"a", "c"}),
    ({"forward_severities": "critical, warning"}, {"a", "b"}),
    ({"forward_segments": "high/loyal"}, {"a"}),
    ({"forward_segments": "low,active"}, {"b", "c"}),
    ({"forward_kinds": "drop_off", "forward_severities": "info"}, {"c"}),
])
def test_filters(settings: dict[str, str], kept: set[str]) -> None:
    alerts = {"a": make("a"), "b": make("b", "churn_risk", severity="warning", stage="active"),
              "c": make("c", severity="info", tier="low", stage="new")}
    s = Settings(**settings)  # type: ignore[arg-type]
    assert {k for k, a in alerts.items() if wanted(a, s)} == kept


def test_jitter_spreads_retries_and_retry_after_wins_when_longer() -> None:
    rng = random.Random(7)
    waits = [jittered(8.0, rng) for _ in range(200)]
    assert 4.0 <= min(waits) < 4.5 and 7.5 < max(waits) <= 8.0
    assert len({round(w, 3) for w in waits}) > 150
    assert wait_before_retry(8.0, "30", rng) == 30.0
    assert 4.0 <= wait_before_retry(8.0, "1", rng) <= 8.0
    assert retry_after("Thu, 01 Jan 2026 00:01:00 GMT",
                       now=datetime(2026, 1, 1, tzinfo=UTC).timestamp()) == 60.0


def test_a_resolution_follows_its_firing_through_the_filters() -> None:
    from anomon.ops.forward import Gate

    gate = Gate(Settings(forward_severities="critical", forward_segments="loyal"))
    fired = make(severity="critical", stage="loyal")
    ignored = make("c-9", severity="warning", stage="loyal")
    # resolutions are info and the customer may have moved on to another stage
    assert [gate.admit(a) for a in (fired, ignored)] == [True, False]
    assert gate.admit(make(status="resolved", severity="info", stage="active"))
    assert not gate.admit(make("c-9", status="resolved", severity="info", stage="active"))
    # one never seen (before a restart): the kind and segment filters decide
    assert gate.admit(make("c-5", status="resolved", severity="info", stage="loyal"))
