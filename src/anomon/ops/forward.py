"""``anomon forward``: alerts from the alerts topic to an HTTP endpoint, with retries.

Reads the alerts topic in its own consumer group (``forward_group``), turns each
batch into payloads (:mod:`anomon.ops.notify`: Alertmanager webhook JSON grouped by
fingerprint, or PagerDuty Events v2) and posts them in order. A server error,
timeout, rate limit or refused connection is retried after 0.5 s, 1 s, 2 s...
(``forward_backoff_s``, at most 30 s) up to ``forward_max_attempts``; a payload
the endpoint rejects (another 4xx), or one still failing after the last
attempt, is logged as undelivered and skipped. Offsets are committed once every
payload of a batch is delivered or given up, so a restart re-sends at most one
batch (receivers de-duplicate by fingerprint and ``alert_id``).

A new group starts at the newest alert (``--from-beginning`` for the oldest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from anomon.core.alerts import Alert
from anomon.exits import EXIT_FAIL, EXIT_OK
from anomon.kafka.logs import configure_logging, kv
from anomon.kafka.security import SecurityConfigError, kafka_auth
from anomon.kafka.topics import TopicSetupError, bootstrap_servers, ensure_topics
from anomon.ops.notify.alertmanager import webhook_payloads
from anomon.ops.notify.backoff import backoff_delays, retriable
from anomon.ops.notify.pagerduty import pagerduty_event
from anomon.settings import Settings

log = logging.getLogger("anomon.ops.forward")



@dataclass
class ForwardReport:
    """What the forwarder did: alerts read, payloads delivered, retried and given up."""

    alerts: int = 0
    delivered: int = 0
    retries: int = 0
    undelivered: int = 0
    statuses: list[int] = field(default_factory=list)


def build_payloads(alerts: list[Alert], settings: Settings) -> list[dict[str, Any]]:
    """The bodies to post for a batch of alerts, in order (pure)."""
    if settings.forward_format == "pagerduty":
        key = settings.forward_routing_key.get_secret_value()
        return [pagerduty_event(alert, key) for alert in alerts]
    return webhook_payloads(alerts, receiver=settings.app_id)


async def post_with_retries(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                            settings: Settings, report: ForwardReport,
                            sleep: Callable[[float], Any] = asyncio.sleep) -> bool:
    """Post ``body`` until it is accepted, rejected, or the attempts run out."""
    delays = backoff_delays(settings.forward_backoff_s, settings.forward_max_attempts)
    timeout = aiohttp.ClientTimeout(total=settings.forward_timeout_s)
    for attempt in range(settings.forward_max_attempts):
        try:
            async with session.post(url, json=body, timeout=timeout) as resp:
                status = resp.status
                detail = (await resp.text())[:200]
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            status, detail = 0, f"{type(err).__name__}: {err}"
        report.statuses.append(status)
        if 200 <= status < 300:
            report.delivered += 1
            return True
        if status and not retriable(status):
            log.error("payload rejected %s", kv(status=status, detail=detail))
            break
        if attempt < len(delays):
            report.retries += 1
            log.warning("post failed, retrying %s", kv(status=status or None, detail=detail,
                                                       attempt=attempt + 1,
                                                       retry_in_s=delays[attempt]))
            await sleep(delays[attempt])
    report.undelivered += 1
    log.error("payload undelivered, skipped %s", kv(attempts=attempt + 1, status=status or None))
    return False


def _decode(records: list[Any]) -> list[Alert]:
    alerts = []
    for record in records:
        try:
            alerts.append(Alert.from_bytes(record.value or b""))
        except ValidationError as err:
            log.warning("not an alert %s", kv(partition=record.partition, offset=record.offset,
                                             error=str(err).splitlines()[0]))
    return alerts


async def forward_async(settings: Settings, stop: asyncio.Event | None = None,
                        from_beginning: bool = False, limit: int | None = None,
                        create_topics: bool = True) -> ForwardReport:
    """Forward alerts until ``stop`` is set or ``limit`` alerts were read."""
    if not settings.forward_url:
        raise ValueError("no endpoint: set ANOMON_FORWARD_URL (or --url)")
    if create_topics:
        await ensure_topics(settings, with_changelog=False)
    report = ForwardReport()
    consumer = AIOKafkaConsumer(
        settings.alerts_topic,
        bootstrap_servers=bootstrap_servers(settings.broker),
        group_id=settings.forward_group or f"{settings.app_id}-forward",
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        client_id=f"{settings.app_id}-forward",
        **kafka_auth(settings),
    )
    await consumer.start()
    log.info("forwarding %s", kv(topic=settings.alerts_topic, format=settings.forward_format))
    try:
        async with aiohttp.ClientSession(headers={"User-Agent": "anomon-forward"}) as session:
            while (limit is None or report.alerts < limit) and not (stop and stop.is_set()):
                batches = await consumer.getmany(timeout_ms=200, max_records=100)
                records = [r for part in batches.values() for r in part]
                if not records:
                    continue
                alerts = _decode(sorted(records, key=lambda r: (r.timestamp, r.partition)))
                report.alerts += len(alerts)
                for body in build_payloads(alerts, settings):
                    await post_with_retries(session, settings.forward_url, body, settings,
                                            report)
                await consumer.commit()
    finally:
        await consumer.stop()
    return report


def run_forward(settings: Settings, from_beginning: bool = False) -> int:
    """``anomon forward``: run until interrupted; returns the exit code."""
    configure_logging(settings.log_level)
    try:
        asyncio.run(forward_async(settings, from_beginning=from_beginning))
    except ValueError as err:
        log.error("cannot forward %s", kv(error=str(err)))
        return EXIT_FAIL
    except (KafkaError, TopicSetupError, SecurityConfigError, OSError) as err:
        log.error("forward failed %s", kv(broker=settings.broker, error=str(err)))
        return EXIT_FAIL
    return EXIT_OK
