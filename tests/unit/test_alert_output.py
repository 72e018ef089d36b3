"""What people see of an alert: the ``anomon tail`` line, webhook and PagerDuty payloads."""

from __future__ import annotations

from typing import Any

import pytest

from anomon.core.alerts import ALERT_KINDS, Alert, alert_id, fingerprint
from anomon.ops.forward import build_payloads
from anomon.ops.notify.alertmanager import ZERO_TIME, webhook_payloads
from anomon.ops.notify.backoff import backoff_delays, retriable
from anomon.ops.notify.pagerduty import pagerduty_event
from anomon.ops.tail import SCORE_WORDS, format_alert, matches, score_text
from anomon.settings import Settings


def make(customer: str = "c-7", kind: str = "complaint_spike", status: str = "firing",
         episode: int = 1, ts: str = "2026-02-03T04:05:06+00:00", severity: str = "critical",
         tier: str = "high", stage: str = "loyal", score: float = 3.15,
         **extra: Any) -> Alert:
    fp = fingerprint(customer, kind)
    return Alert.model_validate({
        "alert_id": alert_id(fp, episode, status), "fingerprint": fp, "customer_id": customer,
        "kind": kind, "status": status, "severity": severity, "score": score,
        "threshold": 3.0, "ts": ts, "episode": episode,
        "segment": {"tier": tier, "stage": stage},
        "reasons": [{"feature": "complaints_14d", "value": 2, "baseline": 0.04,
                     "text": "2 complaints in 14 days; usually 1.0 a year"},
                    {"feature": "max_severity", "value": 5, "baseline": 2,
                     "text": "highest severity 5 of 5"}],
        "action": "Senior agent contacts the customer today.",
        "model": {"name": "complaint-poisson", "version": "1.1"}, "events": ["e1", "e2"],
        **extra})


# -- anomon tail -------------------------------------------------------------------------------

def test_tail_line_says_who_what_why_within_120_columns() -> None:
    line = format_alert(make())
    assert line == ("event 2026-02-03  CRITICAL  complaint_spike  firing    c-7  high/loyal  "
                    "surprise 3.1  2 complaints in 14 days")
    assert "\n" not in line and len(line) <= 120


def test_verbose_adds_every_reason_and_the_action_on_lines_of_their_own() -> None:
    first, *more = format_alert(make(), verbose=True).splitlines()
    assert first == format_alert(make())
    assert more == ["    why: 2 complaints in 14 days; usually 1.0 a year",
                    "    why: highest severity 5 of 5",
                    "    score: surprise 3.1 (1 in 1.4k), alerts from 3.0",
                    "    action: Senior agent contacts the customer today."]


def test_tail_line_of_a_resolution_has_no_score() -> None:
    line = format_alert(make(status="resolved", severity="info", action="No action needed."))
    assert line == ("event 2026-02-03  INFO      complaint_spike  resolved  c-7  high/loyal  "
                    "2 complaints in 14 days; usually 1.0 a year")
    bare = format_alert(make(status="resolved", severity="info", reasons=[]))
    assert bare.endswith("resolved  c-7  high/loyal  back to their usual behaviour")


@pytest.mark.parametrize(("kind", "score", "shown"), [
    ("drop_off", 6.97, "surprise 7.0 (1 in 9.3M)"),
    ("complaint_spike", 3.0, "surprise 3.0 (1 in 1k)"),
    ("churn_risk", 0.42, "surprise 0.4 (P(churn) 62%)"),
    ("refund_abuse", 3.4, "surprise 3.4 (1 in 2.5k)"),
    ("payment_arrears", 4.2, "surprise 4.2 (1 in 16k)"),
    ("spend_anomaly", 9.9, "surprise 9.9 (< 1 in 1G)"),
])
def test_the_score_is_shown_in_its_unit(kind: str, score: float, shown: str) -> None:
    assert score_text(make(kind=kind, score=score)) == shown


def test_every_kind_has_its_score_in_words() -> None:
    assert set(SCORE_WORDS) == set(ALERT_KINDS)


def test_a_long_customer_id_and_reason_still_fit_in_120_columns() -> None:
    long = make(customer="customer-" + "9" * 40, tier="high", stage="at_risk",
                reasons=[{"feature": "x", "value": 1, "baseline": 0, "text": "word " * 60}])
    line = format_alert(long)
    assert len(line) == 120 and line.endswith("…")


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, True),
    ({"kinds": ["complaint_spike", "drop_off"]}, True),
    ({"kinds": ["drop_off"]}, False),
    ({"severities": ["CRITICAL"]}, True),
    ({"severities": ["info", "warning"]}, False),
    ({"segments": ["high"]}, True),
    ({"segments": ["loyal"]}, True),
    ({"segments": ["high/loyal"]}, True),
    ({"segments": ["high/new", "mid"]}, False),
    ({"kinds": ["complaint_spike"], "segments": ["low"]}, False),
])
def test_tail_filters(filters: dict[str, list[str]], expected: bool) -> None:
    assert matches(make(), **filters) is expected


# -- Alertmanager webhook ----------------------------------------------------------------------

def test_webhook_payload_has_alertmanagers_shape() -> None:
    [payload] = webhook_payloads([make()], receiver="anomon", external_url="http://grafana")
    assert set(payload) == {"version", "groupKey", "truncatedAlerts", "status", "receiver",
                            "groupLabels", "commonLabels", "commonAnnotations", "externalURL",
                            "alerts"}
    assert payload["version"] == "4" and payload["status"] == "firing"
    fp = fingerprint("c-7", "complaint_spike")
    assert payload["groupLabels"] == {"fingerprint": fp}
    assert payload["groupKey"] == f'{{}}:{{fingerprint="{fp}"}}'
    [alert] = payload["alerts"]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt",
                          "generatorURL", "fingerprint"}
    assert alert["labels"] == {"alertname": "CustomerChange", "kind": "complaint_spike",
                               "severity": "critical", "tier": "high", "stage": "loyal",
                               "customer_id": "c-7", "fingerprint": fp, "episode": "1"}
    assert all(isinstance(v, str) for v in alert["annotations"].values())
    assert "2 complaints in 14 days" in alert["annotations"]["summary"]
    assert "highest severity 5 of 5" in alert["annotations"]["description"]
    assert alert["annotations"]["action"].startswith("Senior agent")
    assert alert["startsAt"] == "2026-02-03T04:05:06+00:00" and alert["endsAt"] == ZERO_TIME
    assert payload["commonLabels"] == alert["labels"]


def test_webhook_groups_by_fingerprint_and_keeps_each_episodes_latest() -> None:
    a_fire = make("a")
    b_fire = make("b", kind="drop_off", severity="warning")
    a_done = make("a", status="resolved", severity="info", ts="2026-02-20T00:00:00+00:00",
                  action="No action needed.")
    a_again = make("a", episode=2, ts="2026-03-20T00:00:00+00:00")
    payloads = webhook_payloads([a_fire, b_fire, a_done, a_again])
    assert [p["groupLabels"]["fingerprint"] for p in payloads] == [a_fire.fingerprint,
                                                                  b_fire.fingerprint]
    first = payloads[0]
    assert first["status"] == "firing"  # episode 2 is firing
    by_episode = {a["labels"]["episode"]: a for a in first["alerts"]}
    assert by_episode["1"]["status"] == "resolved"
    assert by_episode["1"]["startsAt"] == a_fire.ts and by_episode["1"]["endsAt"] == a_done.ts
    assert by_episode["1"]["labels"]["severity"] == "critical"  # as it fired
    assert by_episode["1"]["annotations"]["resolution"] == "No action needed."
    assert by_episode["2"]["status"] == "firing" and by_episode["2"]["endsAt"] == ZERO_TIME
    assert "episode" not in first["commonLabels"] and first["commonLabels"]["customer_id"] == "a"


def test_a_resolution_alone_is_a_resolved_payload() -> None:
    done = make(status="resolved", severity="info", ts="2026-02-20T00:00:00+00:00")
    [payload] = webhook_payloads([done])
    [alert] = payload["alerts"]
    assert payload["status"] == alert["status"] == "resolved"
    assert alert["endsAt"] == done.ts and alert["startsAt"] <= alert["endsAt"]


# -- PagerDuty Events v2 -----------------------------------------------------------------------

def test_pagerduty_trigger_and_resolve_share_the_fingerprint_as_dedup_key() -> None:
    fire, done = make(), make(status="resolved", severity="info")
    trigger, resolve = pagerduty_event(fire, "R0UT1NG"), pagerduty_event(done, "R0UT1NG")
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == fire.fingerprint
    assert trigger["routing_key"] == resolve["routing_key"] == "R0UT1NG"
    body = trigger["payload"]
    assert {"summary", "source", "severity"} <= set(body)
    assert body["severity"] in ("critical", "error", "warning", "info")
    assert 0 < len(body["summary"]) <= 1024 and body["timestamp"] == fire.ts
    assert body["custom_details"]["action"] == fire.action
    assert [r["feature"] for r in body["custom_details"]["reasons"]] == ["complaints_14d",
                                                                          "max_severity"]
    assert "payload" not in resolve


def test_pagerduty_summary_is_capped() -> None:
    long = make(reasons=[{"feature": "x", "value": 1, "baseline": 0, "text": "y" * 5000}])
    assert len(pagerduty_event(long, "k")["payload"]["summary"]) == 1024


def test_the_format_is_chosen_by_configuration() -> None:
    alerts = [make(), make(status="resolved", severity="info")]
    pd = build_payloads(alerts, Settings(forward_format="pagerduty",
                                         forward_routing_key="secret-key"))
    assert [p["event_action"] for p in pd] == ["trigger", "resolve"]
    assert pd[0]["routing_key"] == "secret-key"
    am = build_payloads(alerts, Settings(forward_format="webhook"))
    assert len(am) == 1 and am[0]["version"] == "4"
    assert "secret-key" not in repr(Settings(forward_routing_key="secret-key"))


# -- retries -----------------------------------------------------------------------------------

def test_backoff_doubles_up_to_a_cap_and_only_transient_failures_retry() -> None:
    assert backoff_delays(0.5, attempts=8) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert backoff_delays(1.0, attempts=1) == []
    assert [s for s in (200, 202, 400, 401, 404, 408, 413, 429, 500, 502, 503) if retriable(s)
            ] == [408, 429, 500, 502, 503]


# -- segment and severity: one way everywhere ------------------------------------------------

def test_a_customers_tier_is_the_same_in_the_alert_and_in_the_profile_read_later() -> None:
    """The tier is the customer's as of their last purchase: silence does not lower it."""
    from anomon.core.engine import Engine
    from anomon.core.events import EVENT_ADAPTER
    from anomon.core.profile import customer_profile
    from anomon.core.timeutil import DAY, to_rfc3339

    t0, engine, states = 1.77e9, Engine(), {}
    n = 0
    for week in range(20):  # 60 ordinary customers give the population its cut points
        for c in range(60):
            n += 1
            event = EVENT_ADAPTER.validate_python({
                "event_id": f"e{n}", "customer_id": f"p{c}", "type": "purchase",
                "ts": to_rfc3339(t0 + (7 * week + c / 60) * DAY), "amount": 20.0 + c})
            states[f"p{c}"] = engine.process(states.get(f"p{c}"), event).state
    state = None
    for week in range(20):  # a top customer buying weekly, then silent
        n += 1
        event = EVENT_ADAPTER.validate_python({
            "event_id": f"e{n}", "customer_id": "vip", "type": "purchase",
            "ts": to_rfc3339(t0 + (7 * week + 0.5) * DAY), "amount": 100.0})
        state = engine.process(state, event).state
    assert state is not None
    fired = []
    for day in range(140, 400, 1):
        fired += [a for a in engine.sweep(state, t0 + day * DAY) if a.kind == "drop_off"]
        if fired:
            break
    assert fired and fired[0].segment.tier == "high" and fired[0].severity == "critical"
    for later in (30, 200):  # a profile read much later, the customer still silent
        profile = customer_profile(engine, state, now=t0 + (day + later) * DAY)
        assert profile["segment"]["tier"] == fired[0].segment.tier


def _readme_severity_table() -> dict[tuple[str, str], str]:
    """README's severity table: {(kind, column): severity}."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("<!-- severity -->")[1].strip().split("\n\n")[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines()]
    header = [cell.strip() for cell in rows[0]]
    table = {}
    for row in rows[2:]:
        cells = [cell.strip().strip("`") for cell in row]
        for kind in cells[0].split(", "):
            for column, severity in zip(header[1:], cells[1:], strict=True):
                table[(kind.strip("`"), column)] = severity
    return table


def test_the_severity_rule_in_the_readme_is_the_one_in_the_code() -> None:
    from anomon.core.policy import severity_for
    from anomon.core.segments import STAGES

    table = _readme_severity_table()
    assert {kind for kind, _ in table} == set(ALERT_KINDS)
    for kind in ALERT_KINDS:
        for tier in ("high", "mid", "low"):
            for stage in STAGES:
                column = tier if tier != "low" else (
                    "low, new or churned" if stage in ("new", "churned") else "low, other")
                assert severity_for(kind, tier, stage) == table[(kind, column)], (
                    kind, tier, stage)
