"""Nothing lost when things go wrong: a worker killed, a worker restarted, the broker restarted.

Each test streams the same kind of input (:func:`workerkit.order_free_history`:
customers whose alerts depend on their own events only), makes something go
wrong in the middle of the stream, and then checks, like Kafka's own system test
verifiers, that every record was delivered:

* the changelog of the customer table holds, for every customer, each of their
  event ids exactly once and counters equal to what was sent (nothing lost,
  nothing counted twice, table state restored where it moved);
* the group's committed offsets cover the whole input topic;
* the distinct alerts are exactly those of a run without the fault, and every
  alert re-sent after the fault is identical, byte for byte, to the first one;
* every worker's ``in == processed + duplicate + late + dead_lettered``.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from workerkit import (
    BackgroundProducer,
    History,
    Names,
    WorkerFactory,
    WorkerProcess,
    alert_records_by_id,
    days_ago,
    drained,
    end_offsets,
    metric_samples,
    offline_alerts,
    order_free_history,
    read_latest,
    read_topic,
    require_kafka,
    send,
    send_events,
    share_partitions,
    state_problems,
    states_of,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

RATE = 250.0  # events per second sent while the fault happens


def processed_total(*workers: WorkerProcess) -> int:
    return sum(w.stats()["processed"] for w in workers if w.alive())


def settled(worker: WorkerProcess, quiet_s: float = 3.0, timeout: float = 90.0) -> None:
    """Wait until ``worker`` has taken no record for ``quiet_s`` seconds."""
    last = {"in": -1, "since": time.monotonic()}

    def quiet() -> bool:
        n = worker.stats()["in"]
        if n != last["in"]:
            last.update({"in": n, "since": time.monotonic()})
        return time.monotonic() - last["since"] >= quiet_s

    wait_until(quiet, timeout, "the worker settles", step=0.25)


def check_alerts(broker: Any, names: Names, expected: dict[str, dict[str, Any]],
                 isolation_level: str = "read_uncommitted") -> tuple[int, int]:
    """Distinct alerts equal ``expected``; re-sent ones identical. Returns (records, distinct)."""
    records = read_topic(broker, names.alerts, expect=len(expected), settle=2.0,
                         isolation_level=isolation_level)
    by_id = alert_records_by_id(records)
    assert set(by_id) == set(expected), (sorted(set(by_id) ^ set(expected))[:5], len(by_id))
    for alert_id, values in by_id.items():
        assert len(set(values)) == 1, f"alert {alert_id} re-sent with other content"
    return len(records), len(by_id)


def check_states(broker: Any, names: Names, events: list[dict[str, Any]],
                 isolation_level: str = "read_uncommitted") -> int:
    states = states_of(read_latest(broker, names.changelog, isolation_level=isolation_level))
    problems = state_problems(states, events)
    assert not problems, f"{len(problems)} customers wrong, e.g. {problems[:5]}"
    return len(states)


def stopped_count(worker: WorkerProcess, name: str) -> int:
    """A counter from the worker's last log line (``worker stopped ... processed=N``)."""
    lines = [line for line in worker.log_text().splitlines() if "worker stopped" in line]
    assert lines, worker.log_tail()
    return int(lines[-1].split(f" {name}=")[1].split()[0])


def accounted(stats: dict[str, Any]) -> bool:
    return bool(stats["accounted"]) and stats["in"] == (
        stats["processed"] + stats["duplicate"] + stats["late"] + stats["dead_lettered"])


# -- 1. SIGKILL one of two workers ------------------------------------------------------------

@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_killed_worker_partitions_move_and_nothing_is_lost(
        broker: Any, workers: WorkerFactory, figures: Any, guarantee: str) -> None:
    """At least once: every event processed, re-sent alerts identical. Exactly once (Apache
    Kafka): a ``read_committed`` reader of the alerts topic sees each alert once."""
    eos = guarantee == "exactly_once"
    if eos:
        require_kafka(broker, "Tansu has no transactions (InitProducerId fails)")
    names = Names()
    reference = Names()  # a single worker of its own group reads the same input
    h = order_free_history(days_ago(60))
    events = h.in_time_order()
    expected = offline_alerts(events)
    assert len(expected) == 20 * 2 + 12  # payers fire and resolve, complainers fire

    common = {"sweep_interval_s": 600, "standby_replicas": 0, "processing_guarantee": guarantee}
    a = workers(names, **common)
    b = workers(names, **common)
    single = workers(reference, input_topic=names.input, **common)
    for w in (a, b, single):
        w.wait_ready(90)

    wait_until(lambda: share_partitions(a, b), 60, "two workers share the four partitions")
    victim, survivor = a, b
    victim_parts = victim.stats()["partitions"]

    producer = BackgroundProducer(broker, names.input, events, RATE).start()
    wait_until(lambda: victim.stats()["processed"] >= 150
               and processed_total(a, b) >= 0.3 * len(events), 60,
               "the stream is under way")
    before = victim.stats()
    victim.kill()
    takeover_s = wait_until(
        lambda: (s := survivor.stats())["ready"] and s["partitions"] == [0, 1, 2, 3],
        90, "the survivor owns every partition")
    producer.join()
    single.wait_for(lambda s: s["in"] == len(events), timeout=90)
    # the survivor has handled what the victim had not committed, and then some: settled,
    # and committed (its states are in the changelog once their offsets are)
    wait_until(lambda: before["processed"] + survivor.stats()["in"] >= len(events), 90,
               "the survivor handles the rest of the stream")
    settled(survivor)
    drained(broker, names)
    after = survivor.stats()
    single_stats = single.stats()

    # every event processed: each one's id in its customer's restored state, once
    isolation = "read_committed" if eos else "read_uncommitted"
    customers = check_states(broker, names, events, isolation)
    assert accounted(after) and accounted(single_stats)
    handled = before["processed"] + after["processed"] + after["duplicate"]
    assert handled >= len(events), (before, after)
    assert single_stats["processed"] == len(events) and single_stats["duplicate"] == 0

    # distinct alerts: those of the single worker, and of the engine alone; duplicates identical
    records, distinct = check_alerts(broker, names, expected, isolation)
    ref_records, ref_distinct = check_alerts(broker, reference, expected, isolation)
    assert ref_records == ref_distinct == distinct
    if eos:  # not one duplicate for a read_committed reader, and written in transactions
        assert records == distinct
        assert end_offsets(broker, names.alerts) > records  # commit markers follow the alerts
    drained(broker, reference, timeout=30)
    figures(broker=broker.name, guarantee=guarantee, events_in=len(events), customers=customers,
            victim_partitions=victim_parts, victim_processed_before_kill=before["processed"],
            survivor_in=after["in"], survivor_processed=after["processed"],
            survivor_duplicate=after["duplicate"], dead_lettered=after["dead_lettered"],
            reprocessed=handled - len(events), alert_records=records, distinct_alerts=distinct,
            takeover_s=takeover_s)
    # and the group's committed offsets reach the end of the input
    drained(broker, names, timeout=30)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_standby_replica_takes_over_reading_only_the_tail(
        broker: Any, workers: WorkerFactory, figures: Any, guarantee: str) -> None:
    """With one standby replica each worker tails the other's changelog partitions; when one
    is killed, the survivor starts from its warm copies and nothing is lost."""
    if guarantee == "exactly_once":
        require_kafka(broker, "Tansu has no transactions (InitProducerId fails)")
    isolation = "read_committed" if guarantee == "exactly_once" else "read_uncommitted"
    names = Names()
    h = order_free_history(days_ago(60))
    events = h.in_time_order()
    expected = offline_alerts(events)
    common: dict[str, Any] = {"sweep_interval_s": 600, "standby_replicas": 1,
                              "processing_guarantee": guarantee}
    if guarantee == "at_least_once":
        # commits a second apart, not 5 s: the victim writes its changelog several times
        # during the few seconds of stream before the kill, so the standby has a copy to be
        # warm with (at 5 s it had read 1-2 records, and a commit just before the kill
        # could leave a tail larger than that)
        common["commit_interval_ms"] = 1000
    a = workers(names, **common)
    b = workers(names, **common)
    for w in (a, b):
        w.wait_ready(90)

    def warm_copies() -> bool:
        sa, sb = a.stats(), b.stats()
        return (bool(sa["partitions"]) and bool(sb["partitions"])
                and sorted(map(int, sa["standby"])) == sb["partitions"]
                and sorted(map(int, sb["standby"])) == sa["partitions"])

    wait_until(warm_copies, 60, "each worker keeps the other's partitions warm")
    victim, survivor = a, b
    victim_parts = victim.stats()["partitions"]
    producer = BackgroundProducer(broker, names.input, events, RATE).start()
    wait_until(lambda: processed_total(a, b) >= 0.5 * len(events), 60, "the stream is under way")
    wait_until(lambda: survivor.stats()["standby_records"] > 0, 30, "the standby reads")
    before = survivor.stats()
    victim.kill()
    takeover_s = wait_until(
        lambda: (s := survivor.stats())["ready"] and s["partitions"] == [0, 1, 2, 3],
        90, "the survivor owns every partition")
    producer.join()
    settled(survivor)
    drained(broker, names)
    after = survivor.stats()

    assert f"from_standby={','.join(map(str, victim_parts))} " in survivor.log_text()
    tail = after["restored_records"] - before["restored_records"]
    warm = after["standby_records"]
    assert tail < warm, (tail, warm)  # the standby had read most of the victim's changelog
    assert after["standby"] == {}  # a lone worker keeps no standby
    check_states(broker, names, events, isolation)
    records, distinct = check_alerts(broker, names, expected, isolation)
    if guarantee == "exactly_once":
        assert records == distinct
    assert accounted(after)
    drained(broker, names, timeout=30)
    figures(broker=broker.name, guarantee=guarantee, events_in=len(events),
            victim_partitions=victim_parts, standby_records_read=warm,
            restored_at_takeover=tail, takeover_s=takeover_s)


# -- 2. graceful stop and start -----------------------------------------------------------------

@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_graceful_stop_and_start_mid_stream_skips_nothing(
        broker: Any, workers: WorkerFactory, figures: Any, store: str) -> None:
    if store.startswith("rocksdb"):
        pytest.importorskip("rocksdict", reason="the RocksDB store needs rocksdict")
    names = Names()
    h = order_free_history(days_ago(60), shoppers=60)
    events = h.in_time_order()
    expected = offline_alerts(events)

    first = workers(names, sweep_interval_s=600, store=store)
    first.wait_ready(90)
    producer = BackgroundProducer(broker, names.input, events, RATE).start()
    wait_until(lambda: first.stats()["processed"] >= 0.3 * len(events), 60,
               "the stream is under way")
    stop_began = time.monotonic()
    assert first.stop() == 0, first.log_tail()
    stop_s = time.monotonic() - stop_began

    second = workers(names, sweep_interval_s=600, store=store)
    ready_s = second.wait_ready(90)
    producer.join()
    drained(broker, names)
    after = second.stats()
    assert accounted(after)
    customers = check_states(broker, names, events)
    # nothing skipped and nothing applied twice: every event changed state exactly once. At least
    # once, a record handled just before the stop whose offset commit had not completed is read
    # again; it is recognised by its event id and counted as a duplicate, with no effect and no
    # alert (the bar: no event skipped, no distinct duplicate alert)
    handled_first = stopped_count(first, "processed")
    assert handled_first + after["processed"] == len(events), (handled_first, after)
    assert after["duplicate"] <= 0.05 * len(events), after
    records, distinct = check_alerts(broker, names, expected)
    assert records == distinct  # not a single alert sent twice
    figures(broker=broker.name, store=store, events_in=len(events), customers=customers,
            first_processed=handled_first, second_processed=after["processed"],
            second_duplicate=after["duplicate"], dead_lettered=after["dead_lettered"],
            alert_records=records, distinct_alerts=distinct, stop_s=stop_s,
            second_ready_s=ready_s)


# -- 2b. workers joining and leaving a busy group --------------------------------------------------

@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_workers_joining_and_leaving_mid_stream_lose_nothing(
        broker: Any, workers: WorkerFactory, figures: Any, guarantee: str) -> None:
    """Every rebalance of a worker under way: a second worker joins, leaves, a third joins.

    A worker waiting in ``getmany`` when a rebalance starts gets records of its new
    assignment once the rebalance is over; left unhandled without a seek back, they
    were skipped by the next commit (a batch lost at a join).
    """
    eos = guarantee == "exactly_once"
    if eos:
        require_kafka(broker, "Tansu has no transactions (InitProducerId fails)")
    names = Names()
    h = order_free_history(days_ago(60), shoppers=300)
    events = h.in_time_order()
    expected = offline_alerts(events)
    common = {"sweep_interval_s": 600, "standby_replicas": 0, "processing_guarantee": guarantee}
    first = workers(names, **common)
    first.wait_ready(90)
    producer = BackgroundProducer(broker, names.input, events, 2 * RATE).start()

    wait_until(lambda: first.stats()["processed"] >= 0.15 * len(events), 60,
               "the stream is under way")
    joining = workers(names, **common)
    joining.wait_ready(90)
    wait_until(lambda: share_partitions(first, joining), 90, "a second worker joins")
    wait_until(lambda: processed_total(first, joining) >= 0.5 * len(events), 60,
               "the stream goes on with two")
    assert joining.stop() == 0, joining.log_tail()
    wait_until(lambda: first.stats()["partitions"] == [0, 1, 2, 3], 60,
               "the first worker takes every partition back")
    third = workers(names, **common)
    third.wait_ready(90)
    wait_until(lambda: share_partitions(first, third), 90, "a third worker joins")
    producer.join()
    drained(broker, names)
    settled(first)
    settled(third)

    # every event processed: each one's id in its customer's state, once, and counted
    isolation = "read_committed" if eos else "read_uncommitted"
    customers = check_states(broker, names, events, isolation)
    stats = [first.stats(), third.stats()]
    assert all(accounted(s) for s in stats)
    handled = (stopped_count(joining, "processed") + sum(s["processed"] for s in stats)
               + sum(s["duplicate"] for s in stats))
    assert handled >= len(events), (handled, stats)
    records, distinct = check_alerts(broker, names, expected, isolation)
    if eos:  # not one duplicate for a read_committed reader
        assert records == distinct
    figures(broker=broker.name, guarantee=guarantee, events_in=len(events), customers=customers,
            handled=handled, alert_records=records, distinct_alerts=distinct)


# -- 3. broker restart --------------------------------------------------------------------------

def test_worker_rides_out_a_broker_restart(broker: Any, workers: WorkerFactory,
                                           figures: Any) -> None:
    require_kafka(broker, "Tansu keeps its records in memory, so a restarted Tansu is empty")
    names = Names()
    h = order_free_history(days_ago(60), shoppers=80)
    events = h.in_time_order()
    expected = offline_alerts(events)

    worker = workers(names, sweep_interval_s=600)
    worker.wait_ready(90)
    pid = worker.pid
    producer = BackgroundProducer(broker, names.input, events, RATE / 2).start()
    wait_until(lambda: worker.stats()["processed"] >= 0.25 * len(events), 60,
               "the stream is under way")
    before = worker.stats()
    restart_began = time.monotonic()
    broker.restart()
    down_s = time.monotonic() - restart_began
    back_s = wait_until(lambda: worker.stats()["processed"] > before["processed"] + 50, 120,
                        "the worker processes again after the restart")
    producer.join(180)
    drained(broker, names, timeout=120)
    after = worker.stats()
    assert worker.alive() and worker.pid == pid  # the same process carried on
    assert accounted(after)
    assert after["processed"] == len(events), after
    customers = check_states(broker, names, events)
    records, distinct = check_alerts(broker, names, expected)
    figures(broker=broker.name, events_in=len(events), customers=customers,
            processed=after["processed"], duplicate=after["duplicate"],
            dead_lettered=after["dead_lettered"], producer_resent=producer.resent,
            broker_restart_s=down_s, processing_again_after_s=back_s,
            alert_records=records, distinct_alerts=distinct)


# -- 7. corrupt checkpoint, unreadable states -----------------------------------------------------

def test_corrupt_checkpoint_and_unknown_state_versions_are_reported_and_survived(
        broker: Any, workers: WorkerFactory, tmp_path: Path, figures: Any) -> None:
    names = Names()
    h = History(days_ago(30))
    first = [h.add(c, "purchase", day, amount=20.0) for day in (1, 8) for c in CUSTOMERS]
    settings = {"sweep_interval_s": 1.0, "checkpoint_interval_s": 0}
    worker = workers(names, **settings)
    worker.wait_ready(90)
    send_events(broker, names.input, first)
    worker.wait_for(lambda s: s["processed"] == len(first))
    assert worker.stop() == 0
    checkpoint = Path(worker.env["ANOMON_DATA_DIR"]) / "models.pkl"
    assert pickle.loads(checkpoint.read_bytes())["version"] >= 1

    # the damage: a truncated checkpoint, and states no version of anomon wrote
    checkpoint.write_bytes(checkpoint.read_bytes()[:40])
    send(broker, names.changelog, [
        (b"future", orjson.dumps({"customer_id": "future", "version": 99}), []),
        (b"garbled", b"\x00not a state", []),
    ])
    more = [h.add(c, "purchase", 15, amount=20.0) for c in CUSTOMERS]
    restarts = []
    for damage in ("truncated", "unknown version"):
        worker = workers(names, **settings)
        restarts.append(worker.wait_ready(90))
        assert any("models checkpoint ignored" in line for line in worker.log_text().splitlines())
        samples = metric_samples(worker.metrics())
        assert samples[("anomon_checkpoint_errors_total", (("op", "load"),))] == 1, damage
        assert checkpoint.with_name("models.pkl.bad").exists()
        if damage == "truncated":
            send_events(broker, names.input, more)
            stats = worker.wait_for(lambda s: s["processed"] == len(more))
            assert stats["state_resets"] >= 2 and stats["accounted"], stats  # future, garbled
            assert stats["dead_lettered"] == 0
        assert worker.stop() == 0  # a clean stop writes a good checkpoint...
        assert pickle.loads(checkpoint.read_bytes())["version"] >= 1
        # ...which the next start would load; spoil it again, another way
        checkpoint.write_bytes(pickle.dumps({"version": 999, "population": None}))
    states = states_of(read_latest(broker, names.changelog))
    assert {c: states[c]["n_purchases"] for c in CUSTOMERS} == {
        "steady": 3, "future": 1, "garbled": 1}  # the unreadable two started afresh
    assert all(states[c]["version"] == 1 for c in CUSTOMERS)
    figures(broker=broker.name, restarts=len(restarts), ready_s=max(restarts),
            state_resets=stats["state_resets"], events_in=stats["in"],
            processed=stats["processed"], dead_lettered=stats["dead_lettered"])


CUSTOMERS = ("steady", "future", "garbled")
