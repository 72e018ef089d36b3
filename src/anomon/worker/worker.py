"""The stream worker: Kafka clients, the hot loop, the sweep, the web server, wired together.

Each part lives in a module of its own; this one only builds and connects them:

* :mod:`anomon.worker.loop`: the batched consumer loop and rebalance listener;
* :mod:`anomon.worker.handler`: record handling (decode, engine, outcome, outputs);
* :mod:`anomon.worker.store`, :mod:`anomon.worker.local_store`: customer states;
* :mod:`anomon.worker.changelog`: restoring states from the changelog;
* :mod:`anomon.worker.committer`: publishing and committing batches, at least
  once or exactly once;
* :mod:`anomon.worker.assignor`: co-partitioned, sticky assignment that tells
  every worker who owns which partition;
* :mod:`anomon.worker.sweeper`, :mod:`anomon.worker.erasure`: silence, TTL, erasure;
* :mod:`anomon.worker.web`, :mod:`anomon.worker.profile_route`: the web server;
* :mod:`anomon.worker.checkpoint`: the shared models saved across restarts.

The worker stops on SIGTERM or SIGINT (committing what it handled, within a few
seconds even with the broker gone) and when the process ``ANOMON_PARENT_PID``
names is gone. Run it with ``anomon worker`` or ``python -m anomon.worker.worker``
(settings from ``ANOMON_*`` environment variables).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition

from anomon.collector import PauseTimer, PeriodicFreeze, tune_collector
from anomon.core.build import core_build
from anomon.core.decoding import EventDecoder
from anomon.core.detection_config import DetectionConfig
from anomon.core.engine import Engine
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY
from anomon.exits import EXIT_FAIL, EXIT_OK
from anomon.kafka.logs import configure_logging, customer_ref, kv, set_pseudonym_key
from anomon.kafka.ports import free_port
from anomon.kafka.preflight import BrokerAccessError, check_access
from anomon.kafka.security import SecurityConfigError, kafka_auth
from anomon.kafka.topics import TopicSetupError, bootstrap_servers, changelog_topic, ensure_topics
from anomon.settings import Settings
from anomon.worker import changelog, lag, metrics
from anomon.worker.assignor import assignor_for
from anomon.worker.checkpoint import checkpoint_path, load_models, save_models
from anomon.worker.committer import AtLeastOnce, Committer, ExactlyOnce
from anomon.worker.erasure import Eraser
from anomon.worker.fetch_pace import FetchPace
from anomon.worker.handler import OutputTopics, RecordHandler
from anomon.worker.local_store import backend_factory, keeps_encoded
from anomon.worker.loop import StreamLoop
from anomon.worker.profile_route import ProfileSource, add_profile_route
from anomon.worker.standby import StandbyReplicas
from anomon.worker.stats import WorkerStats
from anomon.worker.store import PartitionStore
from anomon.worker.sweep import SweepClock, SweepIndex
from anomon.worker.sweeper import Sweeper
from anomon.worker.web import WebServer, health_app

log = logging.getLogger("anomon.worker.worker")

STOP_LOOP_S = 2.0
STOP_COMMIT_S = 3.0
STOP_CLIENT_S = 3.0
PARENT_CHECK_S = 1.0


def advertised_host(settings: Settings, host: str) -> str:
    """The host other workers reach this one at.

    >>> advertised_host(Settings(), "127.0.0.1")
    '127.0.0.1'
    >>> advertised_host(Settings(), "0.0.0.0") == socket.gethostname()
    True
    """
    if settings.web_advertised_host:
        return settings.web_advertised_host
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return host


class Worker:
    """One worker process (see the module docstring)."""

    def __init__(self, settings: Settings, partitions: int, engine: Engine | None = None) -> None:
        self.settings = settings
        self.partitions = partitions
        if engine is None:
            config = DetectionConfig.load(settings.detectors_file)
            engine = Engine(config, lateness_bound_s=settings.lateness_bound_s)
        self.engine = engine
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        self.stats = WorkerStats()
        self.index = SweepIndex(ttl_s=settings.state_ttl_days * DAY)
        self.clock = SweepClock(settings.sweep_clock)
        self.checkpoint = checkpoint_path(settings.data_dir)
        self.handler = RecordHandler(
            engine, EventDecoder(max_event_bytes=settings.max_event_bytes), self.stats,
            OutputTopics(settings.alerts_topic, settings.dlq_topic, settings.late_topic),
            self.clock)
        self.eraser = Eraser(self.index, self.stats)
        self.stores: dict[int, PartitionStore] = {}
        self._backend = backend_factory(settings.store, settings.data_dir, settings.app_id)
        self._keep_encoded = keeps_encoded(settings.store)
        self.sweeper = Sweeper(engine, self.handler, self.index, self.clock, self.stats,
                               self.stores, self._highwater)
        self.web_port = settings.web_port or free_port(settings.web_host)
        self.profile_host = settings.profile_host or settings.web_host
        self.profile_port = settings.profile_port
        if self.profile_port == 0:
            self.profile_port = free_port(self.profile_host)
        host = self.profile_host if self.profile_port is not None else settings.web_host
        port = self.profile_port if self.profile_port is not None else self.web_port
        self.address = f"http://{advertised_host(settings, host)}:{port}"
        self.assignor = assignor_for(self.address, settings.standby_replicas)
        self.bootstrap = bootstrap_servers(settings.broker)
        self.auth = kafka_auth(settings)
        self.changelog_topic = changelog_topic(settings.app_id)
        self.end_offsets: dict[int, int] = {}
        self.stop_requested = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None
        self.loop: StreamLoop | None = None
        self.standby: StandbyReplicas | None = None
        self.restored_records = 0
        #: ``compiled`` or ``python``: how the core this worker runs was built
        self.core = core_build()
        self.loop_task: asyncio.Task[None] | None = None
        metrics.init_model_series([engine.churn.name])

    # -- parts -------------------------------------------------------------------

    def new_store(self, partition: int) -> PartitionStore:
        return PartitionStore(partition, self._backend(partition), self._unreadable,
                              keep_encoded=self._keep_encoded)

    def _unreadable(self, customer_id: str, err: Exception) -> None:
        self.stats.record_state_reset()
        log.warning("unreadable customer state, starting fresh %s",
                    kv(customer=customer_ref(customer_id), error=str(err)[:200]))

    def _consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        session_ms = int(s.session_timeout_s * 1000)
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=s.app_id,
            client_id=f"{s.app_id}-worker", enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed" if self.exactly_once else "read_uncommitted",
            session_timeout_ms=session_ms, heartbeat_interval_ms=max(100, session_ms // 10),
            rebalance_timeout_ms=max(15000, 2 * session_ms),
            max_poll_interval_ms=max(300000, 10 * session_ms),
            request_timeout_ms=max(30000, 3 * session_ms + 1000),
            max_poll_records=s.batch_max_records, fetch_max_wait_ms=s.fetch_wait_ms,
            fetch_min_bytes=s.fetch_min_bytes,
            partition_assignment_strategy=(self.assignor,), **self.auth)

    def _producer(self, transactional_id: str | None = None,
                  linger_ms: int = 1) -> AIOKafkaProducer:
        options: dict[str, Any] = {"acks": "all", "enable_idempotence": False}
        compression = self.settings.producer_compression
        if transactional_id is not None:
            options = {"transactional_id": transactional_id, "enable_idempotence": True,
                       "acks": "all"}
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, client_id=f"{self.settings.app_id}-worker",
            linger_ms=linger_ms, max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024, request_timeout_ms=30000,
            compression_type=None if compression == "none" else compression, **options,
            **self.auth)

    def _highwater(self, partition: int) -> int | None:
        """The input partition's high watermark from the last Fetch response (no request)."""
        if self.consumer is None:
            return None
        try:
            value = self.consumer.highwater(TopicPartition(self.settings.input_topic, partition))
        except (IllegalStateError, AssertionError, KeyError):
            return None
        return int(value) if value is not None else None

    # -- web -----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.loop is not None and self.loop.ready

    def alive(self) -> bool:
        task = self.loop_task
        return task is None or not task.done()

    def stats_dict(self) -> dict[str, Any]:
        """The ``/stats`` payload: counters plus the worker's view of the group."""
        out = self.stats.as_dict()
        partitions = self.loop.partitions() if self.loop is not None else []
        out.update({
            "pid": os.getpid(),
            "core": self.core,
            "ready": self.ready,
            "ready_at": self.loop.ready_at if self.loop is not None else None,
            "partitions": partitions,
            "customers": self.index.count(set(partitions)),
            "restored_records": self.restored_records,
            "standby": ({str(p): o for p, o in self.standby.positions().items()}
                        if self.standby is not None else {}),
            "standby_records": self.standby.records if self.standby is not None else 0,
            "event_clock": self.clock.worker_newest,
            "sweep_clock": self.clock.mode,
            "fetch_idle": pace.idle if (pace := self.loop and self.loop.pace) else False,
            "fetch_wakes": pace.wakes if pace else 0,
        })
        return out

    def update_lag(self) -> dict[int, int]:
        """Before a scrape: ``anomon_consumer_lag_records`` for the owned input partitions (no
        broker call), ``anomon_batches_in_flight`` and ``anomon_gc_frozen_objects``."""
        self.stats.flush()
        metrics.GC_FROZEN_OBJECTS.set(gc.get_freeze_count())
        if self.loop is None:
            return {}
        metrics.BATCHES_IN_FLIGHT.set(self.loop.committer.in_flight)
        topic = self.settings.input_topic
        committed = self.loop.committer.committed

        def position(p: int) -> int | None:
            handled = self.clock.next_offset.get(p)
            return handled if handled is not None else committed.get(TopicPartition(topic, p))

        def highwater(p: int) -> int | None:
            return lag.newest(self._highwater(p), self.end_offsets.get(p))

        return lag.update_lag_gauge(self.loop.assigned, highwater, position)

    def owners(self) -> dict[int, str]:
        if self.loop is None or not self.loop.joined or self.loop.rebalancing:
            return {}
        return dict(self.assignor.owners)

    def find(self, customer_id: str, partition: int) -> CustomerState | None:
        """The customer's state if held here: their own partition first, then any other."""
        first = self.stores.get(partition)
        others = [s for p, s in self.stores.items() if p != partition]
        for store in ([first] if first is not None else []) + others:
            state = store.get(customer_id)
            if state is not None:
                return state
        return None

    async def _start_web(self, server: WebServer) -> None:
        app = health_app(self.stats_dict, self.alive, lambda: self.ready, self.update_lag)
        source = ProfileSource(self.engine, self.clock, self.partitions, self.address,
                               self.find, self.owners)
        if self.profile_port is None:
            add_profile_route(app, source)
        else:
            profile = web.Application()
            add_profile_route(profile, source)
            await server.serve(profile, self.profile_host, self.profile_port)
        await server.serve(app, self.settings.web_host, self.web_port)

    # -- timers --------------------------------------------------------------------

    async def _every(self, seconds: float, action: Any) -> None:
        while not self.stop_requested.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), seconds)
            if self.stop_requested.is_set():
                return
            try:
                await action()
            except Exception as err:  # a timer must not take the worker down
                log.warning("timer failed %s", kv(error=repr(err)[:200]))

    async def _refresh_end_offsets(self) -> None:
        if self.consumer is not None and self.ready and self.loop is not None:
            self.end_offsets = await lag.end_offsets(self.consumer, self.settings.input_topic,
                                                     self.loop.assigned)

    async def _save_models(self) -> None:
        save_models(self.engine, self.checkpoint)

    async def _watch_parent(self) -> None:
        pid = self.settings.parent_pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.info("parent process gone, stopping %s", kv(parent_pid=pid))
            self.stop_requested.set()
        except PermissionError:
            pass

    # -- running -------------------------------------------------------------------

    async def run_async(self) -> int:
        """Run until stopped; returns the exit code."""
        tune_collector(freeze=False)  # the restored states are frozen once restored
        if load_models(self.engine, self.checkpoint):
            self.sweeper.reset_labels()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_requested.set)
        server = WebServer()
        timers: list[asyncio.Task[None]] = []
        producers: list[AIOKafkaProducer] = []
        committer: Committer | None = None
        code = EXIT_OK
        gc_pauses = PauseTimer(_observe_gc_pause).install()
        try:
            await self._start_web(server)
            log.info("worker starting %s", kv(
                app_id=self.settings.app_id, input=self.settings.input_topic,
                partitions=self.partitions, web=f"http://{self.settings.web_host}:{self.web_port}",
                guarantee=self.settings.processing_guarantee, store=self.settings.store,
                sweep_clock=self.settings.sweep_clock,
                sweep_interval_s=self.settings.sweep_interval_s, core=self.core))
            self.consumer = consumer = self._consumer()
            interval = self.settings.commit_interval_s
            if self.exactly_once:
                committer = ExactlyOnce(consumer, self._producer,
                                        f"{self.settings.app_id}-{self.settings.input_topic}",
                                        self.settings.app_id, self.changelog_topic, self.stores,
                                        interval, self.settings.state_cache_customers)
            else:
                # outputs on a producer of their own, sent as soon as handed over: a
                # producer keeps one request in flight per broker, and an alert queued
                # behind a large changelog write would wait for it
                producers = [self._producer(), self._producer(linger_ms=0)]
                committer = AtLeastOnce(consumer, producers[0], self.changelog_topic,
                                        self.stores, interval,
                                        self.settings.state_cache_customers,
                                        outputs=producers[1],
                                        slice_s=self.settings.commit_encode_slice_ms / 1000)
            isolation = "read_committed" if self.exactly_once else "read_uncommitted"

            async def restore(stores: dict[int, PartitionStore]) -> Any:
                result = await changelog.restore(self.bootstrap, self.changelog_topic, stores,
                                                 isolation_level=isolation, **self.auth)
                self.restored_records += result.records
                return result

            if self.settings.standby_replicas > 0:
                self.standby = StandbyReplicas(self.bootstrap, self.changelog_topic,
                                               self.new_store, isolation, **self.auth)

            self.loop = StreamLoop(
                consumer=consumer, committer=committer, handler=self.handler,
                eraser=self.eraser, sweeper=self.sweeper, stores=self.stores,
                new_store=self.new_store, restore=restore, stats=self.stats, clock=self.clock,
                input_topic=self.settings.input_topic, erasure_topic=self.settings.erasure_topic,
                sweep_interval_s=self.settings.sweep_interval_s,
                max_records=self.settings.batch_max_records, exactly_once=self.exactly_once,
                standby=self.standby, standby_wanted=lambda: self.assignor.standby,
                freezer=PeriodicFreeze(self.settings.gc_freeze_interval_s),
                pace=FetchPace(consumer, self.settings.fetch_wait_ms,
                               self.settings.fetch_min_bytes, self.settings.fetch_idle_wait_ms),
                background_share=self.settings.background_share)
            consumer.subscribe([self.settings.input_topic, self.settings.erasure_topic],
                               listener=self.loop)
            starting = asyncio.gather(
                consumer.start(), *(producer.start() for producer in producers),
                self.standby.start() if self.standby is not None else _nothing())
            if not await self._until_stopped(starting):
                return EXIT_OK
            await committer.start()
            self.loop_task = asyncio.create_task(self.loop.run(), name="anomon-loop")
            timers.append(asyncio.create_task(self._every(lag.REFRESH_S,
                                                          self._refresh_end_offsets)))
            if self.settings.checkpoint_interval_s > 0:
                timers.append(asyncio.create_task(self._every(
                    self.settings.checkpoint_interval_s, self._save_models)))
            if self.settings.parent_pid:
                timers.append(asyncio.create_task(self._every(PARENT_CHECK_S,
                                                              self._watch_parent)))
            await self._until_stopped(self.loop_task, cancel=False)
            if (self.loop_task.done() and not self.loop_task.cancelled()
                    and self.loop_task.exception() is not None):
                log.error("the loop failed %s", kv(error=repr(self.loop_task.exception())))
                code = EXIT_FAIL
        finally:
            await self._shutdown(server, timers, committer, producers)
            gc_pauses.remove()
        return code

    async def _until_stopped(self, work: Any, cancel: bool = True) -> bool:
        """Wait for ``work`` or a stop request; whether ``work`` finished first.

        ``cancel``: cancel ``work`` on a stop request (else it is left to the shutdown).
        """
        task = asyncio.ensure_future(work)
        stop = asyncio.create_task(self.stop_requested.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if task.done():
            if cancel:
                task.result()
            return True
        if not cancel:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return False

    async def _shutdown(self, server: WebServer, timers: list[asyncio.Task[None]],
                        committer: Committer | None, producers: list[AIOKafkaProducer]) -> None:
        self.stop_requested.set()
        if self.loop is not None:
            self.loop.stopping.set()
        if self.loop_task is not None and not self.loop_task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self.loop_task), STOP_LOOP_S)
            except (TimeoutError, Exception):
                self.loop_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.loop_task
        for timer in timers:
            timer.cancel()
        if committer is not None:
            await committer.close(STOP_COMMIT_S)
        if self.consumer is not None:
            await _bounded(self.consumer.stop(), STOP_CLIENT_S, "consumer")
        for producer in producers:
            await _bounded(producer.stop(), STOP_CLIENT_S, "producer")
        if self.standby is not None:
            await _bounded(self.standby.stop(), STOP_CLIENT_S, "standby replicas")
        for store in list(self.stores.values()):
            store.close()
        await server.stop()

    def run(self) -> int:
        """Run in a new event loop until SIGINT/SIGTERM; returns the exit code."""
        code = EXIT_FAIL
        try:
            code = asyncio.run(self.run_async())
        finally:
            save_models(self.engine, self.checkpoint)
            log.info("worker stopped %s", kv(exit_code=code, **{
                k: v for k, v in self.stats.as_dict().items()
                if k in ("in", "processed", "duplicate", "late", "dead_lettered", "alerts")}))
        return code


_GC_PAUSES = [metrics.GC_PAUSE_SECONDS.labels(str(g)) for g in range(3)]


def _observe_gc_pause(generation: int, seconds: float) -> None:
    """``anomon_gc_pause_seconds`` of one collection (label children made once)."""
    _GC_PAUSES[min(generation, 2)].observe(seconds)


async def _nothing() -> None:
    return None


async def _bounded(work: Any, seconds: float, what: str) -> None:
    """Await ``work`` for at most ``seconds``; a client that cannot stop cleanly is left."""
    try:
        await asyncio.wait_for(work, seconds)
    except (TimeoutError, asyncio.CancelledError, Exception) as err:
        # with the broker gone a client's stop can time out, or end in the cancellation of
        # one of its own tasks: either way there is nothing more to wait for
        log.warning("%s did not stop cleanly %s", what, kv(error=repr(err)[:200]))


def run_worker(settings: Settings) -> int:
    """Check access, create the topics, then run the worker until stopped. Returns the exit code."""
    configure_logging(settings.log_level)
    set_pseudonym_key(settings.pseudonym_key.get_secret_value())
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        log.error("cannot create the data directory %s", kv(path=settings.data_dir, error=str(err)))
        return EXIT_FAIL

    async def prepare() -> int:
        await check_access(settings)  # fail closed: wrong credentials end the worker here
        return await ensure_topics(settings)

    try:
        partitions = asyncio.run(prepare())
    except (BrokerAccessError, SecurityConfigError) as err:
        log.error("cannot connect to Kafka: %s", err)
        return EXIT_FAIL
    except (TopicSetupError, KafkaError, OSError) as err:
        log.error("cannot set up topics %s", kv(broker=settings.broker, error=str(err)))
        return EXIT_FAIL
    started = time.monotonic()
    worker = Worker(settings, partitions)
    log.debug("worker built %s", kv(seconds=round(time.monotonic() - started, 3)))
    return worker.run()


def main() -> int:
    """``python -m anomon.worker.worker``: run with settings from the environment."""
    return run_worker(Settings())


if __name__ == "__main__":
    raise SystemExit(main())
