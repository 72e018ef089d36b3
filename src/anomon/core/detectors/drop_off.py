"""Drop-off: silence longer than the customer's own rhythm allows, or a fall in frequency.

Absence cannot be seen when an event arrives, so this detector works in the
sweep. Two tests, both on the customer's gamma rhythm (see
:mod:`anomon.core.detectors.rhythm`):

* **silence**: P(an unchanged customer is silent this long) < ``alpha``, and the
  silence is at least ``min_gap_ratio`` x the mean gap and ``min_silence_days``;
* **quiet**: purchases *and* visits have both stopped: the purchase silence and
  the interaction silence, each judged against its own rhythm, combined
  (Fisher's method) are less likely than ``alpha``, with the purchase silence at
  least ``min_joint_gap_ratio`` x the mean gap. Visits come far more often than
  orders, so this sees a full stop weeks before purchases alone could;
* **decline**: the last completed gap plus the current silence, as a sum of two
  gaps, is as unlikely (buying at a fraction of the old rate).

It resolves on the next purchase after a silence alert; after a decline alert,
once a purchase comes within twice the usual gap again.
"""

from __future__ import annotations

from anomon.core.alerts import Reason
from anomon.core.detectors.base import DetectionContext, Verdict
from anomon.core.detectors.rhythm import combined_p, rhythm_of, visit_rhythm_of
from anomon.core.events import Event
from anomon.core.features import activity_silence_days, silence_days
from anomon.core.state import CustomerState


class DropOffDetector:
    """Silence and frequency decline against the customer's rhythm."""

    kind = "drop_off"
    event_types = frozenset({"purchase"})
    name = "rhythm-gamma"
    version = "1"

    def on_event(self, state: CustomerState, event: Event, ctx: DetectionContext) -> Verdict | None:
        if event.type != "purchase":
            return None
        if not state.is_open(self.kind):
            return None
        if state.episodes[self.kind].tag in ("silence", "quiet"):
            return Verdict(self.kind, firing=False, events=[event.event_id])
        rhythm = rhythm_of(state, ctx.population, ctx.config.drop_off.prior_weight)
        if state.last_gap_days <= 2.0 * rhythm.mean_days:
            return Verdict(self.kind, firing=False, events=[event.event_id])
        return None

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        cfg = ctx.config.drop_off
        if state.last_purchase_ts is None or state.n_purchases < 2:
            return None
        rhythm = rhythm_of(state, ctx.population, cfg.prior_weight)
        silence = silence_days(state, now)
        if silence < cfg.min_silence_days or silence < 0.5 * rhythm.mean_days:
            return None
        own = state.n_purchases >= cfg.min_purchases
        baseline_note = "" if own else " (segment baseline: little history of their own)"
        p_silence = rhythm.silence_p(silence)
        if p_silence < cfg.alpha and silence >= cfg.min_gap_ratio * rhythm.mean_days:
            return Verdict(
                self.kind,
                firing=True,
                score=1.0 - p_silence,
                threshold=1.0 - cfg.alpha,
                tag="silence",
                reasons=[
                    silence_reason(silence, rhythm.mean_days, baseline_note),
                    Reason(
                        feature="p_silence",
                        value=p_silence,
                        baseline=cfg.alpha,
                        text=f"an active customer is this silent with probability {p_silence:.1e}",
                    ),
                ],
            )
        quiet = self._quiet(state, now, silence, p_silence, rhythm.mean_days, ctx, baseline_note)
        if quiet is not None:
            return quiet
        last_gap = state.last_gap_days
        if last_gap >= cfg.min_gap_ratio * rhythm.mean_days and state.gap_n >= cfg.min_purchases:
            p_decline = rhythm.silence_p(last_gap + silence, gaps=2)
            if p_decline < cfg.decline_alpha:
                rate_ratio = 2.0 * rhythm.mean_days / (last_gap + silence)
                return Verdict(
                    self.kind,
                    firing=True,
                    score=1.0 - p_decline,
                    threshold=1.0 - cfg.decline_alpha,
                    tag="decline",
                    reasons=[
                        Reason(
                            feature="purchase_rate_ratio",
                            value=round(rate_ratio, 3),
                            baseline=1.0,
                            text=(
                                f"buying at {rate_ratio:.0%} of their usual rate: last gap "
                                f"{last_gap:.0f} days, now {silence:.0f} days silent, usually "
                                f"{rhythm.mean_days:.0f}"
                            ),
                        ),
                    ],
                )
        return None

    def _quiet(self, state: CustomerState, now: float, silence: float, p_silence: float,
               mean_gap: float, ctx: DetectionContext, baseline_note: str) -> Verdict | None:
        """Purchases and visits silent together (see the module docstring)."""
        cfg = ctx.config.drop_off
        visits = visit_rhythm_of(state)
        if visits is None or silence < cfg.min_joint_gap_ratio * mean_gap:
            return None
        visit_silence = activity_silence_days(state, now)
        if visit_silence < cfg.min_visit_gap_ratio * visits.mean_days:
            return None
        p_visit = visits.silence_p(visit_silence)
        p = combined_p(p_silence, p_visit)
        if p >= cfg.quiet_alpha:
            return None
        return Verdict(
            self.kind,
            firing=True,
            score=1.0 - p,
            threshold=1.0 - cfg.quiet_alpha,
            tag="quiet",
            reasons=[
                silence_reason(silence, mean_gap, baseline_note),
                Reason(feature="visit_silence_days", value=round(visit_silence, 1),
                       baseline=round(visits.mean_days, 1),
                       text=(f"no visit or contact for {visit_silence:.0f} days; usually every "
                             f"{visits.mean_days:.1f} days")),
                Reason(feature="p_quiet", value=p, baseline=cfg.quiet_alpha,
                       text=f"an active customer is this quiet with probability {p:.1e}"),
            ],
        )


def silence_reason(silence: float, mean_gap: float, baseline_note: str) -> Reason:
    """The reason line for a purchase silence against the customer's usual gap."""
    return Reason(feature="silence_days", value=round(silence, 1), baseline=round(mean_gap, 1),
                  text=(f"no purchase for {silence:.0f} days; usually buys every "
                        f"{mean_gap:.0f} days{baseline_note}"))
