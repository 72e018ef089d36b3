"""``anomon forward`` on a real broker, posting to a local HTTP receiver.

Alerts are produced to the alerts topic with a Kafka client; the forwarder reads
them and posts to an aiohttp server on loopback that fails the first attempts
(the forwarder must retry with backoff), rejects one path outright (no retry),
and records what it accepted. Every body posted to Alertmanager's or
PagerDuty's path is checked against that API's documented schema
(``payload_schemas``); the receiver answers 400 to a body that breaks it, as
the real services do, and the tests fail on any such answer.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from anomon.core.alerts import Alert, alert_id, fingerprint
from anomon.ops.forward import forward_async
from anomon.settings import Settings

pytest.importorskip("jsonschema", reason="the payload schema checks need the dev extra")

from payload_schemas import ALERTMANAGER, PAGERDUTY, problems
from workerkit import Names, bootstrap_of, free_port, metric_samples, require_kafka, send

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _alert(customer: str, kind: str, status: str, ts: str, severity: str = "critical") -> Alert:
    fp = fingerprint(customer, kind)
    return Alert.model_validate({
        "alert_id": alert_id(fp, 1, status), "fingerprint": fp, "customer_id": customer,
        "kind": kind, "status": status, "severity": severity, "score": 0.9995,
        "threshold": 0.998, "ts": ts, "episode": 1, "segment": {"tier": "high", "stage": "loyal"},
        "reasons": [{"feature": "silence_days", "value": 40, "baseline": 7,
                     "text": "no purchase for 40 days; usually buys every 7 days"}],
        "action": "Account manager calls within a day.",
        "model": {"name": "rhythm-gamma", "version": "1.1"}, "events": []})


SCHEMA_OF_PATH = {"/api/v2/alerts": ALERTMANAGER, "/v2/enqueue": PAGERDUTY}


class Receiver:
    """Fails the first ``fail_first`` posts with ``fail_status``, then accepts.

    ``/reject`` answers 400; a body that breaks the documented schema of its
    path answers 400 too and is kept in ``invalid``.
    """

    def __init__(self, fail_first: int, ok_status: int = 200, fail_status: int = 503,
                 retry_after: str | None = None) -> None:
        self.fail_first, self.ok_status = fail_first, ok_status
        self.fail_status, self.retry_after = fail_status, retry_after
        self.seen: list[tuple[int, Any]] = []
        self.times: list[float] = []
        self.invalid: list[tuple[Any, list[str]]] = []
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.times.append(time.monotonic())
        headers = {}
        schema = SCHEMA_OF_PATH.get(request.path)
        broken = problems(schema, body) if schema else []
        if broken:
            self.invalid.append((body, broken))
            status = 400
        elif request.path == "/reject":
            status = 400
        elif self.fail_first > 0:
            self.fail_first -= 1
            status = self.fail_status
            if self.retry_after:
                headers["Retry-After"] = self.retry_after
        else:
            status = self.ok_status
        self.seen.append((status, body))
        return web.json_response({"status": "ok" if status < 300 else "no"}, status=status,
                                 headers=headers)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    def accepted(self) -> list[Any]:
        return [body for status, body in self.seen if status < 300]

    def am_alerts(self) -> list[dict[str, Any]]:
        """Every alert of every accepted Alertmanager post, in order."""
        return [alert for body in self.accepted() if isinstance(body, list) for alert in body]


def _settings(broker: Any, names: Names, url: str, **extra: Any) -> Settings:
    extra.setdefault("forward_metrics_port", 0)
    return Settings(broker=bootstrap_of(broker), app_id=names.app_id, alerts_topic=names.alerts,
                    input_topic=names.input, dlq_topic=names.dlq, late_topic=names.late,
                    erasure_topic=names.erasure, forward_url=url, forward_backoff_s=0.05,
                    forward_max_attempts=5, **extra)


async def _run_for(settings: Settings, seconds: float, **kwargs: Any) -> Any:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    return await forward_async(settings, stop=stop, **kwargs)


@pytest.mark.slow  # over 10 s: in `make test`, not the `make check` loop
def test_forward_posts_webhooks_with_retries(broker: Any) -> None:
    names = Names()
    alerts = [_alert("cust-a", "drop_off", "firing", "2026-02-01T00:00:00+00:00"),
              _alert("cust-b", "complaint_spike", "firing", "2026-02-02T00:00:00+00:00"),
              _alert("cust-a", "drop_off", "resolved", "2026-02-10T00:00:00+00:00", "info")]
    send(broker, names.alerts, [(a.customer_id.encode(), a.to_bytes(), []) for a in alerts]
         + [(b"junk", b"not an alert", [])])

    async def scenario() -> None:
        async with Receiver(fail_first=2) as rx:
            url = f"http://127.0.0.1:{rx.port}/hook"
            settings = _settings(broker, names, url, forward_format="webhook")
            report = await forward_async(settings, from_beginning=True, limit=3)
            assert report.alerts == 3 and report.undelivered == 0
            assert report.retries >= 2 and report.statuses[:2] == [503, 503]
            accepted = rx.accepted()
            assert accepted and all(p["version"] == "4" for p in accepted)
            latest: dict[str, dict[str, Any]] = {}
            for payload in accepted:
                assert len(payload["groupLabels"]) == 1
                for alert in payload["alerts"]:
                    assert alert["fingerprint"] == payload["groupLabels"]["fingerprint"]
                    latest[alert["labels"]["customer_id"]] = alert
            assert latest["cust-a"]["status"] == "resolved"
            assert latest["cust-a"]["endsAt"] == "2026-02-10T00:00:00+00:00"
            assert latest["cust-b"]["status"] == "firing"
            assert "no purchase for 40 days" in latest["cust-a"]["annotations"]["summary"]

            # offsets were committed: the group does not send them again
            before = len(rx.seen)
            again = await _run_for(settings, 4.0, from_beginning=True)
            assert again.alerts == 0 and len(rx.seen) == before

            # a payload the endpoint rejects is not retried
            rejected = _settings(broker, names, f"http://127.0.0.1:{rx.port}/reject",
                                 forward_group=f"{names.app_id}-reject",
                                 forward_format="webhook")
            report = await forward_async(rejected, from_beginning=True, limit=3)
            assert report.undelivered >= 1 and report.retries == 0
            assert set(report.statuses) == {400}

    asyncio.run(scenario())


def test_forward_sends_pagerduty_trigger_and_resolve(broker: Any) -> None:
    names = Names()
    fire = _alert("cust-p", "payment_arrears", "firing", "2026-02-01T00:00:00+00:00", "warning")
    done = _alert("cust-p", "payment_arrears", "resolved", "2026-02-05T00:00:00+00:00", "info")
    send(broker, names.alerts, [(b"cust-p", fire.to_bytes(), []), (b"cust-p", done.to_bytes(), [])])

    async def scenario() -> None:
        async with Receiver(fail_first=1, ok_status=202) as rx:
            settings = _settings(broker, names, f"http://127.0.0.1:{rx.port}/v2/enqueue",
                                 forward_format="pagerduty", forward_routing_key="test-key")
            report = await forward_async(settings, from_beginning=True, limit=2)
            assert report.delivered == 2 and report.retries == 1
            events = rx.accepted()
            assert [e["event_action"] for e in events] == ["trigger", "resolve"]
            assert {e["dedup_key"] for e in events} == {fire.fingerprint}
            assert all(e["routing_key"] == "test-key" for e in events)
            assert events[0]["payload"]["severity"] == "warning"
            assert events[0]["payload"]["summary"].startswith("cust-p: payment arrears")
            assert rx.invalid == []

    asyncio.run(scenario())


def _records(alerts: list[Alert]) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    return [(a.customer_id.encode(), a.to_bytes(), []) for a in alerts]


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        return metric_samples(resp.read().decode())


async def _until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.mark.slow  # over 10 s: in `make test`, not the `make check` loop
def test_alertmanager_api_resends_firing_alerts_until_resolved(broker: Any) -> None:
    names = Names()
    fire_a = _alert("cust-a", "drop_off", "firing", "2026-02-01T00:00:00+00:00")
    fire_b = _alert("cust-b", "complaint_spike", "firing", "2026-02-02T00:00:00+00:00",
                    "warning")
    quiet = _alert("cust-c", "drop_off", "firing", "2026-02-02T00:00:00+00:00", "info")
    done_a = _alert("cust-a", "drop_off", "resolved", "2026-02-10T00:00:00+00:00", "info")
    send(broker, names.alerts, _records([fire_a, fire_b, quiet]))
    port = free_port()

    def customers(alerts: list[dict[str, Any]]) -> list[str]:
        return [a["labels"]["customer_id"] for a in alerts]

    async def scenario() -> None:
        async with Receiver(fail_first=1) as rx:
            settings = _settings(broker, names, f"http://127.0.0.1:{rx.port}",
                                 forward_resend_s=0.5, forward_metrics_port=port,
                                 forward_severities="critical,warning")
            stop = asyncio.Event()
            task = asyncio.create_task(forward_async(settings, stop=stop, from_beginning=True))
            # firing alerts are posted, then re-sent on the interval with endsAt ahead
            await _until(lambda: customers(rx.am_alerts()).count("cust-a") >= 3)
            now = datetime.now(UTC)
            latest = rx.am_alerts()[-1]
            assert datetime.fromisoformat(latest["endsAt"].replace("Z", "+00:00")) > now
            assert "cust-c" not in customers(rx.am_alerts())  # filtered out by severity
            samples = await asyncio.to_thread(_scrape, port)
            assert samples[("anomon_forward_delivered_total",
                            (("format", "alertmanager"),))] >= 3
            assert samples[("anomon_forward_retried_total", (("format", "alertmanager"),))] == 1
            assert samples[("anomon_forward_alerts_total", (("outcome", "filtered"),))] == 1
            assert samples[("anomon_forward_alerts_total", (("outcome", "forwarded"),))] == 2
            assert samples[("anomon_forward_active_alerts", ())] == 2
            assert samples[("anomon_forward_lag_records", ())] == 0

            # the resolution is sent once, with endsAt when the customer recovered
            await asyncio.to_thread(send, broker, names.alerts, _records([done_a]))
            await _until(lambda: any(a["endsAt"] == done_a.ts for a in rx.am_alerts()))
            resolved = [a for a in rx.am_alerts() if a["endsAt"] == done_a.ts]
            assert resolved[0]["startsAt"] == fire_a.ts
            assert resolved[0]["labels"]["severity"] == "critical"  # as it fired
            mark = len(rx.am_alerts())
            await _until(lambda: customers(rx.am_alerts()[mark:]).count("cust-b") >= 2)
            assert "cust-a" not in customers(rx.am_alerts()[mark:])
            stop.set()
            report = await task
            assert report.undelivered == 0 and report.filtered == 1 and report.resends >= 3
            assert rx.invalid == []

            # a restarted forwarder rebuilds what is firing and goes on re-sending it
            mark = len(rx.am_alerts())
            stop = asyncio.Event()
            task = asyncio.create_task(forward_async(settings, stop=stop))
            await _until(lambda: "cust-b" in customers(rx.am_alerts()[mark:]))
            stop.set()
            again = await task
            assert again.alerts == 0  # nothing new was read: it came from the rebuild
            assert set(customers(rx.am_alerts()[mark:])) == {"cust-b"}
            assert rx.invalid == []

    asyncio.run(scenario())


def test_retry_after_is_obeyed(broker: Any) -> None:
    names = Names()
    send(broker, names.alerts, _records([_alert("cust-r", "drop_off", "firing",
                                                "2026-02-01T00:00:00+00:00")]))

    async def scenario() -> None:
        async with Receiver(fail_first=1, fail_status=429, retry_after="2") as rx:
            settings = _settings(broker, names, f"http://127.0.0.1:{rx.port}/v2/enqueue",
                                 forward_format="pagerduty", forward_routing_key="k")
            report = await forward_async(settings, from_beginning=True, limit=1)
            assert report.delivered == 1 and report.retries == 1
            assert [status for status, _ in rx.seen] == [429, 200]
            assert rx.times[1] - rx.times[0] >= 2.0  # not the 0.05 s backoff
            assert rx.invalid == []

    asyncio.run(scenario())


def test_only_committed_alerts_are_forwarded(broker: Any) -> None:
    require_kafka(broker, "transactions (an exactly-once worker's aborted output)")
    names = Names()
    aborted = _alert("cust-x", "drop_off", "firing", "2026-02-01T00:00:00+00:00")
    kept = _alert("cust-y", "drop_off", "firing", "2026-02-01T00:00:00+00:00")
    send(broker, names.alerts, [])  # the topic exists before the transaction

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_of(broker),
                                    transactional_id=f"{names.app_id}-tx")
        await producer.start()
        try:
            await producer.begin_transaction()
            await producer.send_and_wait(names.alerts, aborted.to_bytes(), key=b"cust-x")
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send_and_wait(names.alerts, kept.to_bytes(), key=b"cust-y")
        finally:
            await producer.stop()

    async def scenario() -> None:
        await produce()
        async with Receiver(fail_first=0) as rx:
            settings = _settings(broker, names, f"http://127.0.0.1:{rx.port}/v2/enqueue",
                                 forward_format="pagerduty", forward_routing_key="k")
            report = await forward_async(settings, from_beginning=True, limit=1)
            assert report.alerts == 1
            await asyncio.sleep(1.0)
            assert [e["payload"]["component"] for e in rx.accepted()] == ["cust-y"]

    asyncio.run(scenario())
