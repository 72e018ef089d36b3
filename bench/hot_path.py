"""The worker's hot path against the engine alone, on both brokers, in one interleaved run.

``python -m bench.hot_path`` measures, for each broker (Tansu, Apache Kafka) and
each round, one after the other on the same synthetic events:

* ``replay``: ``anomon replay`` on the events as a file (the engine alone, its
  own events/s figure, imports excluded);
* ``one worker``: a worker on an empty topic of 8 partitions; once it owns them
  the events are sent (record batches encoded beforehand: the sends cost the
  machine a few percent of a core); events/s from the first sent to the last
  handled (``/stats``), its CPU time per event, and the CPU shares of the broker
  (by JVM thread group) and of the sender;
* ``two workers``: the same with two workers of one group, sent once both own
  partitions;

A warm-up of one worker and of two, not kept, comes before the first round.

then, once per broker, event-to-alert latency at 70% of the rate one worker
sustains on the latency run's own events, drains and latency runs alternating
(:func:`latency_at_70pct`, :func:`bench.end_to_end.latency`, with the load
average beside it); on Apache
Kafka, ``--kill-runs`` exactly-once runs in which one of two workers is killed
mid-stream (``read_committed`` readers must see every alert once and every
state write); and the 1M-customer recovery (:mod:`bench.recovery`).

Prints one JSON object; ``python -m bench`` renders it into ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.end_to_end import (
    cpu_seconds,
    encode_load,
    history_customers,
    latency,
    latency_events,
    schedstat,
    synthetic_events,
    thread_cpu_seconds,
    with_source,
)
from brokers import broker_named
from workerkit import (
    BackgroundProducer,
    Names,
    WorkerProcess,
    alert_records_by_id,
    committed_lag,
    days_ago,
    offline_alerts,
    order_free_history,
    read_latest,
    read_topic,
    state_problems,
    states_of,
    worker_env,
)

HERE = Path(__file__).resolve().parent
PARTITIONS = 8


async def _create(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


def encoded(events: list[dict[str, Any]]) -> dict[int, list[tuple[bytes, bytes]]]:
    """Events as (key, value) by the partition a keyed producer picks (murmur2)."""
    out: dict[int, list[tuple[bytes, bytes]]] = {}
    for record in encode_load(events, PARTITIONS):
        out.setdefault(record.partition, []).append((record.key, record.value))
    return out


async def _send_when(bootstrap: str, topic: str, records: dict[int, list[tuple[bytes, bytes]]],
                     ready: Callable[[], bool], clock: Callable[[], None]) -> float:
    """Produce prebuilt records as whole batches once ``ready()``; seconds it took.

    The record batches are encoded before ``ready()`` is first asked, so that the
    timed part costs the machine only their sends: the load generator shares the
    cores with the workers and the broker, and built in the timed part the batches
    took a core for most of a second (100,000 records). ``clock()`` is called
    just before the first send.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024,
                                acks=1)
    await producer.start()
    try:
        batches = []
        for partition, items in records.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    batches.append((partition, batch))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            batches.append((partition, batch))
        while not await asyncio.to_thread(ready):
            await asyncio.sleep(0.05)
        clock()
        started = time.monotonic()
        futures = [await producer.send_batch(batch, topic, partition=partition)
                   for partition, batch in batches]
        await asyncio.gather(*futures)
        return time.monotonic() - started
    finally:
        await producer.stop()


def replay(path: Path) -> dict[str, Any]:
    """``anomon replay`` on ``path``: the engine's own events/s (file order, as streamed)."""
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "anomon", "replay", str(path), "--no-sort",
                        "--out", str(Path(tmp) / "alerts.jsonl"), "--summary", str(summary)],
                       check=True, capture_output=True)
        wall = time.perf_counter() - began
        report = json.loads(summary.read_text())
    return {"events_per_s": report["events_per_s"], "seconds": report["seconds"],
            "process_s": round(wall, 2)}


def workers_rate(broker: Any, records: dict[int, list[tuple[bytes, bytes]]], count: int,
                 workdir: Path, source: Path | None = None, **settings: Any) -> dict[str, Any]:
    """Events/s of ``count`` workers of a fresh group and topic.

    The workers start on an empty topic; once every one of them owns partitions
    the events are produced (record batches encoded beforehand: their sends take a
    fraction of a second), and the clock runs from the first sent to the last
    handled. One worker and two are timed alike. ``source``: the ``src`` folder
    of another revision to run the workers from.
    """
    names = Names()
    n = sum(len(v) for v in records.values())
    asyncio.run(_create(broker.bootstrap, names.input))

    procs = [WorkerProcess(with_source(worker_env(broker, names, workdir, partitions=PARTITIONS,
                                                  sweep_clock="event", log_level="WARNING",
                                                  **settings), source),
                           workdir / f"w-{names.suffix}-{i}.log", HERE.parent)
             for i in range(count)]
    try:
        deadline = time.monotonic() + 120

        def owned() -> bool:
            try:
                parts = [set(w.stats()["partitions"]) for w in procs]
            except OSError:
                return False
            return all(parts) and len(set().union(*parts)) == PARTITIONS

        broker_pid = getattr(broker, "pid", None)
        marks: dict[str, Any] = {}

        def ready() -> bool:
            assert time.monotonic() < deadline, "workers never shared the partitions"
            assert all(w.alive() for w in procs), procs[0].log_tail()
            return owned()

        def clock() -> None:
            marks["cpu"] = sum(cpu_seconds(w.pid) for w in procs)
            marks["waits"] = sum(schedstat(w.pid)[1] for w in procs)
            marks["broker"], marks["own"] = thread_cpu_seconds(broker_pid), time.process_time()
            marks["broker_total"] = cpu_seconds(broker_pid)
            marks["started"] = time.monotonic()

        produced_s = asyncio.run(_send_when(broker.bootstrap, names.input, records, ready, clock))
        started = marks["started"]
        deadline = started + 900
        handled = 0
        while handled < n:
            assert time.monotonic() < deadline, f"only {handled} of {n} handled"
            time.sleep(0.05)
            try:
                handled = sum(w.stats()["in"] for w in procs)
            except OSError:  # a busy worker may answer /stats late: ask again
                continue
        seconds = time.monotonic() - started
        cpu = sum(cpu_seconds(w.pid) for w in procs) - marks["cpu"]
        waited = (sum(schedstat(w.pid)[1] for w in procs) - marks["waits"]) / 1e9
        # the whole process's, which keeps the time of threads that ended (Tansu's come and
        # go: over ten idle seconds their sum went down); the groups are the live threads'
        broker_total = cpu_seconds(broker_pid) - marks["broker_total"]
        broker_s = {k: v - marks["broker"].get(k, 0.0)
                    for k, v in thread_cpu_seconds(broker_pid).items()}
        own_s = time.process_time() - marks["own"]
        stats = [w.stats() for w in procs]
    finally:
        for w in procs:
            w.stop()
    return {"workers": count, "events": n, "seconds": round(seconds, 2),
            "produced_in_s": round(produced_s, 2), "events_per_s": round(n / seconds),
            "cpu_us_per_event": round(1e6 * cpu / n, 1),
            # seconds the workers were runnable but waited for a CPU, per second of the run
            "runqueue_wait_share": round(waited / seconds, 2),
            # what else ran on the cores meanwhile: the broker, and this process (the sends)
            "broker_cpu_share": round(broker_total / seconds, 2),
            # and of the broker's, its JVM's compiler and collector (a fresh broker's JIT
            # compiles for minutes), and its request handlers
            "broker_threads_share": {k: round(v / seconds, 2) for k, v in sorted(broker_s.items())},
            "load_generator_cpu_share": round(own_s / seconds, 2),
            "accounted": all(s["accounted"] for s in stats),
            "load_average": os.getloadavg()[0]}


def kill_run(broker: Any, workdir: Path) -> dict[str, Any]:
    """Exactly once: kill one of two workers mid-stream; what a read_committed reader sees."""
    names = Names()
    events = order_free_history(days_ago(60)).in_time_order()
    expected = offline_alerts(events)
    common = {"sweep_interval_s": 600, "processing_guarantee": "exactly_once",
              "log_level": "WARNING"}
    a, b = (WorkerProcess(worker_env(broker, names, workdir, **common),
                          workdir / f"k-{names.suffix}-{i}.log", HERE.parent) for i in range(2))
    try:
        a.wait_ready(90)
        b.wait_ready(90)
        producer = BackgroundProducer(broker, names.input, events, 400.0).start()
        deadline = time.monotonic() + 60
        while a.stats()["processed"] + b.stats()["processed"] < 0.35 * len(events):
            assert time.monotonic() < deadline, "the stream never got under way"
            time.sleep(0.05)
        a.kill()
        producer.join()
        deadline = time.monotonic() + 120
        while committed_lag(broker, names.app_id, names.input) > 0:
            assert time.monotonic() < deadline, "the survivor did not commit everything"
            time.sleep(0.5)
        records = read_topic(broker, names.alerts, expect=len(expected), settle=1.0,
                             isolation_level="read_committed")
        by_id = alert_records_by_id(records)
        states = states_of(read_latest(broker, names.changelog,
                                       isolation_level="read_committed"))
    finally:
        a.stop()
        b.stop()
    return {"missing_alerts": len(set(expected) - set(by_id)),
            "duplicate_alerts": len(records) - len(by_id),
            "state_problems": len(state_problems(states, events))}


def rates(name: str, broker: Any, rounds: int, path: Path,
          records: dict[int, list[tuple[bytes, bytes]]], seconds: float,
          workdir: Path) -> dict[str, Any]:
    """Interleaved rounds of replay, one worker and two on ``broker``, then latency at 70%."""
    runs: dict[str, list[dict[str, Any]]] = {"replay": [], "one": [], "two": []}
    # a warm-up of each, not kept: the broker's first clients, topics and compiled code
    workers_rate(broker, records, 1, workdir)
    workers_rate(broker, records, 2, workdir)
    for _ in range(rounds):
        runs["replay"].append(replay(path))
        runs["one"].append(workers_rate(broker, records, 1, workdir))
        runs["two"].append(workers_rate(broker, records, 2, workdir))
        print(f"{name}: replay {runs['replay'][-1]['events_per_s']:,.0f}/s, one "
              f"{runs['one'][-1]['events_per_s']:,}/s, two "
              f"{runs['two'][-1]['events_per_s']:,}/s", file=sys.stderr)
    one = statistics.median(r["events_per_s"] for r in runs["one"])
    result: dict[str, Any] = {**runs, "summary": {
        "replay_per_s": statistics.median(r["events_per_s"] for r in runs["replay"]),
        "one_worker_per_s": one,
        "two_workers_per_s": statistics.median(r["events_per_s"]
                                               for r in runs["two"])}}
    s = result["summary"]
    s["one_vs_replay"] = round(s["one_worker_per_s"] / s["replay_per_s"], 2)
    s["two_vs_one"] = round(s["two_workers_per_s"] / s["one_worker_per_s"], 2)
    result["latency_at_70pct"] = latency_at_70pct(name, broker, one, seconds, workdir)
    return result


def latency_at_70pct(name: str, broker: Any, one: float, seconds: float,
                     workdir: Path, rounds: int = 3) -> dict[str, Any]:
    """Event-to-alert latency at 70% of what one worker sustains on the latency run's events.

    A latency run draws ``rate x seconds`` events of a history sized to them, so
    it holds more customers than the rates' events (at 20,000/s for 20 s, 8x as
    many), and a worker sustains less on them. So one worker drains those events
    (of a history sized for a run at ``one``, the rate measured above; the
    latency run reads the first of the same events), and the latency run is
    offered 70% of that.

    This machine's speed drifts by up to 1.5x within minutes, so a rate measured
    a few minutes before a latency run may be 100% of what the worker sustains
    during it. Drains and latency runs therefore alternate, ``rounds`` of each
    and a drain after the last: each run is offered 70% of the drain just before
    it, and its *load share* is what it was offered over the mean of the drains
    on either side. Medians over the rounds; every round is kept.
    """
    n = latency_events(one, seconds)
    customers = history_customers(n)
    history = synthetic_events(n)
    records = encoded(history)
    drains = [workers_rate(broker, records, 1, workdir)]
    runs: list[dict[str, Any]] = []
    for _ in range(rounds):
        offered = round(0.7 * drains[-1]["events_per_s"])
        load_before = os.getloadavg()[0]
        lat = latency(broker, float(offered), seconds, workdir, customers=customers,
                      history=history)
        lat["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        drains.append(workers_rate(broker, records, 1, workdir))
        around = (drains[-2]["events_per_s"] + drains[-1]["events_per_s"]) / 2
        lat["sustained_before_after"] = [drains[-2]["events_per_s"], drains[-1]["events_per_s"]]
        lat["load_share"] = round(offered / around, 2)
        runs.append(lat)
        print(f"{name}: latency at {offered:,}/s ({lat['load_share']} of the drains around "
              f"it): {lat}", file=sys.stderr)
    timed = [r for r in runs if "p99_ms" in r]

    def median(key: str, of: list[dict[str, Any]]) -> Any:
        values = [r[key] for r in of if r.get(key) is not None]
        return round(statistics.median(values), 2) if values else None

    return {"rounds": runs,
            "offered_per_s": median("offered_per_s", runs),
            "load_share": median("load_share", runs),
            **{key: median(key, timed) for key in
               ("p50_ms", "p99_ms", "worker_cpu_share", "worker_runqueue_wait_share")},
            "load_average": [runs[0]["load_average"][0], runs[-1]["load_average"][1]],
            "sustained": {"events": n, "customers": customers,
                          "events_per_s": median("events_per_s", drains),
                          "cpu_us_per_event": median("cpu_us_per_event", drains),
                          "drains": [d["events_per_s"] for d in drains]}}


def run(rounds: int, events: int, brokers: list[str], kill_runs: int, seconds: float,
        recovery_customers: int) -> dict[str, Any]:
    """Every measurement of the module docstring."""
    out: dict[str, Any] = {"events": events, "partitions": PARTITIONS, "rounds": rounds,
                           "cores": os.cpu_count(), "brokers": {}}
    evs = synthetic_events(events)
    with tempfile.TemporaryDirectory(prefix="anomon-hot-") as tmp:
        workdir = Path(tmp)
        (workdir / "models").mkdir()
        path = workdir / "events.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(e) for e in evs) + b"\n")
        records = encoded(evs)
        for name in brokers:
            with broker_named(name) as broker:
                # --rounds 0: only the kill runs and the recovery (added to results.json by hand)
                result = (rates(name, broker, rounds, path, records, seconds, workdir)
                          if rounds else {})
                if name == "kafka" and kill_runs:
                    kills = []
                    for i in range(kill_runs):
                        kills.append(kill_run(broker, workdir))
                        print(f"kill run {i + 1}: {kills[-1]}", file=sys.stderr)
                    result["exactly_once_kill_runs"] = {
                        "runs": kill_runs,
                        "missing_alerts": sum(k["missing_alerts"] for k in kills),
                        "duplicate_alerts": sum(k["duplicate_alerts"] for k in kills),
                        "state_problems": sum(k["state_problems"] for k in kills)}
                if name == "kafka" and recovery_customers:
                    from bench.recovery import measure

                    result["recovery"] = measure(broker.bootstrap, recovery_customers,
                                                 ["memory://", "rocksdb://"], workdir, 900.0)
                out["brokers"][name] = result
    return out


def _redo_in_results(brokers: list[str],
                     measure: Callable[[str, Any, dict[str, Any], Path], None]) -> int:
    """Per broker, ``measure(name, broker, its entry in bench/results.json, workdir)``; the
    results written back and RESULTS.md re-rendered."""
    from bench.__main__ import render

    results_path = HERE / "results.json"
    results = json.loads(results_path.read_text())
    with tempfile.TemporaryDirectory(prefix="anomon-lat-") as tmp:
        workdir = Path(tmp)
        (workdir / "models").mkdir()
        for name in brokers:
            with broker_named(name) as broker:
                measure(name, broker, results["hot_path"]["brokers"][name], workdir)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "RESULTS.md").write_text(render(results))
    return 0


def latency_only(brokers: list[str], rates: list[float], seconds: float) -> int:
    """Latency at ``rates`` on ``brokers``, added to ``bench/results.json``; RESULTS.md redone."""
    def measure(name: str, broker: Any, entry: dict[str, Any], workdir: Path) -> None:
        more = []
        for rate in rates:
            before = os.getloadavg()[0]
            lat = latency(broker, rate, seconds, workdir)
            lat["load_average"] = [round(before, 2), round(os.getloadavg()[0], 2)]
            print(f"{name}: latency at {rate}/s: {lat}", file=sys.stderr)
            more.append(lat)
        entry["latency_more"] = more

    return _redo_in_results(brokers, measure)


def latency_at_70pct_only(brokers: list[str], seconds: float, rounds: int = 3) -> int:
    """Redo each broker's latency at 70% in ``bench/results.json`` (from its one-worker rate
    there); RESULTS.md re-rendered."""
    def measure(name: str, broker: Any, entry: dict[str, Any], workdir: Path) -> None:
        # a warm-up, not kept: the broker's first clients, topics and compiled code
        workers_rate(broker, encoded(synthetic_events(100_000)), 1, workdir)
        entry["latency_at_70pct"] = latency_at_70pct(
            name, broker, entry["summary"]["one_worker_per_s"], seconds, workdir, rounds)

    return _redo_in_results(brokers, measure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_path", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds of the rates; 0: only the kill runs and the "
                             "recovery")
    parser.add_argument("--brokers", nargs="*", default=["tansu", "kafka"])
    parser.add_argument("--kill-runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--recovery-customers", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--latency-only", type=float, nargs="*", metavar="RATE",
                        help="only latency runs at these offered rates (events/s), added to "
                             "bench/results.json as latency_more; RESULTS.md re-rendered")
    parser.add_argument("--latency-at-70", action="store_true",
                        help="only each broker's latency at 70%% of one worker's sustained rate, "
                             "replaced in bench/results.json; RESULTS.md re-rendered")
    parser.add_argument("--latency-rounds", type=int, default=3,
                        help="with --latency-at-70: latency runs, each after a drain")
    args = parser.parse_args(argv)
    if args.latency_at_70:
        return latency_at_70pct_only(args.brokers, args.seconds, args.latency_rounds)
    if args.latency_only:
        return latency_only(args.brokers, args.latency_only, args.seconds)
    result = run(args.rounds, args.events, args.brokers, args.kill_runs, args.seconds,
                 args.recovery_customers)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
