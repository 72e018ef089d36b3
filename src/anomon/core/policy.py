"""Alert policy: from verdicts to alerts, one alert per real change.

Per fingerprint (customer + kind) the policy keeps an episode: a firing verdict
opens one (unless the last one closed less than ``cooldown_days`` ago) and
publishes a ``firing`` alert; further firing verdicts while it is open publish
nothing; a recovery verdict closes it and publishes ``resolved``. Ids are
deterministic (see :mod:`anomon.core.alerts`), so re-processing after a crash gives
identical alerts.
"""

from __future__ import annotations

from anomon.core.actions import RESOLVED_ACTION, recommend
from anomon.core.alerts import Alert, ModelRef, Segment, alert_id, fingerprint
from anomon.core.detectors.base import Verdict
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY, to_rfc3339

_SEVERITY_BY_TIER = {"high": "critical", "mid": "warning", "low": "info"}


def severity_for(kind: str, tier: str, stage: str) -> str:
    """Top-tier customers are critical, one-off and new buyers informational."""
    severity = _SEVERITY_BY_TIER[tier]
    if kind in ("payment_arrears", "refund_abuse", "complaint_spike") and severity == "info":
        severity = "warning" if stage not in ("new", "churned") else "info"
    return severity


class AlertPolicy:
    """Episodes, cooldown and resolution. See the module docstring."""

    def __init__(self, cooldown_days: float = 14.0) -> None:
        self.cooldown_s = cooldown_days * DAY
        self.suppressed = 0

    def apply(
        self,
        state: CustomerState,
        verdict: Verdict,
        now: float,
        segment: Segment,
        model: ModelRef,
    ) -> Alert | None:
        """The alert this verdict calls for, if any; updates the episode in ``state``."""
        episode = state.episode(verdict.kind)
        if verdict.firing:
            if episode.open:
                return None
            if now - episode.closed_ts < self.cooldown_s:
                self.suppressed += 1
                return None
            episode.number += 1
            episode.open = True
            episode.opened_ts = now
            episode.tag = verdict.tag
            status = "firing"
            action = recommend(verdict.kind, segment.tier)
            severity = severity_for(verdict.kind, segment.tier, segment.stage)
        else:
            if not episode.open:
                return None
            episode.open = False
            episode.closed_ts = now
            status = "resolved"
            action = RESOLVED_ACTION
            severity = "info"
        fp = fingerprint(state.customer_id, verdict.kind)
        return Alert(
            alert_id=alert_id(fp, episode.number, status),
            fingerprint=fp,
            customer_id=state.customer_id,
            kind=verdict.kind,
            status=status,
            severity=severity,
            score=float(verdict.score),
            threshold=float(verdict.threshold),
            ts=to_rfc3339(now),
            episode=episode.number,
            segment=segment,
            reasons=verdict.reasons,
            action=action,
            model=model,
            events=verdict.events,
        )
