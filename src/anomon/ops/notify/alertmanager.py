"""Alerts as Alertmanager webhook payloads (``version`` 4), grouped by fingerprint.

One payload per fingerprint (one customer and kind): receivers that already
take Alertmanager's webhooks group, route and de-duplicate anomon's alerts as
they do Prometheus's. Each episode of a fingerprint is one Alertmanager alert
(``episode`` is a label); within one batch only its latest message counts, as
in Alertmanager: a firing followed by its resolution is sent as resolved, with
``startsAt`` when it fired and ``endsAt`` when it resolved.

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
>>> [p["status"] for p in webhook_payloads([fired])], len(webhook_payloads([fired, done]))
(['firing'], 1)
>>> a = webhook_payloads([fired, done])[0]["alerts"][0]
>>> a["status"], a["startsAt"][:10], a["endsAt"][:10], a["labels"]["severity"]
('resolved', '2026-03-01', '2026-03-09', 'critical')
"""

from __future__ import annotations

from typing import Any

from anomon.core.alerts import Alert

WEBHOOK_VERSION = "4"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended"
ALERTNAME = "CustomerChange"


def labels_of(alert: Alert) -> dict[str, str]:
    """What identifies the alert and routes it (all strings, as Alertmanager's)."""
    return {
        "alertname": ALERTNAME,
        "kind": str(alert.kind),
        "severity": alert.severity,
        "tier": alert.segment.tier,
        "stage": alert.segment.stage,
        "customer_id": alert.customer_id,
        "fingerprint": alert.fingerprint,
        "episode": str(alert.episode),
    }


def summary_of(alert: Alert) -> str:
    """One sentence: who, what changed, why."""
    reason = alert.reasons[0].text if alert.reasons else ""
    what = str(alert.kind).replace("_", " ")
    if alert.status == "resolved":
        return f"{alert.customer_id}: {what} resolved"
    return f"{alert.customer_id}: {what}" + (f" ({reason})" if reason else "")


def annotations_of(alert: Alert) -> dict[str, str]:
    """The explanation: summary, every reason in words, the action, score and model."""
    return {
        "summary": summary_of(alert),
        "description": "; ".join(r.text for r in alert.reasons if r.text),
        "action": alert.action,
        "score": f"{alert.score:.4g} (threshold {alert.threshold:.4g})",
        "model": f"{alert.model.name} {alert.model.version}",
        "alert_id": alert.alert_id,
    }


def _alert_entry(last: Alert, fired: Alert | None) -> dict[str, Any]:
    opened = fired or last
    labels = labels_of(opened)  # the resolved message keeps the severity it fired with
    resolved = last.status == "resolved"
    return {
        "status": last.status,
        "labels": labels,
        "annotations": annotations_of(opened if resolved and fired else last)
        | ({"resolution": last.action} if resolved else {}),
        "startsAt": opened.ts if not resolved or fired else last.ts,
        "endsAt": last.ts if resolved else ZERO_TIME,
        "generatorURL": "",
        "fingerprint": last.fingerprint,
    }


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    first, *rest = dicts
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in rest)}


def webhook_payloads(alerts: list[Alert], receiver: str = "anomon",
                     external_url: str = "") -> list[dict[str, Any]]:
    """Alertmanager webhook payloads for ``alerts`` (in order), one per fingerprint."""
    groups: dict[str, dict[int, tuple[Alert, Alert | None]]] = {}
    for alert in alerts:
        episodes = groups.setdefault(alert.fingerprint, {})
        _, fired = episodes.get(alert.episode, (alert, None))
        episodes[alert.episode] = (alert, alert if alert.status == "firing" else fired)
    payloads = []
    for fp, episodes in groups.items():
        entries = [_alert_entry(last, fired) for last, fired in episodes.values()]
        firing = any(e["status"] == "firing" for e in entries)
        payloads.append({
            "version": WEBHOOK_VERSION,
            "groupKey": f'{{}}:{{fingerprint="{fp}"}}',
            "truncatedAlerts": 0,
            "status": "firing" if firing else "resolved",
            "receiver": receiver,
            "groupLabels": {"fingerprint": fp},
            "commonLabels": _common([e["labels"] for e in entries]),
            "commonAnnotations": _common([e["annotations"] for e in entries]),
            "externalURL": external_url,
            "alerts": entries,
        })
    return payloads
