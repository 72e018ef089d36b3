"""Handling one input record: decode, run the engine on the customer's state, say what to send.

:class:`RecordHandler` is the whole per-record path of the worker and nothing
else: no Kafka client, no Faust. The customer states sit behind
:class:`StateStore` (``get`` and item assignment), which a plain ``dict``
satisfies, so the path is tested without a broker::

    >>> from anomon.core.engine import Engine
    >>> from anomon.worker.stats import WorkerStats
    >>> store: dict = {}
    >>> handler = RecordHandler(Engine(), store, WorkerStats(), OutputTopics("a", "d", "l"))
    >>> raw = (b'{"event_id":"e1","customer_id":"c1","type":"purchase","amount":10,'
    ...        b'"ts":"2026-01-05T10:00:00+00:00"}')
    >>> handler.handle(InputRecord("events", 0, 7, b"c1", raw))
    []
    >>> store["c1"].n_purchases, handler.stats.as_dict()["processed"]
    (1, 1)
    >>> out = handler.handle(InputRecord("events", 0, 8, b"c1", b"{oops"))
    >>> out[0].topic, handler.stats.as_dict()["dead_lettered_by_reason"]
    ('d', {'invalid_json': 1})

Every record ends in exactly one outcome (``processed``, ``duplicate``,
``late`` or ``dead_lettered``); see :mod:`anomon.worker.worker`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from anomon.core.alerts import Alert
from anomon.core.decoding import EventDecoder
from anomon.core.engine import Engine
from anomon.core.errors import EventRejected
from anomon.core.events import Event
from anomon.core.state import CustomerState
from anomon.kafka.dead_letter import build_dead_letter
from anomon.kafka.logs import customer_ref, kv
from anomon.worker import metrics
from anomon.worker.stats import WorkerStats

log = logging.getLogger("anomon.worker.records")

Headers = list[tuple[str, bytes]]


class StateStore(Protocol):
    """Customer states by customer id; a ``dict[str, CustomerState]`` is one."""

    def get(self, customer_id: str, /) -> CustomerState | None: ...

    def __setitem__(self, customer_id: str, state: CustomerState, /) -> None: ...


@dataclass(frozen=True, slots=True)
class InputRecord:
    """The fields of an input record that the handler reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    headers: Headers | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to publish once the input record is handled (``topic`` is a topic name)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None


@dataclass(frozen=True, slots=True)
class OutputTopics:
    """Where alerts, dead letters and late events go."""

    alerts: str
    dlq: str
    late: str


@dataclass(slots=True)
class RecordHandler:
    """The per-record path; ``on_processed(state, event_time)`` is told of each applied event."""

    engine: Engine
    store: StateStore
    stats: WorkerStats
    topics: OutputTopics
    decoder: EventDecoder = field(default_factory=EventDecoder)
    on_processed: Callable[[CustomerState, float], None] | None = None
    #: event time of the last record that decoded (``None`` after a rejected one)
    last_event_ts: float | None = None

    def handle(self, record: InputRecord) -> list[Outgoing]:
        """Decode, process and store one input record; return what to publish."""
        self.stats.record_in()
        if self.stats.records_in == 1:
            since = round(time.time() - self.stats.started_at, 2)
            log.info("first record %s", kv(seconds_since_start=since))
        self.last_event_ts = None
        try:
            event = self.decoder.decode(record.value)
        except EventRejected as err:
            return [self.dead_letter(record, err.reason, err.detail, "decode", "EventRejected")]
        self.last_event_ts = event.epoch
        try:
            return self._process(record, event)
        except Exception as exc:  # a bug must not stop the stream: dead-letter the record
            log.exception("processing failed %s", kv(
                topic=record.topic, partition=record.partition, offset=record.offset,
                customer=customer_ref(event.customer_id), error=type(exc).__name__))
            return [self.dead_letter(record, "processing_error", f"{type(exc).__name__}: {exc}",
                                     "process", type(exc).__name__, event.type)]

    def _process(self, record: InputRecord, event: Event) -> list[Outgoing]:
        customer_id = event.customer_id
        step = self.engine.process(self.store.get(customer_id), event, partition=record.partition)
        processed = step.outcome == "processed"
        alerts = [(alert, alert.to_bytes()) for alert in step.alerts]
        if processed:  # the store may encode and raise: before any other effect
            self.store[customer_id] = step.state
        # nothing below raises: the record's effects are all or nothing
        if record.key != customer_id.encode():
            self.stats.record_key_mismatch()
            log.debug("key differs from customer_id %s", kv(
                partition=record.partition, offset=record.offset,
                customer=customer_ref(customer_id)))
        outgoing: list[Outgoing] = []
        if processed:
            if self.on_processed is not None:
                self.on_processed(step.state, event.epoch)
        elif step.outcome == "late":
            outgoing.append(Outgoing(self.topics.late, record.key, record.value or b"",
                                     record.headers))
        self.stats.record_outcome(event.type, step.outcome)
        outgoing.extend(self.alert_records(alerts))
        return outgoing

    def dead_letter(self, record: InputRecord, reason: str, detail: str, stage: str,
                    error_class: str, event_type: str = "unknown") -> Outgoing:
        """The dead-letter record for ``record``, counted and logged."""
        self.stats.record_dead_letter(reason, event_type)
        timestamp_ms = int(record.timestamp * 1000) if record.timestamp is not None else None
        built = build_dead_letter(
            record.value, key=record.key, topic=record.topic, partition=record.partition,
            offset=record.offset, timestamp_ms=timestamp_ms, reason=reason, detail=detail,
            stage=stage, error_class=error_class, headers=record.headers)
        log.info("dead-lettered %s", kv(reason=reason, topic=record.topic,
                                        partition=record.partition, offset=record.offset,
                                        detail=detail[:160]))
        return Outgoing(self.topics.dlq, built.key, built.value, built.headers)

    def alert_records(self, alerts: list[tuple[Alert, bytes]]) -> list[Outgoing]:
        """Alert records (customer id key, kind and status headers), counted and logged."""
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
                                 ("anomon.alert.status", alert.status.encode())]))
        return out
