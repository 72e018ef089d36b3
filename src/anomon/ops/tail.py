"""Follow the alerts topic and print each alert as one readable line (``anomon tail``).

>>> from anomon.core.alerts import Alert
>>> a = Alert.model_validate({"alert_id": "x", "fingerprint": "f", "customer_id": "c-42",
...     "kind": "drop_off", "status": "firing", "severity": "info", "score": 0.9991,
...     "threshold": 0.998, "ts": "2026-03-01T00:00:00+00:00", "episode": 1,
...     "segment": {"tier": "low", "stage": "new"},
...     "reasons": [{"feature": "silence_days", "value": 40, "baseline": 7,
...                  "text": "40 days"}],
...     "action": "Call.", "model": {"name": "rhythm-gamma", "version": "1.1"},
...     "events": []})
>>> print(format_alert(a))
2026-03-01 00:00  INFO      drop_off         firing    c-42  low/new  score 0.999  40 days  -> Call.
>>> matches(a, kinds={"drop_off"}, segments={"low"}), matches(a, segments={"high/new"})
(True, False)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import IO

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from anomon.core.alerts import Alert
from anomon.kafka.logs import configure_logging, kv
from anomon.kafka.security import SecurityConfigError, kafka_auth
from anomon.kafka.topics import TopicSetupError, bootstrap_servers, ensure_topics
from anomon.settings import Settings

log = logging.getLogger("anomon.ops.tail")


def format_alert(alert: Alert) -> str:
    """One line: time, severity, kind, status, customer, segment, score, first reason, action."""
    when = alert.ts[:16].replace("T", " ")
    head = (f"{when}  {alert.severity.upper():<8}  {alert.kind!s:<15}  {alert.status:<8}  "
            f"{alert.customer_id}  {alert.segment.tier}/{alert.segment.stage}")
    if alert.status != "firing":
        return f"{head}  {alert.action}"
    reason = alert.reasons[0].text if alert.reasons else ""
    return f"{head}  score {alert.score:.3g}  {reason}  -> {alert.action}"


def _wanted(values: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(v.strip().lower() for v in values) if values else None


def matches(alert: Alert, kinds: Iterable[str] | None = None,
            severities: Iterable[str] | None = None,
            segments: Iterable[str] | None = None) -> bool:
    """Whether ``alert`` passes the filters (each ``None`` or empty: any).

    A segment is a value tier (``high``), a lifecycle stage (``at_risk``) or
    both (``high/at_risk``).
    """
    want_kinds, want_severities = _wanted(kinds), _wanted(severities)
    if want_kinds is not None and str(alert.kind) not in want_kinds:
        return False
    if want_severities is not None and alert.severity not in want_severities:
        return False
    want_segments = _wanted(segments)
    if want_segments is None:
        return True
    tier, stage = alert.segment.tier, alert.segment.stage
    return bool({tier, stage, f"{tier}/{stage}"} & want_segments)


async def tail_async(
    settings: Settings,
    on_alert: Callable[[Alert], None],
    kinds: Iterable[str] | None = None,
    severities: Iterable[str] | None = None,
    from_beginning: bool = False,
    limit: int | None = None,
    stop: asyncio.Event | None = None,
    create_topics: bool = True,
    segments: Iterable[str] | None = None,
) -> int:
    """Call ``on_alert`` for each matching alert until ``limit`` or ``stop``; returns the count."""
    if create_topics:
        await ensure_topics(settings, with_changelog=False)
    kinds, severities, segments = (list(kinds or []), list(severities or []),
                                   list(segments or []))
    consumer = AIOKafkaConsumer(
        settings.alerts_topic,
        bootstrap_servers=bootstrap_servers(settings.broker),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        client_id=f"{settings.app_id}-tail",
        **kafka_auth(settings),
    )
    await consumer.start()
    shown = 0
    try:
        while limit is None or shown < limit:
            if stop is not None and stop.is_set():
                break
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    try:
                        alert = Alert.from_bytes(record.value or b"")
                    except ValidationError as err:
                        log.warning("not an alert %s", kv(partition=record.partition,
                                                         offset=record.offset,
                                                         error=str(err).splitlines()[0]))
                        continue
                    if not matches(alert, kinds, severities, segments):
                        continue
                    on_alert(alert)
                    shown += 1
                    if limit is not None and shown >= limit:
                        break
                if limit is not None and shown >= limit:
                    break
    finally:
        await consumer.stop()
    return shown


def tail_alerts(
    settings: Settings,
    kinds: list[str] | None,
    severities: list[str] | None,
    from_beginning: bool,
    limit: int | None,
    out: IO[str],
    segments: list[str] | None = None,
) -> int:
    """Print matching alerts to ``out``, one line each; returns the exit code."""
    configure_logging(settings.log_level)

    def show(alert: Alert) -> None:
        out.write(format_alert(alert) + "\n")
        out.flush()

    try:
        asyncio.run(tail_async(settings, show, kinds, severities, from_beginning, limit,
                               segments=segments))
    except (KafkaError, TopicSetupError, SecurityConfigError, OSError) as err:
        log.error("tail failed %s", kv(broker=settings.broker, error=str(err)))
        return 1
    return 0
