"""Alerts for Alertmanager's own API: ``POST /api/v2/alerts`` with a list of postable alerts.

Alertmanager treats a firing alert as current only while it keeps being sent:
each carries ``endsAt``, and once that passes without a re-send Alertmanager
resolves the alert itself. Prometheus re-sends every firing alert on an
interval; so does :class:`ActiveAlerts` (what ``anomon forward`` re-sends
every ``forward_resend_s``), with ``endsAt`` four intervals ahead, so a
forwarder that stops lets the alerts resolve a few intervals later and a
healthy one never does. A resolution is sent once, with ``endsAt`` at the time
the customer recovered.

One Alertmanager alert is one episode of one fingerprint (customer and kind):
the labels are those of the webhook mode (:func:`~anomon.ops.notify.alertmanager.labels_of`),
taken from the firing message, so the resolution matches it in Alertmanager.

>>> from anomon.core.alerts import Alert
>>> base = {"alert_id": "a1", "fingerprint": "fp1", "customer_id": "c-42",
...     "kind": "drop_off", "severity": "critical", "score": 0.9995, "threshold": 0.998,
...     "episode": 1, "segment": {"tier": "high", "stage": "loyal"},
...     "reasons": [{"feature": "silence_days", "value": 40, "baseline": 7,
...                  "text": "no purchase for 40 days; usually buys every 7 days"}],
...     "action": "Call today.", "model": {"name": "rhythm-gamma", "version": "1.1"},
...     "events": []}
>>> fired = Alert.model_validate({**base, "status": "firing", "ts": "2026-03-01T00:00:00+00:00"})
>>> done = Alert.model_validate({**base, "alert_id": "a2", "status": "resolved",
...     "severity": "info", "ts": "2026-03-09T00:00:00+00:00", "action": "None."})
>>> active = ActiveAlerts(resend_s=60.0)
>>> [a["startsAt"] for a in active.update([fired], now=NOW)]
['2026-03-01T00:00:00+00:00']
>>> active.update([fired], now=NOW), len(active)   # the same message again: nothing new
([], 1)
>>> [a["endsAt"] for a in active.current(now=NOW)]
['2026-06-01T00:04:00Z']
>>> [(a["labels"]["severity"], a["endsAt"]) for a in active.update([done], now=NOW)]
[('critical', '2026-03-09T00:00:00+00:00')]
>>> len(active), active.current(now=NOW)
(0, [])
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from anomon.core.alerts import Alert
from anomon.ops.notify.alertmanager import annotations_of, labels_of

API_PATH = "/api/v2/alerts"
#: firing alerts are sent with endsAt this many resend intervals ahead (as Prometheus does)
ENDS_AFTER_RESENDS = 4
NOW = datetime(2026, 6, 1, tzinfo=UTC)  # for the examples


def api_url(base: str) -> str:
    """Alertmanager's alerts endpoint under ``base`` (left alone if it is already there).

    >>> api_url("http://alertmanager:9093"), api_url("http://am:9093/api/v2/alerts")
    ('http://alertmanager:9093/api/v2/alerts', 'http://am:9093/api/v2/alerts')
    """
    base = base.rstrip("/")
    return base if base.endswith(API_PATH) else base + API_PATH


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def postable(fired: Alert, resolved: Alert | None, ends_at: str,
             generator_url: str = "") -> dict[str, Any]:
    """One element of the ``postableAlerts`` body."""
    annotations = annotations_of(fired)
    if resolved is not None:
        annotations["resolution"] = resolved.action
    body: dict[str, Any] = {
        "labels": labels_of(fired),  # a resolution keeps the labels it fired with
        "annotations": annotations,
        "startsAt": fired.ts,
        "endsAt": ends_at,
    }
    if generator_url:
        body["generatorURL"] = generator_url
    return body


class ActiveAlerts:
    """The firing episodes, to re-send until each is resolved."""

    def __init__(self, resend_s: float, generator_url: str = "") -> None:
        self.resend_s = resend_s
        self.generator_url = generator_url
        self._firing: dict[tuple[str, int], Alert] = {}

    def __len__(self) -> int:
        return len(self._firing)

    def _ends_at(self, now: datetime) -> str:
        return _utc(now + timedelta(seconds=ENDS_AFTER_RESENDS * self.resend_s))

    def update(self, alerts: list[Alert], now: datetime | None = None) -> list[dict[str, Any]]:
        """Take in a batch (in order); return what to post now: new firings and resolutions."""
        now = now or datetime.now(UTC)
        out: dict[tuple[str, int], dict[str, Any]] = {}
        for alert in alerts:
            key = (alert.fingerprint, alert.episode)
            if alert.status == "firing":
                if key in self._firing:
                    continue  # a re-delivery: it is sent on the interval anyway
                self._firing[key] = alert
                out[key] = postable(alert, None, self._ends_at(now), self.generator_url)
            else:
                fired = self._firing.pop(key, None) or alert
                out[key] = postable(fired, alert, alert.ts, self.generator_url)
        return list(out.values())

    def rebuild(self, alerts: list[Alert]) -> None:
        """Take in alerts already forwarded (after a restart), posting nothing."""
        for alert in alerts:
            key = (alert.fingerprint, alert.episode)
            if alert.status == "firing":
                self._firing.setdefault(key, alert)
            else:
                self._firing.pop(key, None)

    def current(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Every firing alert, with ``endsAt`` moved ahead: the periodic re-send."""
        ends_at = self._ends_at(now or datetime.now(UTC))
        return [postable(a, None, ends_at, self.generator_url) for a in self._firing.values()]
