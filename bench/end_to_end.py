"""End to end through a broker: one worker's sustained rate and event-to-alert latency.

* **Sustained rate**: ``n`` synthetic events are written to the input topic first;
  then a worker starts, and the rate is ``n`` over the time from the worker being
  ready to its ``/stats`` counting every one of them handled.
* **Latency**: the worker is fed synthetic events at a fixed offered rate (70% of
  the sustained rate, and each requested rate below that), with
  probe customers mixed in (three severity-5 complaints within a second: a
  complaint spike). The latency of a probe is the time from sending the event
  that completes the spike to reading its alert from the alerts topic.

Run it with ``python -m bench`` (both brokers) or on its own::

    python -m bench.end_to_end --broker tansu --events 50000 --rates 1000 5000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from anomon.lab.synthetic import SyntheticConfig, generate
from anomon.worker.profile_route import partition_of
from brokers import broker_named
from workerkit import Names, WorkerProcess, worker_env

HERE = Path(__file__).resolve().parent

PROBE_EVERY_S = 0.05
# the load is sent as one record batch per partition every TICK_S (as a producer with
# linger does); probes are timed from their own send, so the tick adds nothing to them
TICK_S = 0.005
# probes of the first WARMUP_S are sent but not measured (connections, the broker's JIT)
WARMUP_S = 5.0
PARTITIONS = 4  # the worker creates its topics with ANOMON_PARTITIONS (4 in worker_env)


EVENTS_PER_CUSTOMER_YEAR = 100  # the default mix makes about 116
MIN_CUSTOMERS = 200


def history_customers(n: int, customers: int | None = None) -> int:
    """The customers of a synthetic history of ``n`` events: ``customers``, but never
    fewer than a year of ``n`` events needs (by default, at least ``MIN_CUSTOMERS``).

    >>> history_customers(100_000), history_customers(600_000, 1_000), history_customers(10, 50)
    (1000, 6000, 50)
    """
    needed = -(-n // EVENTS_PER_CUSTOMER_YEAR)
    return max(MIN_CUSTOMERS, needed) if customers is None else max(customers, needed)


def latency_events(rate: float, seconds: float) -> int:
    """The events a latency run at ``rate`` for ``seconds`` (and the warm-up) draws on."""
    return int(rate * (seconds + WARMUP_S) * 1.2) + 1000


def with_source(env: dict[str, str], source: Path | None) -> dict[str, str]:
    """A worker's ``env`` running the code of another revision's ``src`` folder, if given."""
    return env if source is None else {**env, "PYTHONPATH": str(source)}


def synthetic_events(n: int, customers: int | None = None) -> list[dict[str, Any]]:
    """The first ``n`` events of a synthetic history (a realistic customer mix).

    By default the history has one customer per ``EVENTS_PER_CUSTOMER_YEAR`` events,
    so that ``n`` events are the first 315 days or so whatever ``n`` is: a sustained
    rate and a latency run at 70% of it then see customers of the same age (young
    customers cost the engine less: the first 100,000 events of 3,000 customers,
    100 days, ran about a quarter faster than 600,000 events of 6,000 customers).
    Fewer ``customers`` than that are raised to it (:func:`history_customers`): a
    year of them would not make ``n`` events.
    """
    out: list[dict[str, Any]] = []
    config = SyntheticConfig(customers=history_customers(n, customers), days=365, seed=11)
    for event in generate(config):
        out.append(event)
        if len(out) >= n:
            break
    return out


async def _create_topic(bootstrap: str, topic: str, partitions: int = 4) -> None:
    """The input topic as the worker would create it (brokers may not auto-create)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def _produce_all(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    await _create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=512 * 1024, acks=1)
    await producer.start()
    try:
        futures = [await producer.send(topic, orjson.dumps(e), key=e["customer_id"].encode())
                   for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def sustained_rate(broker: Any, n: int, workdir: Path) -> dict[str, Any]:
    """Events/s one worker handles from a topic already holding ``n`` events."""
    names = Names()
    events = synthetic_events(n)
    asyncio.run(_produce_all(broker.bootstrap, names.input, events))
    worker = WorkerProcess(worker_env(broker, names, workdir, sweep_clock="event"),
                           workdir / f"worker-{names.suffix}.log", HERE.parent)
    try:
        ready_after = worker.wait_ready(timeout=120.0)
        started = time.monotonic()
        stats = worker.wait_for(lambda s: s.get("in", 0) >= n, timeout=1200.0)
        seconds = time.monotonic() - started
    finally:
        worker.stop()
    return {"events": n, "seconds": round(seconds, 2), "events_per_s": round(n / seconds),
            "ready_after_s": round(ready_after, 2), "processed": stats.get("processed"),
            "dead_lettered": stats.get("dead_lettered"), "alerts": stats.get("alerts")}


def _probe_events(k: int, at: datetime) -> list[dict[str, Any]]:
    cid = f"probe-{k:06d}"
    return [{"event_id": f"probe-{k}-{i}", "customer_id": cid, "type": "complaint",
             "ts": (at + timedelta(minutes=i)).isoformat(), "severity": 5, "category": "delivery"}
            for i in range(3)]


@dataclass(frozen=True)
class Encoded:
    """An event ready to send: its partition, key and value, and its event time."""

    partition: int
    key: bytes
    value: bytes
    ts: str


def encode_load(events: list[dict[str, Any]], partitions: int = PARTITIONS) -> list[Encoded]:
    """The load, encoded and partitioned before the clock starts (the generator then
    costs the machine little besides its sends, so the worker is what is measured)."""
    return [Encoded(partition_of(e["customer_id"], partitions), e["customer_id"].encode(),
                    orjson.dumps(e), e["ts"]) for e in events]


async def _send_tick(producer: AIOKafkaProducer, topic: str,
                     records: list[Encoded]) -> list[Any]:
    """Queue ``records`` as one record batch per partition (keyed like a keyed producer)."""
    by_partition: dict[int, list[Encoded]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    futures = []
    for partition, items in by_partition.items():
        batch = producer.create_batch()
        for record in items:
            if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=record.key, value=record.value, timestamp=None)
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def _latency_run(bootstrap: str, names: Names, rate: float, seconds: float,
                       background: Iterator[Encoded], reader_wait_ms: int = 5) -> list[float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    # a broker that answers fetches at their deadline (Tansu) would add the reader's wait;
    # Apache Kafka answers a waiting fetch as soon as a record arrives, so there the reader
    # waits long and asks the broker (on the same cores as the worker) rarely
    consumer = AIOKafkaConsumer(names.alerts, bootstrap_servers=bootstrap,
                                auto_offset_reset="latest", group_id=None,
                                fetch_max_wait_ms=reader_wait_ms)
    await producer.start()
    await consumer.start()
    await consumer.getmany(timeout_ms=500)  # assigned and positioned before the first probe
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def read_alerts() -> None:
        while not done.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    alert = orjson.loads(record.value)
                    if alert.get("kind") != "complaint_spike" or alert.get("status") != "firing":
                        continue
                    for event_id in alert.get("events", [])[::-1]:
                        if event_id in sent:
                            latencies.append(now - sent.pop(event_id))
                            break

    reader = asyncio.create_task(read_alerts())
    started = time.monotonic()
    next_probe = started
    k = 0
    sent_count = 0
    clock = datetime(2025, 1, 1, tzinfo=UTC)
    deliveries = []
    try:
        while (now := time.monotonic()) - started < seconds + WARMUP_S:
            due = int((now - started) * rate) - sent_count
            tick = [next(background) for _ in range(max(0, due))]
            sent_count += len(tick)
            probes: list[dict[str, Any]] = []
            if now >= next_probe:
                k += 1
                if tick:  # probes keep to the event clock
                    clock = datetime.fromisoformat(tick[-1].ts)
                probes = _probe_events(k, clock)
                next_probe += PROBE_EVERY_S
            # one record batch per partition and tick: the producer costs little CPU, so
            # the worker is measured, not the load generator
            deliveries += await _send_tick(producer, names.input, tick + encode_load(probes))
            at = time.monotonic()
            if at - started >= WARMUP_S:
                for event in probes:
                    sent[event["event_id"]] = at
            await asyncio.sleep(TICK_S)
        await asyncio.gather(*deliveries)
        await asyncio.sleep(3.0)  # the last probes' alerts
    finally:
        done.set()
        await reader
        await producer.stop()
        await consumer.stop()
    return latencies


def latency(broker: Any, rate: float, seconds: float, workdir: Path,
            settings: dict[str, str] | None = None,
            customers: int | None = None, source: Path | None = None,
            history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Event-to-alert latency quantiles at an offered ``rate`` (events/s) for ``seconds``.

    ``settings``: the worker's, overriding the defaults (``commit_interval_ms``: ``"100"``).
    ``customers``: the history's (default: sized to the events, as the sustained rate's).
    ``source``: the ``src`` folder of another revision to run the worker from.
    ``history``: the first events of the history (``customers``), already generated:
    the run draws on them instead of generating its own, if they are enough.
    """
    names = Names()
    env = with_source(worker_env(broker, names, workdir, sweep_clock="event",
                                 **(settings or {})), source)
    worker = WorkerProcess(env, workdir / f"lat-{names.suffix}.log", HERE.parent)
    try:
        worker.wait_ready(timeout=120.0)
        n = latency_events(rate, seconds)
        events = (history[:n] if history is not None and len(history) >= n
                  else synthetic_events(n, customers))
        background = iter(encode_load(events))
        # this process holds the whole load (a million objects and more): out of the
        # collector's way, or a full collection stalls the sender and the reader for up
        # to half a second mid-run, and the probes in flight are timed late
        gc.collect()
        gc.freeze()
        broker_pid = getattr(broker, "pid", None)
        sched0, began = schedstat(worker.pid), time.monotonic()
        broker0, own0 = cpu_seconds(broker_pid), time.process_time()
        reader_wait_ms = 100 if broker.name == "kafka" else 5
        lat = asyncio.run(_latency_run(broker.bootstrap, names, rate, seconds, background,
                                       reader_wait_ms))
        sched1, took = schedstat(worker.pid), time.monotonic() - began
        broker1, own1 = cpu_seconds(broker_pid), time.process_time()
        collector = collector_pauses(worker.metrics())
        collector["worker_rss_mb"] = resident_mb(worker.pid)
    finally:
        gc.unfreeze()
        worker.stop()
    # how much of the run the worker spent on a CPU, and waiting for one (a busy machine),
    # and what else ran on those cores: the broker, and this process (the load, the reader)
    share = {"worker_cpu_share": round((sched1[0] - sched0[0]) / 1e9 / took, 2),
             "worker_runqueue_wait_share": round((sched1[1] - sched0[1]) / 1e9 / took, 2),
             "broker_cpu_share": round((broker1 - broker0) / took, 2),
             "load_generator_cpu_share": round((own1 - own0) / took, 2)}
    share.update(collector)
    if not lat:
        return {"offered_per_s": rate, "probes": 0, **share}
    lat.sort()

    def q(p: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 2)

    return {"offered_per_s": rate, "probes": len(lat), "p50_ms": q(0.5), "p99_ms": q(0.99),
            "p999_ms": q(0.999), "max_ms": round(1000 * lat[-1], 2),
            "mean_ms": round(1000 * statistics.fmean(lat), 2), **share}


def collector_pauses(metrics_text: str) -> dict[str, Any]:
    """The worker's garbage-collector pauses from its ``/metrics``, if it exports them.

    Per generation: collections, their total seconds, and how many took over 50 ms
    (the histogram's buckets: no single pause is kept). Empty for a worker of a
    revision without ``anomon_gc_pause_seconds``.
    """
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "anomon_gc_pause_seconds":
            continue
        for sample in family.samples:
            gen = sample.labels.get("generation")
            if sample.name.endswith("_count"):
                out[f"gc{gen}_collections"] = int(sample.value)
            elif sample.name.endswith("_sum"):
                out[f"gc{gen}_seconds"] = round(sample.value, 3)
            elif sample.name.endswith("_bucket") and sample.labels.get("le") == "0.05":
                out[f"gc{gen}_le_50ms"] = int(sample.value)
    for gen in ("0", "1", "2"):
        if f"gc{gen}_le_50ms" in out:
            out[f"gc{gen}_over_50ms"] = out[f"gc{gen}_collections"] - out.pop(f"gc{gen}_le_50ms")
    return out


def resident_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MiB (Linux), or ``None``."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _stat_cpu_seconds(stat: Path) -> float:
    """User + system CPU seconds in a ``/proc`` ``stat`` file (of a process or a thread)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 if there is none)."""
    if pid is None:
        return 0.0
    try:
        return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))
    except OSError:  # ended
        return 0.0


#: A JVM's threads by what they do (``/proc`` thread names, numbers left out)
JVM_THREADS = {"C1 CompilerThre": "compiler", "C2 CompilerThre": "compiler",
               "G1 Conc#": "collector", "GC Thread#": "collector", "G1 Refine#": "collector",
               "G1 Main Marker": "collector", "G1 Service": "collector",
               "data-plane-kafk": "requests"}


def thread_cpu_seconds(pid: int | None) -> dict[str, float]:
    """CPU seconds of process ``pid``'s threads so far, grouped by :data:`JVM_THREADS`."""
    out: dict[str, float] = {}
    if pid is None:
        return out
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            seconds = _stat_cpu_seconds(task / "stat")
        except OSError:  # a thread that just ended
            continue
        group = JVM_THREADS.get(name.rstrip("0123456789"), "other")
        out[group] = out.get(group, 0.0) + seconds
    return out


def schedstat(pid: int) -> tuple[int, int]:
    """Nanoseconds process ``pid`` ran on a CPU and waited on a run queue (all threads)."""
    ran = waited = 0
    for path in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            fields = path.read_text().split()
        except OSError:  # a thread that just ended
            continue
        ran += int(fields[0])
        waited += int(fields[1])
    return ran, waited


def run(broker_name: str, events: int, rates: list[float], seconds: float) -> dict[str, Any]:
    """Both measurements on a fresh broker of kind ``broker_name``."""
    with tempfile.TemporaryDirectory() as tmp, broker_named(broker_name) as broker:
        workdir = Path(tmp)
        out: dict[str, Any] = {"broker": broker_name,
                               "sustained": sustained_rate(broker, events, workdir)}
        # the goal is judged at 70% of the sustained rate; above it a backlog only grows
        at_70 = round(0.7 * out["sustained"]["events_per_s"])
        rates = sorted({*(r for r in rates if r <= at_70), float(at_70)})
        out["latency"] = [latency(broker, r, seconds, workdir) for r in rates]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="tansu", help="tansu or kafka")
    parser.add_argument("--events", type=int, default=50_000, help="events for the rate")
    parser.add_argument("--rates", type=float, nargs="*", default=[1000.0, 5000.0],
                        help="offered loads (events/s) for the latency runs; those above 70%% "
                             "of the sustained rate are left out, and 70%% is always run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of a latency run")
    args = parser.parse_args(argv)
    print(orjson.dumps(run(args.broker, args.events, args.rates, args.seconds),
                       option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
