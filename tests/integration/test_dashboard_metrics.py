"""Every metric and label the Grafana dashboard and the Prometheus rules query is exported.

A worker runs on the broker and is fed customers that raise each kind of
signal the dashboard shows (a complaint spike, payment arrears that fire and
resolve, a customer who goes silent, steady buyers whose churn snapshots
resolve) plus rejected records; then ``/metrics`` is scraped and each panel's
and each rule's PromQL is checked against it (see ``querykit.py``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

pytest.importorskip("promql_parser", reason="the PromQL checks need the dev extra")
pytest.importorskip("yaml", reason="the rule checks need PyYAML (the dev extra)")

from querykit import dashboard_queries, problems, rule_queries, scrape_series
from workerkit import (
    History,
    Names,
    alerts_of,
    days_ago,
    drained,
    event_records,
    read_topic,
    send,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _feed() -> tuple[History, list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]]:
    h = History(days_ago(150))
    for week in range(12):
        h.add("goes-quiet", "purchase", 7 * week + (week % 3) * 0.3, amount=60.0)
    for day in range(0, 140, 2):
        for i in range(3):
            h.add(f"busy-{i}", "purchase", day + i * 0.1, amount=25.0 + i)
    for week in range(18):
        h.add("complainer", "purchase", 7 * week + 0.5, amount=40.0)
    for i, severity in enumerate((4, 5, 5)):
        h.add("complainer", "complaint", 135 + 0.75 * i, severity=severity, category="delivery")
    for month in range(3):
        h.add("debtor", "payment", 30 * month + 5, amount=120.0, status="paid")
    h.add("debtor", "payment", 100, amount=120.0, status="overdue", days_overdue=12)
    h.add("debtor", "payment", 112, amount=120.0, status="failed")
    h.add("debtor", "payment", 125, amount=120.0, status="paid")  # both owed amounts
    h.add("debtor", "payment", 126, amount=120.0, status="paid")  # settled: resolved
    records = event_records(h.in_time_order())
    bad: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = [
        (b"poison", b'{"event_id": "x", "customer_id": ', []),
        (b"poison", b'{"event_id": "y", "customer_id": "p", "type": "purchase"}', []),
        (b"poison", b"[1, 2]", []),
    ]
    return h, records[: len(records) // 2] + bad + records[len(records) // 2:]


def test_every_dashboard_panel_and_rule_query_is_answered_by_the_worker(
        broker: Any, workers: Any) -> None:
    names = Names()
    worker = workers(names, sweep_interval_s=0.5, sweep_clock="event", session_timeout_s=6)
    worker.wait_ready()
    frozen_at_ready = _values(worker.metrics())[("anomon_gc_frozen_objects", ())]
    h, records = _feed()
    send(broker, names.input, records)
    worker.wait_for(lambda s: s["in"] == len(records) and s["processed"] == len(h.events),
                    timeout=60)
    alerts = alerts_of(read_topic(broker, names.alerts, expect=4, settle=2.0))
    seen = {(a["customer_id"], a["kind"], a["status"]) for a in alerts}
    assert {("complainer", "complaint_spike", "firing"), ("debtor", "payment_arrears", "firing"),
            ("debtor", "payment_arrears", "resolved"), ("goes-quiet", "drop_off", "firing")
            } <= seen, seen
    worker.wait_for(lambda s: s["sweeps"] >= 2 and s["customers"] == 6)
    time.sleep(1.0)  # one more sweep: the segment gauge is set at the end of each

    text = worker.metrics()
    series = scrape_series(text)
    queries = [("panel", t, e) for t, e in dashboard_queries()]
    queries += [("rule", t, e) for t, e in rule_queries()]
    assert len([q for q in queries if q[0] == "panel"]) >= 20
    failures = [f"{kind} {title!r}: {p}" for kind, title, expr in queries
                for p in problems(expr, series)]
    assert failures == [], "\n".join(failures)

    # the check can fail: a metric nobody exports, or a label nobody sets
    assert problems("sum(rate(anomon_events_missing_total[5m]))", series)
    assert problems("sum by (customer_id) (rate(anomon_events_total[5m]))", series)
    assert problems('sum(anomon_alerts_total{kind="no_such_kind"})', series)

    lag = {s["partition"] for s in series["anomon_consumer_lag_records"]}
    assert lag and lag <= {str(p) for p in worker.stats()["partitions"]}
    lag_total = sum(v for (name, _), v in _values(text).items()
                    if name == "anomon_consumer_lag_records")
    assert lag_total == 0, "every record handled, yet lag reported"
    customers = {e["customer_id"] for e in h.events}
    assert not [c for c in customers if c in text], "customer ids in metrics"

    # the commit path, once the input's offsets are committed (commits are up to
    # ANOMON_COMMIT_INTERVAL_MS apart, 5 s): every customer's state written at least once,
    # commits timed, nothing left in flight once every record is handled and committed
    drained(broker, names)
    values = _values(worker.metrics())
    assert values[("anomon_state_writes_total", ())] >= len(customers)
    assert values[("anomon_commit_seconds_count", ())] >= 1
    in_flight = [values[("anomon_batches_in_flight", ())]]
    deadline = time.monotonic() + 15.0
    while in_flight[-1] != 0 and time.monotonic() < deadline:  # a sweep's batch, committed
        time.sleep(0.2)
        in_flight.append(_values(worker.metrics())[("anomon_batches_in_flight", ())])
    assert in_flight[-1] == 0, f"batches in flight with every record handled: {in_flight}"

    # the states made since the worker was ready are frozen out of the collector's scans
    # (the restore's freeze came before them), and its pauses are timed by generation
    assert values[("anomon_gc_frozen_objects", ())] > frozen_at_ready
    assert {s["generation"] for s in series["anomon_gc_pause_seconds_bucket"]} == {"0", "1", "2"}


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}

