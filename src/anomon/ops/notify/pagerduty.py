"""Alerts as PagerDuty Events API v2 events: ``trigger`` when firing, ``resolve`` when resolved.

``dedup_key`` is the alert's fingerprint (one customer and kind), so PagerDuty
keeps one incident per change and the resolved message closes it; a later
episode of the same change opens a new incident once the last is resolved.

>>> from anomon.core.alerts import Alert
>>> a = Alert.model_validate({"alert_id": "a1", "fingerprint": "fp1", "customer_id": "c-42",
...     "kind": "payment_arrears", "status": "firing", "severity": "warning", "score": 2.0,
...     "threshold": 2.0, "ts": "2026-03-01T00:00:00+00:00", "episode": 1,
...     "segment": {"tier": "mid", "stage": "active"},
...     "reasons": [{"feature": "bad_payment_streak", "value": 2, "baseline": 0,
...                  "text": "2 overdue or failed payments in a row"}],
...     "action": "Collections.", "model": {"name": "arrears-rule", "version": "1.1"},
...     "events": []})
>>> e = pagerduty_event(a, "KEY")
>>> e["event_action"], e["dedup_key"], e["payload"]["severity"], e["payload"]["summary"]
('trigger', 'fp1', 'warning', 'c-42: payment arrears (2 overdue or failed payments in a row)')
>>> r = pagerduty_event(a.model_copy(update={"status": "resolved"}), "KEY")
>>> sorted(r), r["event_action"]
(['dedup_key', 'event_action', 'routing_key'], 'resolve')
"""

from __future__ import annotations

from typing import Any

from anomon.core.alerts import Alert
from anomon.ops.notify.alertmanager import annotations_of, summary_of

SUMMARY_MAX = 1024
DEDUP_MAX = 255
SOURCE = "anomon"


def pagerduty_event(alert: Alert, routing_key: str) -> dict[str, Any]:
    """The Events v2 body for ``alert``."""
    dedup_key = alert.fingerprint[:DEDUP_MAX]
    if alert.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": summary_of(alert)[:SUMMARY_MAX],
            "source": SOURCE,
            "severity": alert.severity,  # info, warning, critical: all valid in Events v2
            "timestamp": alert.ts,
            "component": alert.customer_id,
            "group": f"{alert.segment.tier}/{alert.segment.stage}",
            "class": str(alert.kind),
            "custom_details": {
                **annotations_of(alert),
                "reasons": [r.model_dump() for r in alert.reasons],
                "episode": alert.episode,
                "events": alert.events,
            },
        },
        "client": SOURCE,
    }
