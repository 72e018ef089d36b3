"""The stream worker: a thin Faust adapter around the engine.

For each input record the agent reads the customer's state from the table,
calls the engine, writes the state back and publishes what came out; it holds
no business logic. Every record ends in exactly one outcome:

* ``processed``: the event was applied (alerts, if any, go to the alerts topic);
* ``duplicate``: an event id the customer's state has seen before (no effect);
* ``late``: older than the lateness bound; not applied, forwarded as is to the
  late topic;
* ``dead_lettered``: rejected by the decoder (reason from
  :mod:`anomon.core.decoding`) or, should the engine ever raise on an event,
  ``processing_error``; sent to the dead-letter topic (see
  :mod:`anomon.kafka.dead_letter`). A poison record never stops the worker.

So ``in == processed + duplicate + late + dead_lettered`` (``/stats``, and the
``anomon_events`` counter by outcome).

**Keys.** Producers key events by customer id, so that a customer's events and
state stay on one partition. A record whose key is missing or differs from the
``customer_id`` in its value is processed all the same, under the value's
``customer_id``, and counted in ``anomon_key_mismatch``. Its state write goes to
the changelog partition of the record's own input partition; with the memory
store the worker holds one state per customer either way, but after a
rebalance, or with a per-partition store (RocksDB), a mis-keyed customer may
have a second, separate state on that partition. Fix the producer.

**Sweep.** A timer every ``sweep_interval_s`` judges silent customers (see
:mod:`anomon.worker.sweep`): only those whose state belongs to an input
partition actively assigned to this worker (standby copies are skipped), so
each customer is judged by exactly one worker. Nothing is swept while the group
rebalances or tables recover. A customer silent longer than ``state_ttl_days``
is forgotten there: state and changelog record deleted (``expired`` in
``/stats``).

**Erasure.** A second agent reads erasure requests (``anomon erase``) and
deletes the customer's state (:mod:`anomon.worker.erasure`).

**Records.** The per-record path is :class:`anomon.worker.records.RecordHandler`
(no Faust in it, tested with a ``dict`` as the store); Faust's private API is used
only in :mod:`anomon.worker.faust_private`.

**Web.** ``/livez`` (200 while the process serves), ``/readyz`` (200 once state is
recovered and partitions assigned, 503 before and during a rebalance),
``/metrics`` (Prometheus text, consumer lag computed at the scrape:
:mod:`anomon.worker.lag`), ``/stats`` (JSON counters and the worker's pid) and
``/customers/{id}`` (a customer's profile, from whichever worker owns them:
:mod:`anomon.worker.profile_route`) on ``web_host:web_port``.

Run it with ``anomon worker`` or ``python -m anomon.worker.worker`` (settings
from ``ANOMON_*`` environment variables).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from anomon.core.decoding import EventDecoder
from anomon.core.detection_config import DetectionConfig
from anomon.core.engine import Engine
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY
from anomon.exits import EXIT_FAIL, EXIT_OK
from anomon.kafka.logs import configure_logging, customer_ref, kv, set_pseudonym_key
from anomon.kafka.preflight import BrokerAccessError, check_access
from anomon.kafka.security import SecurityConfigError
from anomon.kafka.topics import TopicSetupError, ensure_topics
from anomon.settings import Settings
from anomon.worker import lag, metrics
from anomon.worker.app import create_app
from anomon.worker.checkpoint import checkpoint_path, load_models, save_models
from anomon.worker.customer_table import CustomerTable
from anomon.worker.drift import LabelDrift
from anomon.worker.erasure import Eraser
from anomon.worker.faust_private import committed_offsets
from anomon.worker.outputs import Outputs
from anomon.worker.profile_route import add_profile_route
from anomon.worker.records import InputRecord, Outgoing, OutputTopics, RecordHandler
from anomon.worker.stats import WorkerStats
from anomon.worker.sweep import SweepClock, SweepIndex

log = logging.getLogger("anomon.worker.worker")

SWEEP_YIELD_EVERY = 100  # customers swept between yields to the agent
PARENT_CHECK_S = 1.0  # how often a worker started by a parent (anomon demo) checks it is alive


class StreamWorker:
    """The Faust app with the agent, the sweep timer and the web routes."""

    def __init__(self, settings: Settings, partitions: int, engine: Engine | None = None) -> None:
        self.settings = settings
        self.partitions = partitions
        if engine is None:
            config = DetectionConfig.load(settings.models_dir / "detectors.toml")
            engine = Engine(config, lateness_bound_s=settings.lateness_bound_s)
        self.engine = engine
        self.decoder = EventDecoder(max_event_bytes=settings.max_event_bytes)
        self.stats = WorkerStats()
        self.index = SweepIndex(ttl_s=settings.state_ttl_days * DAY)
        self.clock = SweepClock(settings.sweep_clock)
        self.checkpoint = checkpoint_path(settings.data_dir)
        self.ready_at: float | None = None
        self._labels_exported: dict[int, int] = dict(self.engine.churn.labels)
        self.label_drift = LabelDrift()
        self._quality_drifts_exported = 0
        self.end_offsets: dict[int, int] = {}  # input partition -> end offset (lag.REFRESH_S)
        metrics.init_model_series([self.engine.churn.name])
        self.app = create_app(settings, partitions)
        self.customers = CustomerTable(self.app, settings.input_topic, partitions, self.stats)
        raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes,
                               "key_serializer": "raw", "value_serializer": "raw"}
        self.input_topic = self.app.topic(settings.input_topic, partitions=partitions, **raw)
        self.alerts_topic = self.app.topic(settings.alerts_topic, **raw)
        self.dlq_topic = self.app.topic(settings.dlq_topic, **raw)
        self.late_topic = self.app.topic(settings.late_topic, **raw)
        self.app.agent(self.input_topic, name="anomon.events")(self._consume)
        self.records = RecordHandler(
            self.engine, self.customers, self.stats,
            OutputTopics(settings.alerts_topic, settings.dlq_topic, settings.late_topic),
            self.decoder, on_processed=self._on_processed)
        self.eraser = Eraser(self.customers, self.index, self.stats)
        self.outputs = Outputs(self.app, settings.input_topic, {
            t.get_topic_name(): t for t in (self.alerts_topic, self.dlq_topic, self.late_topic)})
        self.erasure_topic = self.app.topic(settings.erasure_topic, partitions=partitions, **raw)
        self.app.agent(self.erasure_topic, name="anomon.erasure")(self._erasures)
        self.app.timer(settings.sweep_interval_s, name="anomon.sweep")(self._sweep_timer)
        self.app.timer(lag.REFRESH_S, name="anomon.lag")(self._lag_timer)
        if settings.checkpoint_interval_s > 0:
            self.app.timer(settings.checkpoint_interval_s, name="anomon.checkpoint")(
                self._checkpoint_timer
            )
        if settings.parent_pid is not None:
            self.app.timer(PARENT_CHECK_S, name="anomon.parent")(self._parent_timer)
        self.app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]
        self._add_routes()
        add_profile_route(self.app, self.customers, self.engine, self.clock)

    # -- the agent ------------------------------------------------------------

    async def _consume(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            for out in self.handle(event.message):
                await self.outputs.send(out, event.message.partition)

    async def _erasures(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            self.eraser.handle(event.message.value, event.message.partition)

    def handle(self, msg: Any) -> list[Outgoing]:
        """Handle one Faust message (:class:`~anomon.worker.records.RecordHandler`)."""
        started = time.perf_counter()
        record = InputRecord(msg.topic, msg.partition, msg.offset, msg.key, msg.value,
                             msg.timestamp, _headers(msg))
        try:
            return self.records.handle(record)
        finally:
            self.clock.observe(msg.partition, msg.offset, self.records.last_event_ts)
            metrics.PROCESSING_SECONDS.observe(time.perf_counter() - started)

    def _on_processed(self, state: CustomerState, event_ts: float) -> None:
        self._note(state, event_ts)
        newest = self.clock.worker_newest
        if newest is not None:
            metrics.EVENT_LAG_SECONDS.set(time.time() - newest)

    # -- the sweep ------------------------------------------------------------

    def active_partitions(self) -> set[int]:
        """Input partitions actively assigned to this worker (standbys excluded)."""
        topic = self.settings.input_topic
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

    def _can_sweep(self) -> bool:
        return bool(self.app.started and self.ready_at is not None and not self.app.rebalancing)

    async def _sweep_timer(self) -> None:
        if not self._can_sweep():
            self.stats.sweep_skipped += 1
            return
        await self.sweep()

    async def sweep(self) -> int:
        """Judge the due customers of this worker's active partitions; returns how many."""
        started = time.perf_counter()
        partitions = self.active_partitions()
        if not partitions:
            return 0
        if self.index.stale:
            self._rebuild_index(partitions)
        now_by_partition = self._now_by_partition(partitions)
        due = self.index.due(now_by_partition)
        swept = 0
        sent_on: set[int] = set()
        for n, customer_id in enumerate(due, 1):
            if self.app.rebalancing:
                break
            try:
                outgoing = self._sweep_one(customer_id, now_by_partition, partitions)
            except Exception as exc:  # a bad state must not stop the sweeps: skip the customer
                self.index.forget(customer_id)  # until their next event
                self.stats.sweep_errors += 1
                log.exception("sweep failed %s", kv(customer=customer_ref(customer_id),
                                                     error=type(exc).__name__))
                continue
            if outgoing:
                partition = self.index.entries[customer_id][1]
                for out in outgoing:
                    await self.outputs.send(out, partition)
                sent_on.add(partition)
            swept += 1
            if n % SWEEP_YIELD_EVERY == 0:
                await asyncio.sleep(0)
        await self.outputs.commit_sweep(sent_on)
        self.stats.sweeps += 1
        self.stats.sweep_customers += swept
        metrics.SWEEP_CUSTOMERS.inc(swept)
        metrics.SWEEP_SECONDS.observe(time.perf_counter() - started)
        self._update_customer_gauge(partitions)
        self._export_labels()
        if swept:
            log.debug("sweep %s", kv(customers=swept, seconds=time.perf_counter() - started))
        return swept

    def _sweep_one(self, customer_id: str, now_by_partition: dict[int, float],
                   partitions: set[int]) -> list[Outgoing]:
        state = self.customers.load(customer_id)
        if state is None:
            self.index.forget(customer_id)
            return []
        now = now_by_partition.get(state.partition)
        if state.partition in partitions and now is not None and self.index.expired(state, now):
            self.customers.delete(customer_id, partition=state.partition)  # long gone: forget
            self.index.forget(customer_id)
            self.stats.record_expired()
            return []
        if state.partition not in partitions or now is None or not self.engine.due(state, now):
            self._note(state, state.last_ts)
            return []
        alerts = [(alert, alert.to_bytes()) for alert in self.engine.sweep(state, now)]
        self.customers.put_encoded(customer_id, state.to_bytes(), partition=state.partition)
        self._note(state, now)
        return self.records.alert_records(alerts)

    def _segment(self, state: CustomerState, now: float) -> tuple[str, str]:
        segment = self.engine.segment(state, now)
        return segment.tier, segment.stage

    def _note(self, state: CustomerState, now: float) -> None:
        self.index.note(state, self._segment(state, now))

    def _now_by_partition(self, partitions: set[int]) -> dict[int, float]:
        out = {}
        for p in partitions:
            highwater = self._highwater(p) if self.clock.mode == "event" else None
            now = self.clock.now_for(p, highwater)
            if now is not None:
                out[p] = now
        return out

    def _highwater(self, partition: int) -> int | None:
        """The input partition's high watermark from the last Fetch response (no request)."""
        try:
            value = self.app.consumer.highwater(TP(self.settings.input_topic, partition))
        except (AssertionError, KeyError, KafkaError):  # no longer assigned
            return None
        return int(value) if value is not None else None

    def _rebuild_index(self, partitions: set[int]) -> None:
        started = time.perf_counter()
        result = self.index.rebuild(self.customers.items(), self.customers.decode,
                                    lambda state: self._segment(state, state.last_ts), partitions)
        self.clock.restore(result.newest_ts)
        log.info("sweep index rebuilt %s", kv(
            customers=result.indexed, other_partitions=result.skipped,
            partitions=sorted(partitions), seconds=round(time.perf_counter() - started, 3)))

    def _export_labels(self) -> None:
        """Churn labels learned since the last export (``anomon_model_labels``)."""
        churn = self.engine.churn
        new: dict[int, int] = {}
        for label, name in ((0, "bought_again"), (1, "silent")):
            learned = churn.labels.get(label, 0)
            delta = learned - self._labels_exported.get(label, 0)
            if delta > 0:
                metrics.MODEL_LABELS.labels(churn.name, name).inc(delta)
            new[label] = max(0, delta)
            self._labels_exported[label] = learned
        drifts = self.label_drift.update(silent=new[1], bought_again=new[0])
        if drifts:
            metrics.MODEL_DRIFT.labels(churn.name, "label_rate").inc(drifts)
            log.info("churn label rate changed %s", kv(model=churn.name, changes=drifts))
        health = churn.health()
        quality_drifts = int(health["drifts"]) - self._quality_drifts_exported
        if quality_drifts > 0:
            metrics.MODEL_DRIFT.labels(churn.name, "quality").inc(quality_drifts)
            self._quality_drifts_exported = int(health["drifts"])
        if health["labels_bought_again"] + health["labels_silent"] > 0:
            metrics.MODEL_QUALITY.labels(churn.name, "log_loss").set(health["rolling_log_loss"])
            metrics.MODEL_QUALITY.labels(churn.name, "roc_auc").set(health["rolling_roc_auc"])

    def _update_customer_gauge(self, partitions: set[int]) -> None:
        """Customers of active partitions by tier and stage (as of their last event or sweep)."""
        metrics.CUSTOMERS_TRACKED.clear()
        for (tier, stage), n in self.index.segments(partitions).items():
            metrics.CUSTOMERS_TRACKED.labels(tier, stage).set(n)

    async def _on_rebalance_complete(self, sender: Any, *args: Any, signal: Any = None,
                                     **kwargs: Any) -> None:
        self.index.stale = True
        self.clock.reset_offsets()
        self.outputs.flush_before_commit()
        partitions = sorted(self.active_partitions())
        if self.ready_at is None:
            self.ready_at = time.time()
            metrics.WORKER_READY.set(1)
            log.info("worker ready %s", kv(
                seconds_since_start=round(self.ready_at - self.stats.started_at, 2),
                partitions=partitions, web=self.web_url))
        else:
            log.info("rebalanced %s", kv(partitions=partitions))

    # -- checkpoints, web -----------------------------------------------------

    async def _parent_timer(self) -> None:
        parent = self.settings.parent_pid
        if parent is not None and not _alive(parent):
            log.warning("parent process gone, stopping %s", kv(parent_pid=parent))
            os.kill(os.getpid(), signal.SIGTERM)

    @property
    def ready(self) -> bool:
        """State recovered and partitions assigned, and no rebalance under way."""
        return self.ready_at is not None and not bool(self.app.rebalancing)

    async def _checkpoint_timer(self) -> None:
        save_models(self.engine, self.checkpoint)

    @property
    def web_url(self) -> str:
        return f"http://{self.app.conf.web_bind}:{self.app.conf.web_port}"

    def stats_dict(self) -> dict[str, Any]:
        """The ``/stats`` payload: counters plus the worker's view of the group."""
        out = self.stats.as_dict()
        try:
            partitions = sorted(self.active_partitions())
        except Exception:  # the consumer is not started yet
            partitions = []
        out.update({
            "pid": os.getpid(),
            "ready": self.ready,
            "ready_at": self.ready_at,
            "partitions": partitions,
            "customers": self.index.count(set(partitions)),
            "event_clock": self.clock.worker_newest,
            "sweep_clock": self.clock.mode,
        })
        return out

    def update_lag(self) -> dict[int, int]:
        """Set ``anomon_consumer_lag_records`` for the active input partitions (no broker call)."""
        try:
            partitions = self.active_partitions()
        except Exception:  # the consumer is not started yet
            return {}
        committed = committed_offsets(self.app)
        topic = self.settings.input_topic

        def position(p: int) -> int | None:
            handled = self.clock.next_offset.get(p)
            return handled if handled is not None else committed.get(TP(topic, p))

        def highwater(p: int) -> int | None:
            return lag.newest(self._highwater(p), self.end_offsets.get(p))

        return lag.update_lag_gauge(partitions, highwater, position)

    async def _lag_timer(self) -> None:
        if self.app.started and not self.app.rebalancing:
            self.end_offsets = await lag.end_offsets(
                self.app.consumer, self.settings.input_topic, self.active_partitions())

    def _add_routes(self) -> None:
        worker = self

        async def metrics_page(view: Any, request: Any) -> Any:
            worker.update_lag()
            return view.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def stats_page(view: Any, request: Any) -> Any:
            return view.json(worker.stats_dict())

        async def livez_page(view: Any, request: Any) -> Any:
            return view.json({"status": "alive"})

        async def readyz_page(view: Any, request: Any) -> Any:
            if worker.ready:
                return view.json({"status": "ready"})
            return view.json({"status": "not ready"}, status=503)

        self.app.page("/livez", name="anomon-livez")(livez_page)
        self.app.page("/readyz", name="anomon-readyz")(readyz_page)
        self.app.page("/metrics", name="anomon-metrics")(metrics_page)
        self.app.page("/stats", name="anomon-stats")(stats_page)

    # -- running --------------------------------------------------------------

    def run(self, loop: asyncio.AbstractEventLoop) -> int:
        """Run until SIGINT/SIGTERM; returns the exit code."""
        load_models(self.engine, self.checkpoint)
        self._labels_exported = dict(self.engine.churn.labels)
        worker = faust.Worker(
            self.app,
            loop=loop,
            loglevel=self.settings.log_level,
            quiet=True,
            override_logging=False,
            redirect_stdouts=False,
        )
        worker.spinner = None
        log.info("worker starting %s", kv(
            app_id=self.settings.app_id, input=self.settings.input_topic,
            partitions=self.partitions, web=self.web_url, sweep_clock=self.settings.sweep_clock,
            sweep_interval_s=self.settings.sweep_interval_s))
        code = EXIT_OK
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else EXIT_FAIL
        finally:
            save_models(self.engine, self.checkpoint)
        log.info("worker stopped %s", kv(exit_code=code, **{
            k: v for k, v in self.stats.as_dict().items()
            if k in ("in", "processed", "duplicate", "late", "dead_lettered", "alerts")}))
        return code


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts as gone only once reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _headers(msg: Any) -> list[tuple[str, bytes]] | None:
    headers = msg.headers
    if not headers:
        return None
    if isinstance(headers, dict):
        return [(str(k), bytes(v or b"")) for k, v in headers.items()]
    return [(str(k), bytes(v or b"")) for k, v in headers]


def run_worker(settings: Settings) -> int:
    """Create the topics, then run the worker until stopped. Returns the exit code."""
    configure_logging(settings.log_level)
    set_pseudonym_key(settings.pseudonym_key.get_secret_value())
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        log.error("cannot create the data directory %s", kv(path=settings.data_dir, error=str(err)))
        return EXIT_FAIL
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:  # fail closed: wrong credentials or protocol end the worker here, with the cause
        loop.run_until_complete(check_access(settings))
    except (BrokerAccessError, SecurityConfigError) as err:
        log.error("cannot connect to Kafka: %s", err)
        loop.close()
        return EXIT_FAIL
    try:
        partitions = loop.run_until_complete(ensure_topics(settings))
    except (TopicSetupError, KafkaError, OSError) as err:
        log.error("cannot set up topics %s", kv(broker=settings.broker, error=str(err)))
        loop.close()
        return EXIT_FAIL
    return StreamWorker(settings, partitions).run(loop)


def main() -> int:
    """``python -m anomon.worker.worker``: run with settings from the environment."""
    return run_worker(Settings())


if __name__ == "__main__":
    raise SystemExit(main())
