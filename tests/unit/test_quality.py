"""The quality scorer on hand-written alerts and truth: exact recall, delay, false alarms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from anomon.lab.quality import customer_days, score, score_files

ONSET = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


def at(days: float) -> str:
    return (ONSET + timedelta(days=days)).isoformat()


def alert(customer: str, kind: str, days: float, status: str = "firing") -> dict[str, Any]:
    return {"customer_id": customer, "kind": kind, "status": status, "ts": at(days),
            "severity": "high"}


TRUTH: list[dict[str, Any]] = [
    {"customer_id": "c1", "kind": "drop_off", "onset": at(0), "mode": "decline", "detail": "x"},
    {"customer_id": "c2", "kind": "complaint_spike", "onset": at(0), "detail": "x"},
    {"customer_id": "c3", "kind": "refund_abuse", "onset": at(0), "detail": "x"},
    {"customer_id": "c4", "kind": "drop_off", "onset": at(0), "mode": "stop", "detail": "x"},
    {"customer_id": "c4", "kind": "churn_risk", "onset": at(0), "mode": "stop", "detail": "x"},
    {"customer_id": "c7", "kind": "payment_arrears", "onset": at(0), "detail": "x"},
]

ALERTS: list[dict[str, Any]] = [
    alert("c1", "drop_off", 10),             # caught, 10 days late
    alert("c1", "drop_off", 10),             # duplicate: counted once
    alert("c1", "drop_off", 12, "resolved"),  # resolved messages are not alerts
    alert("c1", "churn_risk", 5),            # a decliner is a churn risk: related, no false alarm
    alert("c2", "complaint_spike", -2),      # before onset - 1 day: false alarm, no catch
    alert("c2", "complaint_spike", -0.5),    # inside the 1-day tolerance: caught, delay -0.5
    alert("c3", "refund_abuse", 61),         # after the 60-day window: late, neither
    alert("c3", "spend_anomaly", 3),         # wrong kind for c3: false alarm
    alert("c4", "churn_risk", 20),           # caught
    alert("c5", "payment_arrears", 1),       # no change at all: false alarm
    alert("c6", "churn_risk", 1),            # no change at all: false alarm
    alert("c7", "payment_arrears", -1),      # exactly onset - 1 day: caught
    alert("c7", "payment_arrears", 30),      # a later firing of the same change: fine
]


def test_recall_delay_and_false_alarms_exact() -> None:
    report = score(ALERTS, TRUTH, customer_days=2000.0)
    got = {k: (s.changes, s.caught, s.recall, s.median_delay_days, s.false_alarms, s.late_alerts)
           for k, s in report.kinds.items()}
    assert got == {
        "drop_off": (2, 1, 0.5, 10.0, 0, 0),
        "churn_risk": (1, 1, 1.0, 20.0, 1, 0),
        "complaint_spike": (1, 1, 1.0, -0.5, 1, 0),
        "refund_abuse": (1, 0, 0.0, None, 0, 1),
        "payment_arrears": (1, 1, 1.0, -1.0, 1, 0),
        "spend_anomaly": (0, 0, None, None, 1, 0),
    }
    assert report.alerts == 11
    assert report.false_alarms == 4
    assert report.false_alarms_per_1000 == pytest.approx(2.0)
    assert [m["customer_id"] + "/" + m["kind"] for m in report.missed] == [
        "c3/refund_abuse", "c4/drop_off"]


def test_goals() -> None:
    report = score(ALERTS, TRUTH, customer_days=2000.0)
    passed = {k: s.passed for k, s in report.kinds.items()}
    assert passed == {"drop_off": False, "churn_risk": True, "complaint_spike": True,
                      "refund_abuse": False, "payment_arrears": True, "spend_anomaly": None}
    assert report.kinds["drop_off"].goal == 0.8 and report.kinds["refund_abuse"].goal == 0.95
    assert not report.false_alarm_goal_passed and not report.passed
    relaxed = score(ALERTS, TRUTH, customer_days=8000.0,
                    recall_goals={"drop_off": 0.5, "refund_abuse": 0.0})
    assert relaxed.false_alarms_per_1000 == pytest.approx(0.5)
    assert relaxed.false_alarm_goal_passed and relaxed.passed


def test_just_outside_the_early_tolerance_is_a_false_alarm() -> None:
    truth = [{"customer_id": "c1", "kind": "spend_anomaly", "onset": at(0)}]
    early = {"customer_id": "c1", "kind": "spend_anomaly", "status": "firing",
             "ts": (ONSET - timedelta(days=1, seconds=1)).isoformat()}
    report = score([early], truth, customer_days=1000.0)
    assert report.kinds["spend_anomaly"].caught == 0
    assert report.false_alarms == 1 and report.false_alarms_per_1000 == 1.0
    assert report.false_alarm_goal_passed  # 1 per 1000 is within "<= 1"


def test_window_per_kind_and_related_kinds_are_parameters() -> None:
    report = score(ALERTS, TRUTH, customer_days=2000.0, window_days={"refund_abuse": 90.0},
                   related={})
    assert report.kinds["refund_abuse"].caught == 1
    assert report.kinds["refund_abuse"].window_days == 90.0
    assert report.kinds["drop_off"].window_days == 60.0
    assert report.kinds["churn_risk"].false_alarms == 2  # c1's churn_risk is no longer explained
    narrow = score(ALERTS, TRUTH, customer_days=2000.0, window_days=5.0)
    assert narrow.kinds["drop_off"].caught == 0 and narrow.kinds["drop_off"].late_alerts == 1


def test_timestamps_with_z_and_other_offsets() -> None:
    truth = [{"customer_id": "c1", "kind": "refund_abuse", "onset": "2025-07-01T12:00:00Z"}]
    alerts = [{"customer_id": "c1", "kind": "refund_abuse", "status": "firing",
               "ts": "2025-07-02T14:00:00+02:00"}]
    report = score(alerts, truth, customer_days=10.0)
    assert report.kinds["refund_abuse"].median_delay_days == 1.0


def test_bad_rows_are_reported() -> None:
    with pytest.raises(ValueError, match="alert 1"):
        score([{"customer_id": "c1", "status": "firing", "ts": at(0)}], TRUTH, 1.0)
    with pytest.raises(ValueError, match="truth row 1"):
        score([], [{"customer_id": "c1", "kind": "drop_off", "onset": "2025-07-01T12:00:00"}], 1.0)


def test_empty_inputs() -> None:
    report = score([], [], customer_days=0.0)
    assert report.kinds == {} and report.false_alarms == 0 and report.passed


def test_customer_days() -> None:
    events = [{"customer_id": "a", "ts": at(0)}, {"customer_id": "b", "ts": at(10)},
              {"customer_id": "a", "ts": at(4)}, {"customer_id": "b", "ts": at(20)}]
    assert customer_days(events) == 30.0
    assert customer_days(events, end=at(30)) == 50.0


def test_report_renders(tmp_path: Path) -> None:
    report = score(ALERTS, TRUTH, customer_days=2000.0)
    data = orjson.loads(orjson.dumps(report.to_dict()))
    assert data["kinds"]["drop_off"]["recall"] == 0.5 and data["passed"] is False
    table = report.format_table()
    assert "drop_off" in table and "0.500" in table and "overall: FAIL" in table
    assert "2.000 per 1000" in table


def test_score_files(tmp_path: Path) -> None:
    def write(name: str, rows: list[dict[str, Any]]) -> Path:
        path = tmp_path / name
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + b"\n")
        return path

    events = [{"event_id": "e1", "customer_id": "c1", "type": "survey", "ts": at(-100),
               "score": 9}, {"event_id": "e2", "customer_id": "c2", "type": "survey",
                             "ts": at(0), "score": 9}]
    report = score_files(write("alerts.jsonl", ALERTS), write("truth.jsonl", TRUTH),
                         events_path=write("events.jsonl", events))
    assert report.customer_days == 100.0
    assert report.false_alarms == 4 and report.false_alarms_per_1000 == 40.0
    given = score_files(tmp_path / "alerts.jsonl", tmp_path / "truth.jsonl",
                        customer_days_total=4000.0)
    assert given.false_alarms_per_1000 == 1.0
    with pytest.raises(ValueError):
        score_files(tmp_path / "alerts.jsonl", tmp_path / "truth.jsonl")
