"""Record handling: one input record in, its outcome counted, what to publish out.

No Kafka client, no web server: :class:`RecordHandler` takes a record (anything
with aiokafka's ``ConsumerRecord`` fields) and a :class:`~anomon.worker.store.StateStore`
(a plain ``dict`` will do) and returns :class:`Outgoing` records. Every record
ends in exactly one outcome:

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
``customer_id``, in the store of the record's own partition, and counted in
``anomon_key_mismatch``. Fix the producer.

>>> from anomon.core.engine import Engine
>>> from anomon.worker.stats import WorkerStats
>>> from anomon.worker.sweep import SweepClock
>>> h = RecordHandler(Engine(), EventDecoder(), WorkerStats(), OutputTopics("a", "d", "l"),
...                   SweepClock("wall"))
>>> store = {}
>>> value = (b'{"event_id":"e1","customer_id":"c1","type":"survey",'
...          b'"ts":"2026-01-01T00:00:00Z","score":9}')
>>> rec = InputRecord("events", 0, 0, b"c1", value, None, [])
>>> h.handle(rec, store), store["c1"].nps
([], 9)
>>> [o.topic for o in h.handle(InputRecord("events", 0, 1, b"c1", b"oops", None, []), store)]
['d']
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from anomon.core.alerts import Alert
from anomon.core.decoding import EventDecoder
from anomon.core.engine import Engine
from anomon.core.errors import EventRejected
from anomon.core.events import Event
from anomon.kafka.dead_letter import build_dead_letter
from anomon.kafka.logs import customer_ref, kv
from anomon.worker import metrics
from anomon.worker.stats import WorkerStats
from anomon.worker.store import StateStore
from anomon.worker.sweep import SweepClock

log = logging.getLogger("anomon.worker.handler")

Headers = list[tuple[str, bytes]]


class Record(Protocol):
    """The fields of an input record the handler reads (aiokafka's ``ConsumerRecord``)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def timestamp(self) -> int | None: ...  # milliseconds

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class InputRecord:
    """A record built by hand (tests, tools): the fields :class:`Record` asks for."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None
    headers: Sequence[tuple[str, bytes]]


@dataclass(slots=True)
class Outgoing:
    """A record to publish, and the input partition whose record (or sweep) caused it."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None
    partition: int


@dataclass(frozen=True, slots=True)
class OutputTopics:
    """Where alerts, dead letters and late events go."""

    alerts: str
    dlq: str
    late: str


class RecordHandler:
    """Decode, process and store one input record; say what to publish."""

    def __init__(self, engine: Engine, decoder: EventDecoder, stats: WorkerStats,
                 topics: OutputTopics, clock: SweepClock) -> None:
        self.engine = engine
        self.decoder = decoder
        self.stats = stats
        self.topics = topics
        self.clock = clock

    def handle(self, record: Record, store: StateStore) -> list[Outgoing]:
        """Handle ``record`` against ``store`` (the states of its partition)."""
        return self._handle_decoded(record, self._decode(record), store)

    def handle_batch(self, records: Sequence[Record], store: StateStore,
                     out: list[Outgoing]) -> None:
        """Handle ``records`` of one partition in order, adding what to publish to ``out``.

        All are decoded first, then processed: the decoder's and the engine's code
        each stay warm for a whole batch (12% less time per event than
        alternating, on the default synthetic year).
        """
        decoded = [self._decode(record) for record in records]
        handle = self._handle_decoded
        for record, event in zip(records, decoded, strict=True):
            out.extend(handle(record, event, store))

    def _decode(self, record: Record) -> Event | EventRejected:
        try:
            return self.decoder.decode(record.value)
        except EventRejected as err:
            return err

    def _handle_decoded(self, record: Record, event: Event | EventRejected,
                        store: StateStore) -> list[Outgoing]:
        self.stats.record_in()
        event_ts: float | None = None
        try:
            if isinstance(event, EventRejected):
                return [self.dead_letter(record, event.reason, event.detail, "decode",
                                         "EventRejected")]
            event_ts = event.epoch
            try:
                return self._process(record, event, store)
            except Exception as exc:  # a bug must not stop the stream: dead-letter the record
                log.exception("processing failed %s", kv(
                    topic=record.topic, partition=record.partition, offset=record.offset,
                    customer=customer_ref(event.customer_id), error=type(exc).__name__))
                return [self.dead_letter(record, "processing_error",
                                         f"{type(exc).__name__}: {exc}", "process",
                                         type(exc).__name__, event.type)]
        finally:
            self.clock.observe(record.partition, record.offset, event_ts)

    def _process(self, record: Record, event: Event, store: StateStore) -> list[Outgoing]:
        customer_id = event.customer_id
        partition = record.partition
        step = self.engine.process(store.get(customer_id), event, partition=partition)
        alerts = [(alert, alert.to_bytes()) for alert in step.alerts] if step.alerts else None
        # nothing below raises: the record's effects are all or nothing
        if record.key != customer_id.encode():
            self.stats.record_key_mismatch()
            log.debug("key differs from customer_id %s", kv(
                partition=partition, offset=record.offset, customer=customer_ref(customer_id)))
        outgoing: list[Outgoing] = []
        if step.outcome == "processed":
            store[customer_id] = step.state
        elif step.outcome == "late":
            outgoing.append(Outgoing(self.topics.late, record.key, record.value or b"",
                                     _headers(record), partition))
        self.stats.record_outcome(event.type, step.outcome)
        if alerts:
            outgoing.extend(self.alert_records(alerts, partition))
        return outgoing

    def dead_letter(self, record: Record, reason: str, detail: str, stage: str,
                    error_class: str, event_type: str = "unknown") -> Outgoing:
        """The dead-letter record of ``record`` (counted)."""
        self.stats.record_dead_letter(reason, event_type)
        dead = build_dead_letter(
            record.value, key=record.key, topic=record.topic, partition=record.partition,
            offset=record.offset, timestamp_ms=record.timestamp, reason=reason, detail=detail,
            stage=stage, error_class=error_class, headers=_headers(record))
        log.info("dead-lettered %s", kv(reason=reason, topic=record.topic,
                                        partition=record.partition, offset=record.offset,
                                        detail=detail[:160]))
        return Outgoing(self.topics.dlq, dead.key, dead.value, dead.headers, record.partition)

    def alert_records(self, alerts: list[tuple[Alert, bytes]], partition: int
                      ) -> list[Outgoing]:
        """Alerts as records of the alerts topic (counted and logged)."""
        out = []
        for alert, value in alerts:
            self.stats.record_alert(alert)
            if alert.status == "firing":
                metrics.MODEL_SCORE.labels(alert.model.name).observe(alert.score)
            log.info("alert %s", kv(
                kind=str(alert.kind), status=alert.status, severity=alert.severity,
                customer=customer_ref(alert.customer_id), episode=alert.episode, ts=alert.ts))
            out.append(Outgoing(self.topics.alerts, alert.customer_id.encode(), value,
                                [("anomon.alert.kind", str(alert.kind).encode()),
                                 ("anomon.alert.status", alert.status.encode())], partition))
        return out


def _headers(record: Record) -> Headers | None:
    headers = record.headers
    if not headers:
        return None
    return [(str(k), bytes(v or b"")) for k, v in headers]
