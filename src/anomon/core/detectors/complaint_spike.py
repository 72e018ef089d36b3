"""Complaint spike: several complaints in a few days, high severity, a detractor survey.

The count of complaints in the last ``window_days`` (a detractor NPS answer in
the window counts as one more) is tested against the customer's own long-run
complaint rate, floored at the population prior: a Poisson tail below ``alpha``
with at least ``min_complaints`` (``min_complaints_severe`` when one is of
severity >= ``severe_level``) fires. It resolves after ``quiet_days_to_resolve``
without a complaint. Score and threshold are surprises (``-log10`` of the tail
probability and of ``alpha``).
"""

from __future__ import annotations

from typing import Literal

from scipy.special import pdtrc

from anomon.core.alerts import Reason
from anomon.core.detectors.base import NEVER, DetectionContext, Score, Verdict, surprise
from anomon.core.events import Event
from anomon.core.features import tenure_days
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY


class ComplaintSpikeDetector:
    """Complaints far above the customer's own rate."""

    kind = "complaint_spike"
    event_types = frozenset({"complaint", "survey"})
    judges: Literal["before", "after"] = "after"
    name = "complaint-poisson"
    version = "2"

    def on_event(self, state: CustomerState, event: Event, ctx: DetectionContext) -> Verdict | None:
        if event.type == "complaint" or (event.type == "survey" and event.score <= 6):
            state.remember(self.kind, event.event_id)
        else:
            return None
        return self._judge(state, event.epoch, ctx)

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        if not state.is_open(self.kind) or not state.complaints:
            return None
        quiet = (now - state.complaints[-1][0]) / DAY
        if quiet >= ctx.config.complaint_spike.quiet_days_to_resolve:
            return Verdict(self.kind, firing=False)
        return None

    def next_check(self, state: CustomerState, now: float, ctx: DetectionContext) -> float:
        if not state.is_open(self.kind) or not state.complaints:
            return NEVER
        return state.complaints[-1][0] + ctx.config.complaint_spike.quiet_days_to_resolve * DAY

    def score(self, state: CustomerState, now: float, ctx: DetectionContext) -> Score:
        p, *_ = self._tail(state, now, ctx)
        return Score(surprise(p), surprise(ctx.config.complaint_spike.alpha))

    def _tail(self, state: CustomerState, now: float, ctx: DetectionContext
              ) -> tuple[float, list[list[float]], bool, float, float]:
        """P(at least this many complaints in the window) for the customer's own rate."""
        cfg = ctx.config.complaint_spike
        cutoff = now - cfg.window_days * DAY
        recent = [c for c in state.complaints if cutoff < c[0] <= now]
        detractor = state.nps is not None and state.nps <= 6 and (state.nps_ts or 0) > cutoff
        count = len(recent) + (1 if detractor else 0)
        years = max(tenure_days(state, now), 365.0) / 365.0
        earlier = state.n_complaints - len(recent)
        rate = max(earlier / years, cfg.prior_rate_per_year)
        expected = rate * cfg.window_days / 365.0
        p = float(pdtrc(count - 1, expected)) if count else 1.0  # P(X >= count)
        return p, recent, detractor, rate, expected

    def _judge(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        cfg = ctx.config.complaint_spike
        p, recent, detractor, rate, expected = self._tail(state, now, ctx)
        count = len(recent) + (1 if detractor else 0)
        severe = any(c[1] >= cfg.severe_level for c in recent)
        needed = cfg.min_complaints_severe if severe else cfg.min_complaints
        if count < needed or p >= cfg.alpha:
            return None
        max_sev = max((c[1] for c in recent), default=0.0)
        reasons = [
            Reason(
                feature="complaints_14d",
                value=float(len(recent)),
                baseline=round(expected, 3),
                text=(
                    f"{len(recent)} complaints in {cfg.window_days:.0f} days; usually "
                    f"{rate:.1f} a year"
                ),
            ),
            Reason(feature="max_severity", value=max_sev, baseline=2.0,
                   text=f"highest severity {max_sev:.0f} of 5"),
        ]
        if detractor:
            reasons.append(Reason(feature="nps", value=float(state.nps or 0), baseline=7.0,
                                  text=f"detractor survey answer {state.nps}"))
        return Verdict(self.kind, firing=True, score=round(surprise(p), 3),
                       threshold=round(surprise(cfg.alpha), 3),
                       reasons=reasons, events=list(state.evidence.get(self.kind, [])))
