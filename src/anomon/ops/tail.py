"""Follow the alerts topic and print each alert as one readable line (``anomon tail``).

A line fits in 120 columns: the event date (the customer's event time, not the
time the alert was printed), severity, kind, status, customer, value tier and
lifecycle stage, the score in its unit, and the first reason (cut to fit).
``--verbose`` adds every reason and the recommended action on lines of their own.

>>> from anomon.core.alerts import Alert
>>> a = Alert.model_validate({"alert_id": "x", "fingerprint": "f", "customer_id": "c4",
...     "kind": "drop_off", "status": "firing", "severity": "info", "score": 3.05,
...     "threshold": 2.7, "ts": "2026-03-01T00:00:00+00:00", "episode": 1,
...     "segment": {"tier": "low", "stage": "new"},
...     "reasons": [{"feature": "silence_days", "value": 40, "baseline": 7,
...                  "text": "40d"}],
...     "action": "Call.", "model": {"name": "rhythm-gamma", "version": "1.1"},
...     "events": []})
>>> print(format_alert(a))
event 2026-03-01  INFO      drop_off         firing    c4  low/new  surprise 3.0 (1 in 1.1k)  40d
>>> print(format_alert(a, verbose=True))
event 2026-03-01  INFO      drop_off         firing    c4  low/new  surprise 3.0 (1 in 1.1k)  40d
    why: 40d
    score: surprise 3.0 (1 in 1.1k), alerts from 2.7
    action: Call.
>>> matches(a, kinds={"drop_off"}, segments={"low"}), matches(a, segments={"high/new"})
(True, False)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import IO

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from anomon.core.alerts import Alert
from anomon.exits import EXIT_FAIL, EXIT_OK, error_text, report
from anomon.kafka.logs import configure_logging, kv
from anomon.kafka.security import SecurityConfigError, kafka_auth
from anomon.kafka.topics import TopicSetupError, bootstrap_servers, ensure_topics
from anomon.ops.patience import (
    GIVE_UP_S,
    PROBE_EVERY_S,
    BrokerAway,
    Patience,
    check_broker,
    quiet_kafka_client_logs,
    start_consumer,
)
from anomon.settings import Settings

log = logging.getLogger("anomon.ops.tail")

LINE_WIDTH = 120

SEVERITIES = ("info", "warning", "critical")
RESOLVED_TEXT = "back to their usual behaviour"



def one_in(surprise: float) -> str:
    """A surprise (``-log10 p``) as "1 in N": how rarely an unchanged customer shows this.

    >>> one_in(3.0), one_in(6.97), one_in(9.5)
    ('1 in 1k', '1 in 9.3M', '< 1 in 1G')
    """
    if surprise >= 9.0:
        return "< 1 in 1G"
    n = 10.0 ** surprise * (1 + 1e-9)  # 10 ** 3.0 is a hair under 1e3 in floating point
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"1 in {n / size:.2g}{suffix}"
    return f"1 in {n:.0f}"


def churn_chance(surprise: float) -> str:
    """A churn score (``-log10 P(they buy again)``) as the probability they do not.

    >>> churn_chance(0.42)
    'P(churn) 62%'
    """
    return f"P(churn) {100 * (1.0 - 10.0 ** -surprise):.0f}%"


#: How a score reads, by kind. Every score is a surprise, ``-log10`` of the
#: probability of the evidence for an unchanged customer (the threshold is in the
#: same unit); the words after it say the same in plain terms.
SCORE_WORDS: dict[str, Callable[[float], str]] = {
    "drop_off": one_in,
    "complaint_spike": one_in,
    "churn_risk": churn_chance,
    "refund_abuse": one_in,
    "payment_arrears": one_in,
    "spend_anomaly": one_in,
}


def score_text(alert: Alert, words: bool = True) -> str:
    """The score with its unit: ``surprise 3.2 (1 in 1.4k)``, or without ``words`` ``surprise 3.2``.

    Churn risk says ``surprise 0.4 (P(churn) 62%)``.
    """
    text = f"surprise {alert.score:.1f}"
    if not words:
        return text
    return f"{text} ({SCORE_WORDS.get(str(alert.kind), one_in)(alert.score)})"


def format_alert(alert: Alert, verbose: bool = False, width: int = LINE_WIDTH) -> str:
    """The alert as one line of at most ``width`` columns (more lines with ``verbose``).

    When the line is too long, the score loses its words first, then the reason
    keeps only its first clause (the fact; the rest is context), then it is cut.
    """
    head = (f"event {alert.ts[:10]}  {alert.severity.upper():<8}  {alert.kind!s:<15}  "
            f"{alert.status:<8}  {alert.customer_id}  {alert.segment.tier}/{alert.segment.stage}")
    reason = alert.reasons[0].text if alert.reasons else ""
    if not reason and alert.status == "resolved":
        reason = RESOLVED_TEXT
    firing = alert.status == "firing"
    candidates = []
    for words in (True, False):
        start = f"{head}  {score_text(alert, words)}" if firing else head
        candidates.append(f"{start}  {reason}" if reason else start)
        if "; " in reason:
            candidates.append(f"{start}  {reason.split('; ')[0]}")
    line = next((c for c in candidates if len(c) <= width), candidates[-1])
    if len(line) > width:
        line = line[: width - 1] + "…"
    if not verbose:
        return line
    more = [f"    why: {r.text}" for r in alert.reasons if r.text]
    if firing:
        more.append(f"    score: {score_text(alert)}, alerts from {alert.threshold:.1f}")
    more.append(f"    action: {alert.action}")
    return "\n".join([line, *more])


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


async def _start_consumer(settings: Settings, from_beginning: bool, create_topics: bool,
                          patience: Patience, stop: asyncio.Event | None
                          ) -> AIOKafkaConsumer | None:
    """A started consumer of the alerts topic, retrying while the broker is away.

    ``None`` when ``stop`` was set meanwhile.
    """
    def make() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            settings.alerts_topic,
            bootstrap_servers=bootstrap_servers(settings.broker),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            client_id=f"{settings.app_id}-tail",
            request_timeout_ms=10000,
            **kafka_auth(settings),
        )

    async def topics() -> None:
        await ensure_topics(settings, with_changelog=False)

    return await start_consumer(make, settings.broker, patience,
                                before=topics if create_topics else None, stop=stop)


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
    give_up_s: float = GIVE_UP_S,
) -> int:
    """Call ``on_alert`` for each matching alert until ``limit`` or ``stop``; returns the count.

    Raises :class:`BrokerAway` when the broker cannot be reached for ``give_up_s``
    seconds, at the start or later.
    """
    kinds, severities, segments = (list(kinds or []), list(severities or []),
                                   list(segments or []))
    patience = Patience(give_up_s)
    consumer = await _start_consumer(settings, from_beginning, create_topics, patience, stop)
    if consumer is None:
        return 0
    shown = 0
    next_probe = time.monotonic() + PROBE_EVERY_S
    try:
        while limit is None or shown < limit:
            if stop is not None and stop.is_set():
                break
            batches = await consumer.getmany(timeout_ms=200)
            if not batches and time.monotonic() >= next_probe:
                await check_broker(settings.broker, patience)
                next_probe = time.monotonic() + PROBE_EVERY_S
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
    verbose: bool = False,
    give_up_s: float = GIVE_UP_S,
) -> int:
    """Print matching alerts to ``out``, one line each; returns the exit code."""
    configure_logging(settings.log_level)
    quiet_kafka_client_logs()

    def show(alert: Alert) -> None:
        out.write(format_alert(alert, verbose=verbose) + "\n")
        out.flush()

    try:
        asyncio.run(tail_async(settings, show, kinds, severities, from_beginning, limit,
                               segments=segments, give_up_s=give_up_s))
    except BrokerAway as err:
        return report("tail", str(err), fix="is it running? pass its address with --broker "
                      "(anomon demo prints it)")
    except SecurityConfigError as err:
        return report("tail", error_text(err), fix="check the ANOMON_KAFKA_* security settings")
    except (KafkaError, TopicSetupError, OSError) as err:
        return report("tail", error_text(err), code=EXIT_FAIL)
    return EXIT_OK
