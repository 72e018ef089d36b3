"""Operating anomon: late and out-of-order events, the DLQ command, erasure and state TTL.

Real broker, real worker subprocesses, the real ``anomon`` command line.
"""

from __future__ import annotations

import random
import urllib.error
import urllib.request
from collections import Counter
from datetime import timedelta
from typing import Any

import orjson
import pytest

from anomon.core.decoding import EventDecoder
from anomon.core.engine import Engine
from anomon.core.features import VALUE_HALF_LIFE_DAYS
from workerkit import (
    History,
    Names,
    WorkerFactory,
    alerts_of,
    days_ago,
    drained,
    event_records,
    read_latest,
    read_topic,
    run_cli,
    send,
    send_events,
    states_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

#: State fields that do not depend on the order events arrive in (within the lateness bound).
ORDER_FREE = ("n_purchases", "spend_total", "purchases", "last_purchase_ts", "first_ts",
              "last_ts", "n_refunds", "refund_total", "refunds", "n_complaints", "complaints",
              "n_payments", "n_bad_payments", "value_at_last_event")


def offline_states(events: list[dict[str, Any]]) -> dict[str, Any]:
    engine, decoder = Engine(), EventDecoder()
    states: dict[str, Any] = {}
    for raw in events:
        event = decoder.decode(orjson.dumps(raw))
        states[event.customer_id] = engine.process(states.get(event.customer_id), event).state
    return {c: s.to_dict() for c, s in states.items()}


# -- 5a. out of order and late ------------------------------------------------------------------

def test_out_of_order_within_the_bound_is_applied_and_late_events_go_aside(
        broker: Any, workers: WorkerFactory, figures: Any) -> None:
    names = Names()
    rng = random.Random(5)
    h = History(days_ago(40))
    for i in range(12):
        c = f"cust-{i:02d}"
        for k in range(10):
            h.add(c, "purchase", 3 * k + i * 0.05, amount=round(20 + rng.random() * 30, 2))
            h.add(c, "interaction", 3 * k + 1 + i * 0.05, kind="visit")
        if i % 3 == 0:
            for k in range(4):
                h.add(c, "complaint", 31 + 0.6 * k + i * 0.05, severity=4)
        if i % 4 == 1:
            h.add(c, "refund", 20 + i * 0.05, amount=10.0)
            for k in range(3):
                h.add(c, "payment", 5 + 10 * k, amount=30.0, status="overdue", days_overdue=5)
    # customers whose first event arrives after their second, five hours newer
    swapped = [(h.add(f"swap-{i}", "purchase", 35 + 0.1 * i, amount=25.0),
                h.add(f"swap-{i}", "interaction", 35.2 + 0.1 * i, kind="visit")) for i in range(3)]
    # up to 18 hours out of order, across customers and within one (bound: 48 hours)
    jitter = {e["event_id"]: rng.uniform(0, 18) for e in h.events}
    arrival = sorted(h.events, key=lambda e: (h.origin.fromisoformat(e["ts"])
                                              + timedelta(hours=jitter[e["event_id"]])))
    for first, second in swapped:
        arrival.remove(first)
        arrival.insert(arrival.index(second) + 1, first)
    assert arrival != h.in_time_order()
    newest = {c: max(e["ts"] for e in h.events if e["customer_id"] == c)
              for c in {e["customer_id"] for e in h.events}}

    def before_newest(customer: str, hours: float) -> dict[str, Any]:
        ts = h.origin.fromisoformat(newest[customer]) - timedelta(hours=hours)
        day = (ts - h.origin).total_seconds() / 86400
        return h.add(customer, "purchase", day, amount=15.0)

    within = [before_newest("cust-01", 40.0), before_newest("cust-02", 47.0)]
    late = [before_newest(f"cust-{i:02d}", hours) for i, hours in ((3, 49.0), (4, 72.0),
                                                                  (5, 24 * 20), (6, 24 * 30))]
    sent = arrival + within + late
    worker = workers(names, sweep_interval_s=600)
    worker.wait_ready(90)
    send_events(broker, names.input, sent)
    stats = worker.wait_for(lambda s: s["in"] == len(sent), timeout=60)
    assert stats["late"] == len(late) and stats["processed"] == len(sent) - len(late)
    assert stats["accounted"] and stats["dead_lettered"] == 0

    # the late ones go aside as they were, and nothing of them reaches the state
    aside = read_topic(broker, names.late, expect=len(late))
    assert sorted(bytes(r.value) for r in aside) == sorted(orjson.dumps(e) for e in late)
    assert {bytes(r.key) for r in aside} == {e["customer_id"].encode() for e in late}

    # within the bound, the state is what in-order processing gives
    applied = sorted(arrival + within, key=lambda e: e["ts"])
    want = offline_states(applied)
    drained(broker, names)  # the states are in the changelog once their offsets are committed
    got = states_of(read_latest(broker, names.changelog))
    for customer, expected in want.items():
        state = got[customer]
        for one in (state, expected):  # one number, however value_ts was reached
            one["value_at_last_event"] = one["value_decayed"] * 0.5 ** (
                (one["last_ts"] - one["value_ts"]) / 86400 / VALUE_HALF_LIFE_DAYS)
        differ = {f: (state[f], expected[f]) for f in ORDER_FREE if state[f] != expected[f]
                  and not (isinstance(expected[f], float)
                           and abs(state[f] - expected[f]) < 1e-6 * max(1.0, abs(expected[f])))}
        assert not differ, (customer, differ)
        assert sorted(state["seen_ids"]) == sorted(expected["seen_ids"])
    # and so are the alerts
    alerts = alerts_of(read_topic(broker, names.alerts, expect=4, settle=2.0))
    expected_alerts = Counter()
    engine, decoder, states = Engine(), EventDecoder(), {}
    for raw in applied:
        event = decoder.decode(orjson.dumps(raw))
        step = engine.process(states.get(event.customer_id), event)
        states[event.customer_id] = step.state
        expected_alerts.update((a.customer_id, str(a.kind), a.status) for a in step.alerts)
    assert Counter((a["customer_id"], a["kind"], a["status"]) for a in alerts) == expected_alerts
    samples = worker.metrics()
    assert 'anomon_events_total{outcome="late",type="purchase"} 4.0' in samples
    figures(broker=broker.name, events_in=stats["in"], processed=stats["processed"],
            late=stats["late"], dead_lettered=stats["dead_lettered"],
            out_of_order=sum(1 for a, b in zip(arrival, h.in_time_order(), strict=False)
                             if a is not b), alerts=len(alerts))


# -- 5b. the DLQ command --------------------------------------------------------------------------

@pytest.mark.slow  # over 10 s: in `make test`, not the `make check` loop
def test_dlq_lists_by_reason_and_redrives_chosen_records(
        broker: Any, workers: WorkerFactory, figures: Any) -> None:
    names = Names()
    h = History(days_ago(10))
    big = [h.add("big-spender", "purchase", day, amount=90.0, attributes={"note": "x" * 3000})
           for day in (1, 2, 3)]
    good = [h.add(f"ok-{i}", "purchase", 4, amount=10.0) for i in range(4)]
    worker = workers(names, sweep_interval_s=600, max_event_bytes=2048)
    worker.wait_ready(90)
    records = [*event_records(good), *event_records(big),
               (b"broken", b'{"event_id": "b1", "customer_id": ', [("source", b"shop")]),
               (b"broken", b"not json at all", [("source", b"shop")]),
               (b"empty", b"", [])]
    send(broker, names.input, records)
    worker.wait_for(lambda s: s["in"] == len(records))

    listed = run_cli(broker, names, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "6 dead-lettered record(s)" in listed.stdout
    for line in ("too_large: 3", "invalid_json: 2", "empty_value: 1"):
        assert line in listed.stdout, listed.stdout
    assert "x" * 100 not in listed.stdout  # no customer data unless asked for
    assert "x" * 100 in run_cli(broker, names, "dlq", "list", "--reason", "too_large",
                                "--show-raw").stdout
    unchosen = run_cli(broker, names, "dlq", "redrive")
    assert unchosen.returncode == 2 and "--reason" in unchosen.stderr
    empty = run_cli(broker, names, "dlq", "redrive", "--reason", "empty_value")
    assert empty.returncode == 0 and "re-drove 0 of 1" in empty.stdout, empty
    assert "skipped" in empty.stderr

    # the producer's records were fine, the limit too small: raise it, then re-drive them
    assert worker.stop() == 0
    worker = workers(names, sweep_interval_s=600, max_event_bytes=65536)
    worker.wait_ready(90)
    dry = run_cli(broker, names, "dlq", "redrive", "--reason", "too_large", "--dry-run")
    assert "would re-drive 3 of 3" in dry.stdout, dry
    done = run_cli(broker, names, "dlq", "redrive", "--reason", "too_large")
    assert done.returncode == 0 and "re-drove 3 of 3" in done.stdout, done
    stats = worker.wait_for(lambda s: s["processed"] == 3)
    assert stats["dead_lettered"] == 0
    redriven = [r for r in read_topic(broker, names.input, expect=len(records) + 3)
                if any(k == "anomon.redriven.from" for k, _ in r.headers)]
    assert sorted(bytes(r.value) for r in redriven) == sorted(orjson.dumps(e) for e in big)
    # by offset range: one invalid record, straight back to the DLQ (still invalid)
    dlq = read_topic(broker, names.dlq, expect=6)
    broken = next(r for r in dlq if orjson.loads(r.value)["reason"] == "invalid_json")
    one = run_cli(broker, names, "dlq", "redrive", "--partition", str(broken.partition),
                  "--from-offset", str(broken.offset), "--to-offset", str(broken.offset))
    assert "re-drove 1 of 1" in one.stdout, one
    stats = worker.wait_for(lambda s: s["dead_lettered"] == 1)
    again = [r for r in read_topic(broker, names.dlq, expect=7)
             if dict(r.headers).get("anomon.redriven.from")]
    assert len(again) == 1 and dict(again[0].headers)["source"] == b"shop"
    # re-driving twice does no harm: the events are recognised
    run_cli(broker, names, "dlq", "redrive", "--reason", "too_large")
    stats = worker.wait_for(lambda s: s["duplicate"] == 3)
    assert stats["processed"] == 3 and stats["accounted"]
    figures(broker=broker.name, dead_lettered_first=6, redriven=3 + 1 + 3,
            processed_after_redrive=stats["processed"], duplicate=stats["duplicate"],
            dead_lettered_again=stats["dead_lettered"])


# -- erasure and state TTL ------------------------------------------------------------------------

def profile_status(worker: Any, customer: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/customers/{customer}",
                                    timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


@pytest.mark.slow  # over 10 s: in `make test`, not the `make check` loop
def test_erasure_and_ttl_delete_customer_state_for_good(
        broker: Any, workers: WorkerFactory, figures: Any) -> None:
    names = Names()
    h = History(days_ago(200))
    for day in (0, 7, 14):  # silent for six months: past a 90-day TTL
        h.add("long-gone", "purchase", day, amount=30.0)
    for day in range(150, 198, 4):
        h.add("leaver", "purchase", day, amount=30.0)
        h.add("stayer", "purchase", day + 0.5, amount=30.0)
    settings = {"sweep_interval_s": 0.5, "sweep_clock": "event", "state_ttl_days": 90}
    worker = workers(names, **settings)
    worker.wait_ready(90)
    send_events(broker, names.input, h.in_time_order())
    stats = worker.wait_for(lambda s: s["processed"] == len(h.events) and s["expired"] == 1)
    assert profile_status(worker, "leaver") == 200 and profile_status(worker, "long-gone") == 404

    done = run_cli(broker, names, "erase", "leaver")
    assert done.returncode == 0, done.stderr
    assert "leaver" not in done.stdout and "requested on 4 partition(s)" in done.stdout
    stats = worker.wait_for(lambda s: s["erasures"] == 4 and s["erased"] == 1)
    assert profile_status(worker, "leaver") == 404 and profile_status(worker, "stayer") == 200
    drained(broker, names, topic=names.erasure)  # written by the commit of the requests
    latest = read_latest(broker, names.changelog)
    assert latest[b"leaver"] is None and latest[b"long-gone"] is None  # tombstones
    assert latest[b"stayer"] is not None
    samples = worker.metrics()
    assert 'anomon_states_deleted_total{reason="erasure"} 1.0' in samples
    assert 'anomon_states_deleted_total{reason="ttl"} 1.0' in samples

    # after a restart, recovered from the changelog: still gone
    assert worker.stop() == 0
    worker = workers(names, **settings)
    worker.wait_ready(90)
    assert profile_status(worker, "leaver") == 404 and profile_status(worker, "long-gone") == 404
    assert profile_status(worker, "stayer") == 200
    assert "leaver" not in worker.log_text()
    figures(broker=broker.name, events_in=stats["in"], processed=stats["processed"],
            expired=stats["expired"], erasure_requests=stats["erasures"], erased=stats["erased"])
