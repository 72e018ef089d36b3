"""Send event dicts to the input topic, keyed by customer id, at a target rate.

The key is the event's ``customer_id`` (UTF-8), so that each customer's events
land on one partition, in order. The value is the event as JSON. ``rate`` is a
target in events per second (``None``: as fast as the broker takes them); the
pace is kept against the start time, so short stalls are caught up. ``pace``,
when given, is awaited every :data:`PACE_EVERY` events with the count sent so
far: a caller holds the producer back there (``anomon demo`` waits while the
worker's lag is over its bound).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from anomon.exits import EXIT_FAIL, EXIT_OK, error_text
from anomon.exits import report as fail
from anomon.kafka.logs import configure_logging, kv
from anomon.kafka.security import kafka_auth
from anomon.kafka.topics import TopicSetupError, bootstrap_servers, ensure_topics
from anomon.settings import Settings

log = logging.getLogger("anomon.ops.producer")

PROGRESS_EVERY_S = 5.0
PACE_EVERY = 50


def start_to_end_today(days: int, today: date | None = None) -> date:
    """The first day of a ``days``-long history that ends at 00:00 UTC today.

    >>> start_to_end_today(365, today=date(2026, 5, 1))
    datetime.date(2025, 5, 1)
    """
    return (today or datetime.now(UTC).date()) - timedelta(days=days)


@dataclass
class ProduceReport:
    """Progress, and the final count, of one run."""

    sent: int = 0
    failed: int = 0
    seconds: float = 0.0
    done: bool = False

    @property
    def rate(self) -> float:
        """Events per second so far."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        state = "done" if self.done else "sending"
        return kv(state=state, sent=self.sent, failed=self.failed,
                  seconds=round(self.seconds, 1), events_per_s=round(self.rate))


def encode_event(event: dict[str, Any]) -> tuple[bytes | None, bytes]:
    """(key, value) of an event dict: the customer id and the JSON.

    >>> encode_event({"customer_id": "c1", "type": "survey", "score": 9})
    (b'c1', b'{"customer_id":"c1","type":"survey","score":9}')
    """
    customer_id = event.get("customer_id")
    key = str(customer_id).encode() if customer_id is not None else None
    return key, orjson.dumps(event)


def new_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    """An aiokafka producer for ``settings.broker`` tuned for throughput."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(settings.broker),
        client_id=client_id,
        linger_ms=5,
        max_batch_size=256 * 1024,
        acks=1,
        request_timeout_ms=30000,
        **kafka_auth(settings),
    )


async def produce_async(
    settings: Settings,
    events: Iterable[dict[str, Any]],
    rate: float | None = None,
    progress: Callable[[ProduceReport], None] | None = None,
    stop: asyncio.Event | None = None,
    create_topics: bool = True,
    pace: Callable[[int], Awaitable[None]] | None = None,
) -> ProduceReport:
    """Send ``events`` to ``settings.input_topic``; returns the report once all are acknowledged."""
    if create_topics:
        await ensure_topics(settings, with_changelog=False)
    report = ProduceReport()
    producer = new_producer(settings, f"{settings.app_id}-producer")
    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # no "Unclosed AIOKafkaProducer" after a failed start
        raise
    started = time.perf_counter()
    next_progress = started + PROGRESS_EVERY_S

    def delivered(fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            report.failed += 1
            if report.failed <= 5:
                err = "cancelled" if fut.cancelled() else repr(fut.exception())
                log.warning("send failed %s", kv(error=err))

    try:
        for n, event in enumerate(events):
            if stop is not None and stop.is_set():
                break
            if pace is not None and n % PACE_EVERY == 0:
                await pace(report.sent)
                if stop is not None and stop.is_set():
                    break
            if rate:
                ahead = started + n / rate - time.perf_counter()
                if ahead > 0.002:
                    await asyncio.sleep(ahead)
            key, value = encode_event(event)
            fut = await producer.send(settings.input_topic, value=value, key=key)
            fut.add_done_callback(delivered)
            report.sent += 1
            now = time.perf_counter()
            if now >= next_progress:
                report.seconds = now - started
                next_progress = now + PROGRESS_EVERY_S
                if progress is not None:
                    progress(report)
        await producer.flush()
    finally:
        await producer.stop()
        report.seconds = time.perf_counter() - started
        report.done = True
    if progress is not None:
        progress(report)
    return report


def produce(settings: Settings, events: Iterable[dict[str, Any]], rate: float | None) -> int:
    """Send ``events`` to the input topic at ``rate`` events/s; returns the exit code."""
    configure_logging(settings.log_level)

    def show(report: ProduceReport) -> None:
        log.info("produce %s", report.line())

    try:
        report = asyncio.run(produce_async(settings, events, rate, progress=show))
    except (KafkaError, TopicSetupError, OSError) as err:
        return report_failure(settings, err)
    if report.failed:
        return fail("produce", f"{report.failed:,} of {report.sent:,} events were not "
                    "acknowledged by the broker")
    return EXIT_OK


def report_failure(settings: Settings, err: BaseException) -> int:
    """The one line for a broker failure (exit code 1)."""
    return fail("produce", f"{error_text(err)} (broker {bootstrap_servers(settings.broker)})",
                fix="is it running? pass --broker", code=EXIT_FAIL)
