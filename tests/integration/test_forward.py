"""``anomon forward`` on a real broker, posting to a local HTTP receiver.

Alerts are produced to the alerts topic with a Kafka client; the forwarder reads
them and posts to an aiohttp server on loopback that fails the first attempts
(the forwarder must retry with backoff), rejects one path outright (no retry),
and records what it accepted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from anomon.core.alerts import Alert, alert_id, fingerprint
from anomon.ops.forward import forward_async
from anomon.settings import Settings
from workerkit import Names, bootstrap_of, free_port, send

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


class Receiver:
    """Fails the first ``fail_first`` posts with 503, then accepts; ``/reject`` answers 400."""

    def __init__(self, fail_first: int, ok_status: int = 200) -> None:
        self.fail_first, self.ok_status = fail_first, ok_status
        self.seen: list[tuple[int, dict[str, Any]]] = []
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if request.path == "/reject":
            status = 400
        elif self.fail_first > 0:
            self.fail_first -= 1
            status = 503
        else:
            status = self.ok_status
        self.seen.append((status, body))
        return web.json_response({"status": "ok" if status < 300 else "no"}, status=status)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    def accepted(self) -> list[dict[str, Any]]:
        return [body for status, body in self.seen if status < 300]


def _settings(broker: Any, names: Names, url: str, **extra: Any) -> Settings:
    return Settings(broker=bootstrap_of(broker), app_id=names.app_id, alerts_topic=names.alerts,
                    input_topic=names.input, dlq_topic=names.dlq, late_topic=names.late,
                    forward_url=url, forward_backoff_s=0.05, forward_max_attempts=5, **extra)


async def _run_for(settings: Settings, seconds: float, **kwargs: Any) -> Any:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    return await forward_async(settings, stop=stop, **kwargs)


def test_forward_posts_alertmanager_webhooks_with_retries(broker: Any) -> None:
    names = Names()
    alerts = [_alert("cust-a", "drop_off", "firing", "2026-02-01T00:00:00+00:00"),
              _alert("cust-b", "complaint_spike", "firing", "2026-02-02T00:00:00+00:00"),
              _alert("cust-a", "drop_off", "resolved", "2026-02-10T00:00:00+00:00", "info")]
    send(broker, names.alerts, [(a.customer_id.encode(), a.to_bytes(), []) for a in alerts]
         + [(b"junk", b"not an alert", [])])

    async def scenario() -> None:
        async with Receiver(fail_first=2) as rx:
            url = f"http://127.0.0.1:{rx.port}/hook"
            settings = _settings(broker, names, url)
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
                                 forward_group=f"{names.app_id}-reject")
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

    asyncio.run(scenario())
