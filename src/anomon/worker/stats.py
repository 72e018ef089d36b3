"""The worker's counters: one place that updates both ``/stats`` and Prometheus.

Every input record ends in exactly one outcome, so ``in == processed +
duplicate + late + dead_lettered`` holds at any moment between records.

>>> s = WorkerStats()
>>> s.record_in(); s.record_outcome("purchase", "processed")
>>> s.record_in(); s.record_dead_letter("invalid_json")
>>> d = s.as_dict(); d["in"], d["processed"], d["dead_lettered"], d["accounted"]
(2, 1, 1, True)

The ``anomon_events`` counter is brought up to date once per batch (:meth:`WorkerStats.flush`,
also before every scrape of ``/metrics``), not once per record.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from anomon.core.alerts import Alert
from anomon.worker import metrics

OUTCOMES = ("processed", "duplicate", "late")


class WorkerStats:
    """In-process counters since the worker started."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.records_in = 0
        self.outcomes: Counter[str] = Counter()
        self.dead_lettered: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()
        self.alerts_by_status: Counter[str] = Counter()
        self.key_mismatch = 0
        self.state_resets = 0
        self.sweeps = 0
        self.sweep_customers = 0
        self.sweep_skipped = 0
        self.sweep_errors = 0
        self.expired = 0
        self.erasures = 0
        self.erased = 0
        self.first_event_at: float | None = None
        self.last_event_at: float | None = None
        self._event_series: dict[tuple[str, str], Any] = {}  # labelled children, looked up once
        #: outcomes not yet in the ``anomon_events`` counter (:meth:`flush`)
        self._pending_events: Counter[tuple[str, str]] = Counter()

    def record_in(self) -> None:
        """A record arrived from the input topic."""
        self.records_in += 1
        if self.first_event_at is None:
            self.first_event_at = self.last_event_at = time.time()

    def batch_done(self) -> None:
        """A batch of records was handled: the time, and the counters into Prometheus."""
        self.last_event_at = time.time()
        self.flush()

    def flush(self) -> None:
        """Outcomes counted since the last flush, into ``anomon_events`` (once per batch)."""
        pending = self._pending_events
        if not pending:
            return
        series = self._event_series
        for key, n in pending.items():
            child = series.get(key)
            if child is None:
                child = series[key] = metrics.EVENTS.labels(*key)
            child.inc(n)
        pending.clear()

    def record_outcome(self, event_type: str, outcome: str) -> None:
        """The engine's verdict on a decoded event: processed, duplicate or late."""
        self.outcomes[outcome] += 1
        self._pending_events[(event_type, outcome)] += 1

    def record_dead_letter(self, reason: str, event_type: str = "unknown") -> None:
        """A record sent to the dead-letter topic."""
        self.dead_lettered[reason] += 1
        metrics.DEAD_LETTERED.labels(reason).inc()
        self._pending_events[(event_type, "dead_lettered")] += 1

    def record_key_mismatch(self) -> None:
        """A record whose key is not its customer id (processed all the same)."""
        self.key_mismatch += 1
        metrics.KEY_MISMATCH.inc()

    def record_state_reset(self) -> None:
        """A stored customer state that could not be read; the customer starts fresh."""
        self.state_resets += 1
        metrics.STATE_RESETS.inc()

    def record_expired(self) -> None:
        """A state deleted because the customer was silent longer than the state TTL."""
        self.expired += 1
        metrics.STATES_DELETED.labels("ttl").inc()

    def record_erasure(self, existed: bool) -> None:
        """An erasure request handled; ``existed``: a state was held here and deleted."""
        self.erasures += 1
        if existed:
            self.erased += 1
            metrics.STATES_DELETED.labels("erasure").inc()

    def record_alert(self, alert: Alert) -> None:
        """An alert published."""
        self.alerts[str(alert.kind)] += 1
        self.alerts_by_status[alert.status] += 1
        metrics.ALERTS.labels(str(alert.kind), alert.severity, alert.status).inc()

    @property
    def accounted(self) -> bool:
        """Whether every record has exactly one outcome."""
        return self.records_in == sum(self.outcomes.values()) + sum(self.dead_lettered.values())

    def as_dict(self) -> dict[str, Any]:
        """The ``/stats`` payload."""
        return {
            "in": self.records_in,
            **{o: self.outcomes.get(o, 0) for o in OUTCOMES},
            "dead_lettered": sum(self.dead_lettered.values()),
            "dead_lettered_by_reason": dict(self.dead_lettered),
            "accounted": self.accounted,
            "key_mismatch": self.key_mismatch,
            "state_resets": self.state_resets,
            "alerts": sum(self.alerts.values()),
            "alerts_by_kind": dict(self.alerts),
            "alerts_by_status": dict(self.alerts_by_status),
            "sweeps": self.sweeps,
            "sweep_customers": self.sweep_customers,
            "sweep_skipped": self.sweep_skipped,
            "sweep_errors": self.sweep_errors,
            "expired": self.expired,
            "erasures": self.erasures,
            "erased": self.erased,
            "started_at": self.started_at,
            "first_event_at": self.first_event_at,
            "last_event_at": self.last_event_at,
        }
