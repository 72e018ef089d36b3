"""``anomon forward``: alerts from the alerts topic to on-call tools, with retries and metrics.

Reads the alerts topic in its own consumer group (``forward_group``) with
``read_committed`` (an exactly-once worker's aborted outputs are never paged),
keeps the alerts that pass the filters (``forward_kinds``,
``forward_severities``, ``forward_segments``) and posts them in one of three
forms (``forward_format``):

* ``alertmanager``: Alertmanager's API, ``POST <url>/api/v2/alerts``
  (:mod:`anomon.ops.notify.alertmanager_api`): new firings and resolutions as
  they come, and every firing alert again each ``forward_resend_s`` until it is
  resolved. After a restart the firing set is rebuilt from the alerts the group
  had already forwarded, so re-sends go on;
* ``webhook``: the JSON Alertmanager itself sends to webhook receivers, one
  payload per fingerprint (:mod:`anomon.ops.notify.alertmanager`), for tools
  that take Alertmanager's notifications;
* ``pagerduty``: PagerDuty Events v2, trigger and resolve
  (:mod:`anomon.ops.notify.pagerduty`).

A server error, timeout, rate limit or refused connection is retried after
``forward_backoff_s``, doubled each time up to 30 s, each wait jittered, longer
when the answer carries ``Retry-After``; up to ``forward_max_attempts``. A
payload the endpoint rejects (another 4xx), or one still failing after the last
attempt, is logged and counted as failed and skipped. Offsets are committed
once every payload of a batch is delivered or given up, so a restart re-sends
at most one batch (receivers de-duplicate by fingerprint and ``alert_id``).

``/metrics`` on ``web_host:forward_metrics_port``: payloads delivered, failed
and retried, alerts read by outcome, the consumer lag and the firing alerts held.
A new group starts at the newest alert (``--from-beginning`` for the oldest).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from pydantic import ValidationError

from anomon.core.alerts import Alert
from anomon.exits import EXIT_FAIL, EXIT_OK, error_text, report
from anomon.kafka.logs import configure_logging, kv
from anomon.kafka.security import SecurityConfigError, kafka_auth
from anomon.kafka.topics import TopicSetupError, bootstrap_servers, check_topics, ensure_topics
from anomon.ops.notify.alertmanager import webhook_payloads
from anomon.ops.notify.alertmanager_api import ActiveAlerts, api_url
from anomon.ops.notify.backoff import backoff_delays, retriable, wait_before_retry
from anomon.ops.notify.pagerduty import pagerduty_event
from anomon.ops.patience import (
    PROBE_EVERY_S,
    BrokerAway,
    Patience,
    check_broker,
    quiet_kafka_client_logs,
    start_consumer,
    wait_for_broker,
)
from anomon.ops.tail import matches
from anomon.settings import Settings

log = logging.getLogger("anomon.ops.forward")

#: alerts per Alertmanager post (its API takes lists; this keeps each request small)
AM_CHUNK = 500


@dataclass
class ForwardReport:
    """What the forwarder did: alerts read, payloads delivered, retried and given up."""

    alerts: int = 0
    filtered: int = 0
    delivered: int = 0
    retries: int = 0
    undelivered: int = 0
    resends: int = 0
    statuses: list[int] = field(default_factory=list)


class ForwardMetrics:
    """The forwarder's own Prometheus metrics, in a registry of their own."""

    def __init__(self, fmt: str) -> None:
        self.registry = CollectorRegistry()
        self.format = fmt
        self.delivered = Counter("anomon_forward_delivered", "Payloads the endpoint accepted.",
                                 ["format"], registry=self.registry)
        self.failed = Counter("anomon_forward_failed",
                              "Payloads given up: rejected (4xx) or still failing after the "
                              "last attempt (exhausted).", ["format", "reason"],
                              registry=self.registry)
        self.retried = Counter("anomon_forward_retried", "Posts tried again after a failure.",
                               ["format"], registry=self.registry)
        self.alerts = Counter("anomon_forward_alerts",
                              "Alert records read, by outcome: forwarded, filtered, invalid.",
                              ["outcome"], registry=self.registry)
        self.lag = Gauge("anomon_forward_lag_records",
                         "Committed alert records not yet read by the forwarder.",
                         registry=self.registry)
        self.active = Gauge("anomon_forward_active_alerts",
                            "Firing alerts re-sent to Alertmanager until resolved.",
                            registry=self.registry)
        for outcome in ("forwarded", "filtered", "invalid"):
            self.alerts.labels(outcome)
        self.delivered.labels(fmt)
        self.retried.labels(fmt)
        for reason in ("rejected", "exhausted"):
            self.failed.labels(fmt, reason)

    async def serve(self, host: str, port: int) -> web.AppRunner:
        """Serve ``/metrics`` on ``host:port``; the caller cleans up the runner."""

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.registry),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner


def _names(csv: str) -> list[str] | None:
    names = [part.strip() for part in csv.split(",") if part.strip()]
    return names or None


def wanted(alert: Alert, settings: Settings) -> bool:
    """Whether ``alert`` passes the forwarder's kind, severity and segment filters."""
    return matches(alert, _names(settings.forward_kinds), _names(settings.forward_severities),
                   _names(settings.forward_segments))


class Gate:
    """The filters, with resolutions following their firing.

    A resolution carries the severity ``info`` and perhaps a new segment: it is
    forwarded when its firing was (whatever the filters say of it), and
    otherwise when it passes the kind and segment filters (a firing this
    process never saw, before a restart).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.open: set[tuple[str, int]] = set()

    def admit(self, alert: Alert) -> bool:
        key = (alert.fingerprint, alert.episode)
        if alert.status == "firing":
            if wanted(alert, self.settings):
                self.open.add(key)
                return True
            return False
        if key in self.open:
            self.open.discard(key)
            return True
        return matches(alert, _names(self.settings.forward_kinds), None,
                       _names(self.settings.forward_segments))

    def rebuild(self, alerts: list[Alert]) -> list[Alert]:
        """Take in alerts already forwarded; return those that were."""
        return [a for a in alerts if self.admit(a)]


def build_payloads(alerts: list[Alert], settings: Settings) -> list[Any]:
    """The bodies to post for a batch of alerts, in order (webhook and PagerDuty; pure)."""
    if settings.forward_format == "pagerduty":
        key = settings.forward_routing_key.get_secret_value()
        return [pagerduty_event(alert, key) for alert in alerts]
    if settings.forward_format == "alertmanager":
        raise ValueError("the Alertmanager API mode keeps state: use ActiveAlerts")
    return webhook_payloads(alerts, receiver=settings.app_id)


async def post_with_retries(session: aiohttp.ClientSession, url: str, body: Any,
                            settings: Settings, report: ForwardReport,
                            sleep: Callable[[float], Any] = asyncio.sleep,
                            metrics: ForwardMetrics | None = None) -> bool:
    """Post ``body`` until it is accepted, rejected, or the attempts run out."""
    delays = backoff_delays(settings.forward_backoff_s, settings.forward_max_attempts)
    timeout = aiohttp.ClientTimeout(total=settings.forward_timeout_s)
    fmt = settings.forward_format
    attempt = 0
    for attempt in range(settings.forward_max_attempts):
        retry_header: str | None = None
        try:
            async with session.post(url, json=body, timeout=timeout) as resp:
                status = resp.status
                retry_header = resp.headers.get("Retry-After")
                detail = (await resp.text())[:200]
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            status, detail = 0, f"{type(err).__name__}: {err}"
        report.statuses.append(status)
        if 200 <= status < 300:
            report.delivered += 1
            if metrics:
                metrics.delivered.labels(fmt).inc()
            return True
        if status and not retriable(status):
            log.error("payload rejected %s", kv(status=status, detail=detail))
            report.undelivered += 1
            if metrics:
                metrics.failed.labels(fmt, "rejected").inc()
            return False
        if attempt < len(delays):
            wait = wait_before_retry(delays[attempt], retry_header)
            report.retries += 1
            if metrics:
                metrics.retried.labels(fmt).inc()
            log.warning("post failed, retrying %s", kv(status=status or None, detail=detail,
                                                       attempt=attempt + 1, retry_in_s=wait))
            await sleep(wait)
    report.undelivered += 1
    if metrics:
        metrics.failed.labels(fmt, "exhausted").inc()
    log.error("payload undelivered, skipped %s", kv(attempts=attempt + 1, status=status or None))
    return False


def _decode(records: list[Any], metrics: ForwardMetrics | None = None) -> list[Alert]:
    alerts = []
    for record in records:
        try:
            alerts.append(Alert.from_bytes(record.value or b""))
        except ValidationError as err:
            if metrics:
                metrics.alerts.labels("invalid").inc()
            log.warning("not an alert %s", kv(partition=record.partition, offset=record.offset,
                                             error=str(err).splitlines()[0]))
    return alerts


def _in_order(records: list[Any]) -> list[Any]:
    return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))


async def _lag(consumer: AIOKafkaConsumer) -> int:
    """Records up to the last stable offset not yet read, over the assigned partitions."""
    total = 0
    for tp in consumer.assignment():
        end = consumer.last_stable_offset(tp)
        if end is None:
            end = consumer.highwater(tp)
        if end is not None:
            total += max(0, end - await consumer.position(tp))
    return total


async def already_forwarded(settings: Settings, group: str) -> list[Alert]:
    """The alerts ``group`` has committed past: what a restarted forwarder had sent."""
    options: dict[str, Any] = dict(bootstrap_servers=bootstrap_servers(settings.broker),
                                   enable_auto_commit=False, isolation_level="read_committed",
                                   client_id=f"{settings.app_id}-forward-rebuild",
                                   **kafka_auth(settings))
    probe = AIOKafkaConsumer(group_id=group, **options)
    await probe.start()
    try:
        parts = probe.partitions_for_topic(settings.alerts_topic)
        if parts is None:
            await probe._client.force_metadata_update()
            parts = probe.partitions_for_topic(settings.alerts_topic) or set()
        tps = [TopicPartition(settings.alerts_topic, p) for p in sorted(parts)]
        committed = {tp: await probe.committed(tp) or 0 for tp in tps}
    finally:
        await probe.stop()
    todo = {tp: end for tp, end in committed.items() if end > 0}
    if not todo:
        return []
    reader = AIOKafkaConsumer(group_id=None, **options)
    await reader.start()
    records: list[Any] = []
    try:
        reader.assign(list(todo))
        await reader.seek_to_beginning(*todo)
        while todo:
            batches = await reader.getmany(*todo, timeout_ms=500)
            for tp, recs in batches.items():
                records += [r for r in recs if r.offset < todo[tp]]
            for tp in list(todo):
                if await reader.position(tp) >= todo[tp]:
                    del todo[tp]
    finally:
        await reader.stop()
    return _decode(_in_order(records))


async def forward_async(settings: Settings, stop: asyncio.Event | None = None,
                        from_beginning: bool = False, limit: int | None = None,
                        create_topics: bool = True) -> ForwardReport:
    """Forward alerts until ``stop`` is set or ``limit`` alerts were read."""
    if not settings.forward_url:
        raise ValueError("no endpoint: set ANOMON_FORWARD_URL (or --url)")
    await wait_for_broker(settings.broker, Patience(settings.forward_give_up_s))
    if settings.topics == "check":
        await check_topics(settings, only=[settings.alerts_topic])
    elif create_topics:
        await ensure_topics(settings, with_changelog=False)
    fmt = settings.forward_format
    group = settings.forward_group or f"{settings.app_id}-forward"
    report = ForwardReport()
    metrics = ForwardMetrics(fmt)
    active = ActiveAlerts(settings.forward_resend_s) if fmt == "alertmanager" else None
    url = api_url(settings.forward_url) if fmt == "alertmanager" else settings.forward_url
    gate = Gate(settings)
    if active is not None:
        active.rebuild(gate.rebuild(await already_forwarded(settings, group)))
        metrics.active.set(len(active))
    runner = (await metrics.serve(settings.web_host, settings.forward_metrics_port)
              if settings.forward_metrics_port else None)
    patience = Patience(settings.forward_give_up_s)
    try:
        consumer = await _start_consumer(settings, group, from_beginning, patience)
    except BaseException:
        if runner is not None:
            await runner.cleanup()
        raise
    log.info("forwarding %s", kv(topic=settings.alerts_topic, format=fmt,
                                 firing_held=len(active) if active is not None else None))
    next_resend = time.monotonic()  # rebuilt firing alerts go out at once
    next_probe = time.monotonic() + PROBE_EVERY_S
    try:
        async with aiohttp.ClientSession(headers={"User-Agent": "anomon-forward"}) as session:
            while (limit is None or report.alerts < limit) and not (stop and stop.is_set()):
                batches = await consumer.getmany(timeout_ms=200, max_records=100)
                records = [r for part in batches.values() for r in part]
                if not records and time.monotonic() >= next_probe:
                    await check_broker(settings.broker, patience)  # BrokerAway in the end
                    next_probe = time.monotonic() + PROBE_EVERY_S
                metrics.lag.set(await _lag(consumer))
                if records:
                    alerts = _decode(_in_order(records), metrics)
                    report.alerts += len(alerts)
                    kept = [a for a in alerts if gate.admit(a)]
                    report.filtered += len(alerts) - len(kept)
                    metrics.alerts.labels("filtered").inc(len(alerts) - len(kept))
                    metrics.alerts.labels("forwarded").inc(len(kept))
                    if active is not None:
                        bodies: list[Any] = _chunks(active.update(kept))
                    else:
                        bodies = build_payloads(kept, settings) if kept else []
                    for body in bodies:
                        await post_with_retries(session, url, body, settings, report,
                                                metrics=metrics)
                    await consumer.commit()
                if active is not None and time.monotonic() >= next_resend:
                    for body in _chunks(active.current()):
                        report.resends += 1
                        await post_with_retries(session, url, body, settings, report,
                                                metrics=metrics)
                    next_resend = time.monotonic() + settings.forward_resend_s
                if active is not None:
                    metrics.active.set(len(active))
    finally:
        await consumer.stop()
        if runner is not None:
            await runner.cleanup()
    return report


async def _start_consumer(settings: Settings, group: str, from_beginning: bool,
                          patience: Patience) -> AIOKafkaConsumer:
    """A started committed-only reader of the alerts topic, backing off while the broker is away."""
    def make() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            settings.alerts_topic,
            bootstrap_servers=bootstrap_servers(settings.broker),
            group_id=group,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest" if from_beginning else "latest",
            client_id=f"{settings.app_id}-forward",
            request_timeout_ms=10000,
            **kafka_auth(settings),
        )

    consumer = await start_consumer(make, settings.broker, patience)
    assert consumer is not None  # no stop event: it returns a consumer or raises
    return consumer


def _chunks(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [items[i:i + AM_CHUNK] for i in range(0, len(items), AM_CHUNK)]


def run_forward(settings: Settings, from_beginning: bool = False) -> int:
    """``anomon forward``: run until interrupted; returns the exit code."""
    configure_logging(settings.log_level, fmt=settings.log_format)
    quiet_kafka_client_logs()
    try:
        asyncio.run(forward_async(settings, from_beginning=from_beginning))
    except ValueError as err:
        return report("forward", str(err), fix="set ANOMON_FORWARD_URL or pass --url")
    except BrokerAway as err:
        return report("forward", str(err), fix="is Kafka running? pass its address with --broker")
    except SecurityConfigError as err:
        return report("forward", error_text(err),
                      fix="check the ANOMON_KAFKA_* security settings")
    except (KafkaError, TopicSetupError, OSError) as err:
        return report("forward", error_text(err), code=EXIT_FAIL)
    return EXIT_OK
