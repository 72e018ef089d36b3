"""Helpers of the worker tests: worker subprocesses, topic I/O, changelog reads, event histories.

Every worker is ``python -m anomon.worker.worker`` run as a real subprocess with
``ANOMON_*`` variables; every record goes through a real Kafka client over a
socket. ``tests/integration/conftest.py`` puts this directory on ``sys.path`` and
provides the ``workers`` fixture built on :class:`WorkerProcess`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from anomon.core.state import CustomerState
from anomon.kafka.offsets import log_offsets

ALERT_FIELDS = {"alert_id", "fingerprint", "customer_id", "kind", "status", "severity", "score",
                "threshold", "ts", "episode", "segment", "reasons", "action", "model", "events",
                "schema_version"}
DLQ_HEADERS = {"anomon.dlq.topic", "anomon.dlq.partition", "anomon.dlq.offset",
               "anomon.dlq.stage", "anomon.dlq.reason", "anomon.dlq.error.class",
               "anomon.dlq.error.message"}

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]

BROKERS_ENV = "ANOMON_TEST_BROKERS"
ALLOW_MISSING_ENV = "ANOMON_ALLOW_MISSING_KAFKA"


def broker_names() -> list[str]:
    """The brokers the integration tests run on, from ``ANOMON_TEST_BROKERS``."""
    raw = os.environ.get(BROKERS_ENV, "tansu,kafka")
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    return names or ["tansu"]


# -- addresses --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def non_loopback_address() -> str | None:
    """An address of this machine other than loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def bootstrap_of(broker: Any) -> str:
    bootstrap = broker.bootstrap
    return ",".join(bootstrap) if isinstance(bootstrap, list | tuple) else str(bootstrap)


def url_of(broker: Any) -> str:
    url = getattr(broker, "url", None)
    return str(url) if url else "kafka://" + bootstrap_of(broker).replace(",", ";kafka://")


def require_kafka(broker: Any, why: str) -> None:
    """Skip on a broker other than Apache Kafka, saying why the test needs it."""
    if getattr(broker, "name", "") != "kafka":
        pytest.skip(f"Apache Kafka only: {why}")


# -- names ------------------------------------------------------------------------------------

@dataclass
class Names:
    """Topics and group of one test."""

    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def app_id(self) -> str:
        return f"anomon-it-{self.suffix}"

    @property
    def input(self) -> str:
        return f"events-{self.suffix}"

    @property
    def dlq(self) -> str:
        return f"events-dlq-{self.suffix}"

    @property
    def late(self) -> str:
        return f"events-late-{self.suffix}"

    @property
    def alerts(self) -> str:
        return f"alerts-{self.suffix}"

    @property
    def erasure(self) -> str:
        return f"erasure-{self.suffix}"

    @property
    def changelog(self) -> str:
        return f"{self.app_id}-customers-changelog"

    def env(self) -> dict[str, str]:
        """The ``ANOMON_*`` variables naming these topics and the group."""
        return {"ANOMON_APP_ID": self.app_id, "ANOMON_INPUT_TOPIC": self.input,
                "ANOMON_DLQ_TOPIC": self.dlq, "ANOMON_LATE_TOPIC": self.late,
                "ANOMON_ALERTS_TOPIC": self.alerts, "ANOMON_ERASURE_TOPIC": self.erasure}


# -- worker subprocesses ----------------------------------------------------------------------

def clean_env() -> dict[str, str]:
    """This process's environment without any ``ANOMON_*`` variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ANOMON_")}


class WorkerProcess:
    """``python -m anomon.worker.worker`` with its own web port and log file."""

    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path) -> None:
        self.port = int(env["ANOMON_WEB_PORT"])
        self.env = env
        self.log_path = log_path
        self.started = time.monotonic()
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "anomon.worker.worker"], env=env,
                                     cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)
        self.ready_after: float | None = None
        #: The last ``/stats`` answer (kept when the process is killed).
        self.last_stats: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def stats(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/stats"
        with urllib.request.urlopen(url, timeout=2) as resp:
            self.last_stats = json.loads(resp.read())
        return self.last_stats

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds from spawning the process to a ready worker (group joined, tables recovered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.alive(), f"worker exited early:\n{self.log_tail()}"
            try:
                if self.stats().get("ready"):
                    self.ready_after = time.monotonic() - self.started
                    return self.ready_after
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"worker not ready after {timeout} s:\n{self.log_tail()}")

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0
                 ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert self.alive(), f"worker exited:\n{self.log_tail()}"
            try:
                stats = self.stats()
            except OSError:
                time.sleep(0.1)
                continue
            if predicate(stats):
                return stats
            time.sleep(0.1)
        raise AssertionError(f"condition not met in {timeout} s; stats {stats}\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed or committed."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


WorkerFactory = Callable[..., WorkerProcess]


def worker_env(broker: Any, names: Names, tmp_path: Path, **settings: Any) -> dict[str, str]:
    """The environment of a worker of ``names`` on ``broker``; ``settings`` override."""
    env = clean_env()
    env.update({
        "ANOMON_BROKER": url_of(broker),
        **names.env(),
        "ANOMON_PARTITIONS": "4",
        "ANOMON_WEB_HOST": "127.0.0.1",
        "ANOMON_WEB_PORT": str(free_port()),
        "ANOMON_DATA_DIR": str(tmp_path / f"data-{names.suffix}"),
        "ANOMON_MODELS_DIR": str(tmp_path / "models"),
        "ANOMON_LOG_LEVEL": "INFO",
        # one worker per group on loopback: rejoin in seconds, not the production 45 s
        "ANOMON_SESSION_TIMEOUT_S": "6",
    })
    env.update({f"ANOMON_{k.upper()}": str(v) for k, v in settings.items()})
    return env


# -- Kafka I/O --------------------------------------------------------------------------------

def send(broker: Any, topic: str, records: list[Record], **client: Any) -> None:
    """Produce records (key, value, headers) in order and wait for every acknowledgement."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_of(broker), linger_ms=2,
                                    max_request_size=8 * 1024 * 1024, **client)
        await producer.start()
        try:
            futures = [await producer.send(topic, value=v, key=k, headers=h or None)
                       for k, v, h in records]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def event_records(events: Iterable[dict[str, Any]]) -> list[Record]:
    return [(e["customer_id"].encode(), orjson.dumps(e), []) for e in events]


def send_events(broker: Any, topic: str, events: list[dict[str, Any]]) -> None:
    send(broker, topic, event_records(events))


def read_topic(broker: Any, topic: str, expect: int, timeout: float = 20.0,
               settle: float = 1.0, isolation_level: str = "read_uncommitted",
               **client: Any) -> list[ConsumerRecord]:
    """Every record of ``topic``: waits for ``expect`` of them, then ``settle`` s for extras."""

    async def run() -> list[ConsumerRecord]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_of(broker), group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    isolation_level=isolation_level, **client)
        await consumer.start()
        out: list[ConsumerRecord] = []
        try:
            deadline = time.monotonic() + timeout
            settle_until: float | None = None
            while True:
                now = time.monotonic()
                if len(out) >= expect and settle_until is None:
                    settle_until = now + settle
                if (settle_until is not None and now >= settle_until) or now >= deadline:
                    break
                batches = await consumer.getmany(timeout_ms=100)
                for records in batches.values():
                    out.extend(records)
        finally:
            await consumer.stop()
        return sorted(out, key=lambda r: (r.partition, r.offset))

    return asyncio.run(run())


def read_latest(broker: Any, topic: str, timeout: float = 20.0,
                isolation_level: str = "read_uncommitted") -> dict[bytes, bytes | None]:
    """The last value of every key of ``topic`` (``None``: a tombstone), read to its end."""

    async def run() -> dict[bytes, bytes | None]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_of(broker), group_id=None,
                                    enable_auto_commit=False, isolation_level=isolation_level)
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(topic)
            if parts is None:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            _, ends = await log_offsets(bootstrap_of(broker), tps)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            latest: dict[bytes, bytes | None] = {}
            deadline = time.monotonic() + timeout
            while True:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                    break
                assert time.monotonic() < deadline, f"{topic} not read to its end in {timeout} s"
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        latest[record.key] = record.value
            return latest
        finally:
            await consumer.stop()

    return asyncio.run(run())


def committed_lag(broker: Any, group: str, topic: str) -> int:
    """Records of ``topic`` not yet covered by ``group``'s committed offsets."""
    return sum(end - committed for end, committed in committed_offsets(broker, group, topic))


def share_partitions(*workers: WorkerProcess, partitions: int = 4) -> bool:
    """Whether ``workers`` own the input's partitions between them: each some, none twice."""
    owned = [set(w.stats()["partitions"]) for w in workers]
    return (all(owned) and sum(map(len, owned)) == partitions
            and set().union(*owned) == set(range(partitions)))


def wait_until(predicate: Any, timeout: float, what: str, step: float = 0.1) -> float:
    """Poll ``predicate`` until true; returns the seconds it took."""
    began = time.monotonic()
    while not predicate():
        assert time.monotonic() - began < timeout, f"{what}: not within {timeout} s"
        time.sleep(step)
    return time.monotonic() - began


def drained(broker: Any, names: Names, timeout: float = 60.0, topic: str | None = None) -> None:
    """Wait until the group's committed offsets reach the end of the input topic (or ``topic``).

    A worker commits offsets only after the states of those records are in the
    changelog, so from then on the changelog holds them.
    """
    topic = topic or names.input
    try:
        wait_until(lambda: committed_lag(broker, names.app_id, topic) == 0, timeout,
                   f"committed offsets reach the end of {topic}", step=0.5)
    except AssertionError as err:
        offsets = committed_offsets(broker, names.app_id, topic)
        raise AssertionError(f"{err}; (end, committed) by partition: {offsets}") from None


def committed_offsets(broker: Any, group: str, topic: str) -> list[tuple[int, int]]:
    """(end offset, ``group``'s committed offset) of each partition of ``topic``."""

    async def run() -> list[tuple[int, int]]:
        # a consumer of the group that never joins it: it only fetches the committed offsets
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_of(broker), group_id=group,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(topic)
            if parts is None:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            _, ends = await log_offsets(bootstrap_of(broker), tps)
            return [(ends[tp], await consumer.committed(tp) or 0) for tp in tps]
        finally:
            await consumer.stop()

    return asyncio.run(run())


class BackgroundProducer:
    """Sends events at a steady rate from a thread of its own, so a test can act meanwhile.

    Like a careful producer, it sends again whatever was not acknowledged (say,
    while the broker restarts) until everything is; the events carry ids, so a
    record that did land the first time is a duplicate the worker recognises.
    """

    def __init__(self, broker: Any, topic: str, events: list[dict[str, Any]],
                 rate: float) -> None:
        self.broker, self.topic, self.events, self.rate = broker, topic, events, rate
        self.idempotent = getattr(broker, "name", "") == "kafka"  # Tansu has no idempotence
        self.sent = 0
        self.resent = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-producer", daemon=True)

    def start(self) -> BackgroundProducer:
        self._thread.start()
        return self

    def join(self, timeout: float = 120.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the producer did not finish"
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._send())
        except BaseException as err:  # reported by join()
            self.error = err

    async def _send(self) -> None:
        # idempotent, and patient enough to wait out a broker restart: order is kept
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_of(self.broker), linger_ms=5,
                                    acks="all", enable_idempotence=self.idempotent,
                                    request_timeout_ms=120000, retry_backoff_ms=250)
        await producer.start()
        try:
            started = time.monotonic()
            pending: list[tuple[Record, Any]] = []
            for n, record in enumerate(event_records(self.events)):
                ahead = started + n / self.rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
                pending.append((record, await self._send_one(producer, record)))
                self.sent = n + 1
            for _ in range(20):
                failed = [rec for rec, fut in pending if not await _delivered(fut)]
                if not failed:
                    return
                await asyncio.sleep(1.0)
                self.resent += len(failed)
                pending = [(rec, await self._send_one(producer, rec)) for rec in failed]
            raise AssertionError(f"{len(pending)} records never acknowledged")
        finally:
            await producer.stop()

    async def _send_one(self, producer: AIOKafkaProducer, record: Record) -> Any:
        key, value, _ = record
        try:
            return await producer.send(self.topic, value=value, key=key)
        except Exception as err:  # not even queued: report it as a failed delivery
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(err)
            return failed


async def _delivered(future: Any) -> bool:
    try:
        await future
    except Exception:
        return False
    return True


# -- reading results --------------------------------------------------------------------------

def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def alerts_of(records: list[ConsumerRecord]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


def states_of(latest: dict[bytes, bytes | None]) -> dict[str, dict[str, Any]]:
    """Customer states by customer id from a changelog read with :func:`read_latest`."""
    return {key.decode(): CustomerState.from_bytes(value).to_dict()
            for key, value in latest.items() if value is not None}


# -- event histories --------------------------------------------------------------------------

class History:
    """Builds the events of hand-made customers with unique event ids."""

    def __init__(self, origin: datetime) -> None:
        self.origin = origin
        self.events: list[dict[str, Any]] = []

    def add(self, customer: str, etype: str, day: float, **fields: Any) -> dict[str, Any]:
        ts = self.origin + timedelta(days=day)
        event = {"event_id": f"{customer}-{etype}-{len(self.events)}", "customer_id": customer,
                 "type": etype, "ts": ts.isoformat(), **fields}
        self.events.append(event)
        return event

    def in_time_order(self) -> list[dict[str, Any]]:
        return sorted(self.events, key=lambda e: e["ts"])


def days_ago(n: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(days=n)


# -- a scenario whose alerts do not depend on processing order ---------------------------------

def order_free_history(origin: datetime, shoppers: int = 100, payers: int = 20,
                       complainers: int = 12) -> History:
    """Customers whose alerts depend on their own events only, whatever the interleaving.

    Shoppers buy steadily (no alert, no sweep needed); payers fall behind twice
    in a row and then pay both at once (``payment_arrears`` firing, then resolved); complainers
    send four severe complaints in two days (``complaint_spike``). Payers and
    complainers buy nothing, so their value tier and stage do not depend on the
    population either: every alert is the same byte for byte in any run.
    Every customer has fewer events than the state's de-duplication window.
    """
    h = History(origin)
    for i in range(shoppers):
        c = f"shop-{i:03d}"
        for week in range(8):
            h.add(c, "purchase", 7 * week + i * 0.01, amount=40.0 + week % 3)
        for week in range(4):
            h.add(c, "interaction", 7 * week + 3 + i * 0.01, kind="visit")
    for i in range(payers):
        c = f"pay-{i:03d}"
        for month in range(3):
            h.add(c, "payment", 10 * month + i * 0.01, amount=100.0, status="paid")
        h.add(c, "payment", 35 + i * 0.01, amount=100.0, status="overdue", days_overdue=10)
        h.add(c, "payment", 45 + i * 0.01, amount=100.0, status="failed")
        h.add(c, "payment", 50 + i * 0.01, amount=200.0, status="paid")  # settles both
    for i in range(complainers):
        c = f"cmp-{i:03d}"
        for k in range(4):
            h.add(c, "complaint", 50 + k * 0.5 + i * 0.01, severity=5, category="delivery")
    return h


def offline_alerts(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Alerts by id of the engine run over ``events`` in this order, without Kafka."""
    from anomon.core.decoding import EventDecoder
    from anomon.core.engine import Engine

    engine, decoder = Engine(), EventDecoder()
    states: dict[str, Any] = {}
    out: dict[str, dict[str, Any]] = {}
    for raw in events:
        event = decoder.decode(orjson.dumps(raw))
        step = engine.process(states.get(event.customer_id), event)
        states[event.customer_id] = step.state
        for alert in step.alerts:
            out[alert.alert_id] = orjson.loads(alert.to_bytes())
    return out


def state_problems(states: dict[str, dict[str, Any]], events: Iterable[dict[str, Any]]
                   ) -> list[str]:
    """What is wrong with the stored customer states, given every event sent (empty: nothing).

    Each customer's state must hold each of their event ids once (none missing:
    nothing lost; none twice: nothing double counted) and counters equal to the
    events of each type.
    """
    sent: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        sent.setdefault(event["customer_id"], []).append(event)
    problems = []
    for customer, own in sorted(sent.items()):
        state = states.get(customer)
        if state is None:
            problems.append(f"{customer}: no state")
            continue
        ids = [e["event_id"] for e in own]
        seen = state["seen_ids"]
        if sorted(seen) != sorted(ids):
            missing = sorted(set(ids) - set(seen))
            problems.append(f"{customer}: {len(seen)} ids stored, {len(ids)} sent, "
                            f"missing {missing[:3]}")
        for etype, counter in (("purchase", "n_purchases"), ("payment", "n_payments"),
                               ("complaint", "n_complaints")):
            want = sum(1 for e in own if e["type"] == etype)
            if state[counter] != want:
                problems.append(f"{customer}: {counter}={state[counter]}, sent {want}")
    return problems


def alert_records_by_id(records: list[ConsumerRecord]) -> dict[str, list[bytes]]:
    """The raw value of every alert record, grouped by alert id."""
    out: dict[str, list[bytes]] = {}
    for record in records:
        out.setdefault(orjson.loads(record.value)["alert_id"], []).append(bytes(record.value))
    return out


def create_topic(broker: Any, name: str, partitions: int = 4,
                 configs: dict[str, str] | None = None) -> None:
    """Create topic ``name`` (before a worker does, to give it settings of the test's own)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_of(broker))
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1,
                                                topic_configs=configs or {})])
        finally:
            await admin.close()

    asyncio.run(run())


def run_cli(broker: Any, names: Names, *args: str, timeout: float = 90.0,
            **settings: Any) -> subprocess.CompletedProcess[str]:
    """``python -m anomon ARGS`` with the test's topics and broker; output captured."""
    env = clean_env()
    env.update({"ANOMON_BROKER": url_of(broker), **names.env()})
    env.update({f"ANOMON_{k.upper()}": str(v) for k, v in settings.items()})
    return subprocess.run([sys.executable, "-m", "anomon", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def end_offsets(broker: Any, topic: str) -> int:
    """The sum of ``topic``'s end offsets (records, and transaction markers where there are)."""

    async def run() -> int:
        tps = [TopicPartition(topic, p) for p in range(4)]
        _, ends = await log_offsets(bootstrap_of(broker), tps)
        return sum(ends.values())

    return asyncio.run(run())
