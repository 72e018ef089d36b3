"""The stream worker end to end: a real broker, real sockets, workers as real subprocesses.

Each test gets its own topics and consumer group (a random suffix), starts
``python -m anomon.worker.worker`` with ``ANOMON_*`` variables, produces events
with a real Kafka client and reads the alert, dead-letter and late topics back.

The ``broker`` and ``workers`` fixtures come from ``tests/integration/conftest.py``
(Tansu and Apache Kafka); the helpers from ``workerkit.py``.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from anomon.ops.producer import produce_async
from anomon.settings import Settings
from workerkit import (
    ALERT_FIELDS,
    DLQ_HEADERS,
    History,
    Names,
    Record,
    WorkerFactory,
    alerts_of,
    create_topic,
    days_ago,
    metric_samples,
    non_loopback_address,
    read_topic,
    send,
    send_events,
    share_partitions,
    url_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


# -- 1. events in, alerts out -----------------------------------------------------------------

def test_events_produce_explained_alerts(broker: Any, workers: WorkerFactory
                                         ) -> None:
    names = Names()
    worker = workers(names, sweep_interval_s=1.0)
    ready_s = worker.wait_ready()
    h = History(days_ago(45))
    for week in range(6):
        h.add("complainer", "purchase", 7 * week, amount=40.0 + week)
    for i, severity in enumerate((4, 5, 5, 4)):
        h.add("complainer", "complaint", 38 + 0.75 * i, severity=severity, category="delivery")
    for month in range(3):
        h.add("debtor", "payment", 30 * month - 60, amount=120.0, status="paid")
    for i in range(3):
        h.add("debtor", "payment", 2 + 12 * i, amount=120.0, status="overdue",
              days_overdue=10 + 12 * i)
    for week in range(7):
        h.add("steady", "purchase", 7 * week + 0.1, amount=55.0)
        h.add("steady", "interaction", 7 * week + 3, kind="visit")
    h.add("steady", "survey", 40, score=9)
    settings = Settings(broker=url_of(broker), app_id=names.app_id, input_topic=names.input,
                        dlq_topic=names.dlq, late_topic=names.late, alerts_topic=names.alerts)
    report = asyncio.run(produce_async(settings, h.in_time_order()))
    assert report.sent == len(h.events) and report.failed == 0
    sent_at = time.monotonic()
    worker.wait_for(lambda s: s["processed"] == len(h.events))
    processed_s = time.monotonic() - sent_at
    alerts = alerts_of(read_topic(broker, names.alerts, expect=2, settle=2.5))
    by_customer = {(a["customer_id"], a["kind"]) for a in alerts}
    assert by_customer == {("complainer", "complaint_spike"), ("debtor", "payment_arrears")}, alerts
    assert not [a for a in alerts if a["customer_id"] == "steady"]
    for alert in alerts:
        assert set(alert) >= ALERT_FIELDS, alert
        assert alert["status"] == "firing" and alert["episode"] == 1
        assert alert["severity"] in ("info", "warning", "critical")
        assert alert["score"] >= alert["threshold"] > 0
        assert alert["reasons"] and all(r["text"] for r in alert["reasons"])
        assert alert["action"] and alert["model"]["name"] and alert["events"]
        assert set(alert["segment"]) == {"tier", "stage"}
        assert datetime.fromisoformat(alert["ts"]) < datetime.now(UTC)
    spike = next(a for a in alerts if a["kind"] == "complaint_spike")
    assert {r["feature"] for r in spike["reasons"]} >= {"complaints_14d", "max_severity"}
    assert all(e.startswith("complainer-complaint") for e in spike["events"])
    arrears = next(a for a in alerts if a["kind"] == "payment_arrears")
    assert arrears["reasons"][0]["feature"] == "owed_payments"
    assert arrears["reasons"][0]["value"] >= 2
    stats = worker.stats()
    assert stats["in"] == stats["processed"] == len(h.events) and stats["accounted"]
    assert stats["alerts"] == 2 and stats["sweeps"] >= 1
    metrics = worker.metrics()
    alert_samples = {labels: v for (name, labels), v in metric_samples(metrics).items()
                     if name == "anomon_alerts_total"}
    assert sum(alert_samples.values()) == 2
    assert "complainer" not in metrics and "complainer" not in worker.log_tail(500)
    outside = non_loopback_address()
    if outside is not None:  # the web server listens on loopback only
        with pytest.raises(OSError):
            socket.create_connection((outside, worker.port), timeout=1).close()
    print(f"\nworker ready {ready_s:.2f} s after spawn; {len(h.events)} events processed "
          f"{processed_s:.2f} s after they were sent")


# -- 2. bad messages ----------------------------------------------------------------------------

def test_bad_records_are_dead_lettered_with_reasons(broker: Any, workers: WorkerFactory,
                                                    figures: Any) -> None:
    """Every kind of poison: a specific reason each, and ``in`` accounted for exactly."""
    names = Names()
    # the input topic takes records of up to 8 MB, so that a 5 MB one reaches the worker
    create_topic(broker, names.input, configs={"max.message.bytes": str(8 * 1024 * 1024)})
    worker = workers(names, sweep_interval_s=600, max_event_bytes=16384)
    worker.wait_ready()
    h = History(days_ago(20))
    good = [h.add(f"good-{i % 5}", "purchase", i * 0.5, amount=10.0 + i) for i in range(20)]
    late = h.add("good-0", "purchase", -10, amount=5.0)  # 10 days before that customer's first
    dup = dict(good[3])
    ok = good[0]

    def bad(**fields: Any) -> bytes:
        return orjson.dumps({**ok, "event_id": uuid.uuid4().hex, **fields})

    def with_amount(literal: bytes) -> bytes:  # amounts orjson will not write: NaN, 1e999
        return bad(amount=123456.5).replace(b"123456.5", literal)

    next_year = datetime.now(UTC).replace(microsecond=0) + timedelta(days=366)
    # (reason, value, a word the detail must contain)
    cases: list[tuple[str, bytes | None, str]] = [
        ("invalid_json", b'{"event_id": "e1", "customer_id": ', "end of data"),
        ("invalid_json", b"\xff\xfe\x00garbage", ""),
        ("not_an_object", b'[1, 2, 3]', "array"),
        ("empty_value", b"", "no value"),
        ("empty_value", None, "no value"),
        ("too_large", bad(attributes={"padding": "x" * 20_000}), "over the limit of 16384"),
        ("too_large", bad(attributes={"padding": "x" * (5 * 1024 * 1024)}), "52430"),
        ("schema_error", orjson.dumps({k: v for k, v in ok.items() if k != "amount"}), "amount"),
        ("schema_error", bad(amount="lots"), "amount"),
        ("schema_error", bad(customer_id=12345), "customer_id"),
        ("unknown_type", bad(type="teleport"), "teleport"),
        ("unknown_type", orjson.dumps({k: v for k, v in ok.items() if k != "type"}), "None"),
        ("timestamp_out_of_range", bad(ts="1970-01-02T00:00:00+00:00"), "earliest"),
        ("timestamp_out_of_range", bad(ts=next_year.isoformat()), "future"),
        ("invalid_json", with_amount(b"NaN"), ""),  # not JSON
        ("invalid_json", with_amount(b"1e999"), "infinity"),  # out of a double's range
        ("schema_error", bad(amount="NaN"), "finite"),  # a string pydantic reads as NaN
        ("schema_error", bad(amount=-5.0), "amount"),
        ("schema_error", bad(customer_id="c" * 10_000), "at most 256 characters"),
    ]
    interleaved: list[Record] = []
    bad_iter = iter(cases)
    for n, event in enumerate(good):
        interleaved.append((event["customer_id"].encode(), orjson.dumps(event), []))
        if n % 2 == 1 and (case := next(bad_iter, None)) is not None:
            interleaved.append((b"poison", case[1], [("origin", b"test")]))
    interleaved.extend((b"poison", value, [("origin", b"test")]) for _, value, _ in bad_iter)
    interleaved.append((b"good-0", orjson.dumps(late), []))
    interleaved.append((dup["customer_id"].encode(), orjson.dumps(dup), []))
    mis_keyed = h.add("mis-keyed", "interaction", 11)
    interleaved.append((b"someone-else", orjson.dumps(mis_keyed), []))
    send(broker, names.input, interleaved)

    total = len(interleaved)
    stats = worker.wait_for(lambda s: s["in"] == total)
    dlq = read_topic(broker, names.dlq, expect=len(cases))
    assert len(dlq) == len(cases)
    expected_reasons = Counter(reason for reason, _, _ in cases)
    # one key, so one partition, in order: each record with its own reason
    assert [orjson.loads(r.value)["reason"] for r in dlq] == [reason for reason, _, _ in cases]
    for record, (_, _, word) in zip(dlq, cases, strict=True):
        assert word in orjson.loads(record.value)["detail"], orjson.loads(record.value)
    originals = {bytes(v) if v is not None else None for _, v, _ in cases}
    for record in dlq:
        value = orjson.loads(record.value)
        headers = {k: v for k, v in record.headers}
        assert set(headers) >= DLQ_HEADERS, headers
        assert headers["anomon.dlq.topic"].decode() == names.input == value["topic"]
        assert int(headers["anomon.dlq.partition"]) == value["partition"]
        assert int(headers["anomon.dlq.offset"]) == value["offset"]
        assert headers["anomon.dlq.reason"].decode() == value["reason"]
        assert headers["anomon.dlq.stage"] == b"decode"
        assert headers["anomon.dlq.error.class"] == b"EventRejected"
        assert value["reason"] in headers["anomon.dlq.error.message"].decode()
        assert headers.get("origin") == b"test" and record.key == b"poison"
        assert value["detail"] and value["ts"]
        if value["raw"] is None:
            raw = None
        elif value["raw_base64"]:
            raw = base64.b64decode(value["raw"])
        else:
            raw = value["raw"].encode()
        if value["reason"] == "empty_value":
            assert raw in (None, b"")
        elif value["raw_truncated"]:  # the 5 MB record: its first 256 KiB and its size
            assert raw is not None and value["raw_bytes"] > 5 * 1024 * 1024
            assert any(o is not None and o.startswith(raw) and len(o) == value["raw_bytes"]
                       for o in originals)
            assert len(record.value) < 1024 * 1024  # fits the dead-letter topic
        else:
            assert raw in originals
    binary = [orjson.loads(r.value) for r in dlq if orjson.loads(r.value)["raw_base64"]]
    assert len(binary) == 1

    late_records = read_topic(broker, names.late, expect=1)
    assert [orjson.loads(r.value)["event_id"] for r in late_records] == [late["event_id"]]
    assert late_records[0].key == b"good-0"

    stats = worker.stats()
    assert worker.alive()
    assert stats["in"] == total
    assert stats["processed"] == len(good) + 1
    assert stats["duplicate"] == 1 and stats["late"] == 1
    assert stats["dead_lettered"] == len(cases)
    assert stats["dead_lettered_by_reason"] == dict(expected_reasons)
    assert stats["in"] == (stats["processed"] + stats["duplicate"] + stats["late"]
                           + stats["dead_lettered"])
    assert stats["key_mismatch"] == 1 and stats["accounted"]
    samples = metric_samples(worker.metrics())
    assert samples[("anomon_dead_lettered_total", (("reason", "invalid_json"),))] == 4
    assert samples[("anomon_events_total", (("outcome", "late"), ("type", "purchase")))] == 1
    by_outcome = Counter[str]()
    for (name, labels), value in samples.items():
        if name == "anomon_events_total":
            by_outcome[dict(labels)["outcome"]] += int(value)
    assert by_outcome.total() == total and by_outcome["dead_lettered"] == len(cases)

    # the worker is still alive and well after the poison
    send_events(broker, names.input, [h.add("good-2", "purchase", 12, amount=7.0)])
    stats = worker.wait_for(lambda s: s["processed"] == len(good) + 2)
    assert stats["accounted"] and worker.alive()
    figures(broker=broker.name, events_in=stats["in"], processed=stats["processed"],
            dead_lettered=stats["dead_lettered"], duplicate=stats["duplicate"],
            late=stats["late"], key_mismatch=stats["key_mismatch"],
            reasons=len(expected_reasons))


# -- 3. restart ---------------------------------------------------------------------------------

@pytest.mark.slow  # over 10 s: in `make test`, not the `make check` loop
def test_restart_resumes_from_changelog_without_duplicate_alerts(
        broker: Any, workers: WorkerFactory) -> None:
    names = Names()
    h = History(days_ago(30))
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    for week in range(4):
        first.append(h.add("split-spike", "purchase", 7 * week, amount=30.0))
        first.append(h.add("split-debt", "payment", 7 * week, amount=80.0, status="paid"))
    first.append(h.add("split-spike", "complaint", 24, severity=5))
    first.append(h.add("split-debt", "payment", 25, amount=80.0, status="overdue",
                       days_overdue=12))
    for i in range(6):
        first.append(h.add(f"bystander-{i}", "purchase", 20 + i, amount=20.0))
    second.append(h.add("split-spike", "complaint", 26, severity=5))
    second.append(h.add("split-debt", "payment", 27, amount=80.0, status="failed"))
    second.append(h.add("split-spike", "complaint", 27.5, severity=4))
    resent = first[-8:-6]  # a producer retry: events the first worker already processed

    worker = workers(names, sweep_interval_s=600)
    worker.wait_ready()
    send_events(broker, names.input, first)
    worker.wait_for(lambda s: s["processed"] == len(first))
    assert worker.stats()["alerts"] == 0
    stop_started = time.monotonic()
    assert worker.stop() == 0
    stopped_s = time.monotonic() - stop_started

    restarted = workers(names, sweep_interval_s=1.0)
    ready_s = restarted.wait_ready()
    print(f"\nfirst worker stopped in {stopped_s:.2f} s; the next one ready in {ready_s:.2f} s")
    send_events(broker, names.input, resent + second)
    stats = restarted.wait_for(lambda s: s["in"] == len(resent) + len(second))
    assert stats["duplicate"] == len(resent) and stats["processed"] == len(second)
    records = read_topic(broker, names.alerts, expect=2, settle=2.0)
    alerts = alerts_of(records)
    kinds = Counter((a["customer_id"], a["kind"], a["status"]) for a in alerts)
    assert kinds == {("split-spike", "complaint_spike", "firing"): 1,
                     ("split-debt", "payment_arrears", "firing"): 1}, alerts
    spike = next(a for a in alerts if a["kind"] == "complaint_spike")
    assert len(spike["events"]) >= 2  # evidence from both sides of the restart
    ids: dict[tuple[str, int, str], set[str]] = {}
    for a in alerts:
        ids.setdefault((a["fingerprint"], a["episode"], a["status"]), set()).add(a["alert_id"])
    assert all(len(v) == 1 for v in ids.values())
    restarted.wait_for(lambda s: s["sweeps"] >= 1 and s["customers"] == 8)
    assert restarted.stop() == 0


# -- 4. silence ---------------------------------------------------------------------------------

def test_event_clock_sweep_finds_a_silent_customer(broker: Any,
                                                  workers: WorkerFactory) -> None:
    names = Names()
    worker = workers(names, sweep_interval_s=0.5, sweep_clock="event")
    worker.wait_ready()
    h = History(days_ago(150))
    for week in range(12):
        h.add("goes-quiet", "purchase", 7 * week + (week % 3) * 0.3, amount=60.0)
    for day in range(0, 140, 2):
        for i in range(3):
            h.add(f"busy-{i}", "purchase", day + i * 0.1, amount=25.0 + i)
    send_events(broker, names.input, h.in_time_order())
    worker.wait_for(lambda s: s["processed"] == len(h.events))
    records = read_topic(broker, names.alerts, expect=1, settle=2.0)
    alerts = alerts_of(records)
    assert [(a["customer_id"], a["kind"], a["status"]) for a in alerts] == [
        ("goes-quiet", "drop_off", "firing")], alerts
    drop = alerts[0]
    silence = next(r for r in drop["reasons"] if r["feature"].endswith("silence_days"))
    assert silence["value"] >= 17.5 and 4 <= silence["baseline"] <= 9
    alert_day = (datetime.fromisoformat(drop["ts"]) - h.origin).total_seconds() / 86400
    assert 77 + 14 <= alert_day <= 140
    stats = worker.stats()
    assert stats["sweep_clock"] == "event" and stats["sweep_customers"] >= 1


# -- 5. two workers ---------------------------------------------------------------------------

@pytest.mark.slow  # over 10 s: in `make test`, not the `make check` loop
def test_two_workers_judge_each_silent_customer_once(
        broker: Any, workers: WorkerFactory) -> None:
    names = Names()
    first = workers(names, sweep_interval_s=0.5, sweep_clock="event", standby_replicas=1)
    first.wait_ready()
    second = workers(names, sweep_interval_s=0.5, sweep_clock="event", standby_replicas=1)
    second.wait_ready()

    first.wait_for(lambda _: share_partitions(first, second), timeout=60)
    h = History(days_ago(150))
    quiet = [f"quiet-{i}" for i in range(8)]
    for n, customer in enumerate(quiet):
        for week in range(10):
            h.add(customer, "purchase", 7 * week + n * 0.2, amount=30.0 + n)
    for day in range(0, 140, 2):
        for i in range(6):
            h.add(f"busy-{i}", "purchase", day + i * 0.1, amount=20.0 + i)
    send_events(broker, names.input, h.in_time_order())
    total = len(h.events)
    first.wait_for(lambda s: s["processed"] + second.stats()["processed"] == total)
    alerts = alerts_of(read_topic(broker, names.alerts, expect=len(quiet), settle=3.0))
    firing = Counter((a["customer_id"], a["kind"]) for a in alerts if a["status"] == "firing")
    assert firing == {(c, "drop_off"): 1 for c in quiet}, alerts
    stats = [first.stats(), second.stats()]
    assert sum(s["alerts"] for s in stats) == len(alerts)
    assert all(s["sweep_customers"] > 0 for s in stats), stats
