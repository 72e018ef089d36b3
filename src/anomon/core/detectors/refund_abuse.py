"""Refund abuse: refunds or returns out of proportion to purchases.

Fires when, over ``window_days``, there are at least ``min_refunds`` refunds,
refunded value is at least ``min_ratio`` of purchased value, and that ratio is
``baseline_multiple`` x the customer's own earlier ratio (floored at the
population's). Resolves when the ratio falls below ``resolve_ratio``. Score
and threshold are surprises (see :func:`refund_surprise`); the threshold is
the surprise of ``min_refunds`` refunds at the smallest ratio that fires.
"""

from __future__ import annotations

from typing import Literal

from anomon.core.alerts import Reason
from anomon.core.detectors.base import NEVER, DetectionContext, Score, Verdict, surprise
from anomon.core.events import Event
from anomon.core.features import window_count, window_sum
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY


def refund_surprise(refunds: int, ratio: float, baseline: float) -> float:
    """Surprise of ``refunds`` refunds at ``ratio`` of value when ``baseline`` is usual.

    Each refund is read as a draw that returns at least ``ratio`` of its order
    when an unchanged customer does so with probability ``min(1, baseline / ratio)``
    (Markov's bound), so ``refunds`` of them: the bound to that power.

    >>> round(refund_surprise(4, 0.8, 0.05), 2)
    4.82
    """
    if refunds <= 0 or ratio <= 0.0:
        return 0.0
    return surprise(min(1.0, baseline / ratio) ** refunds)


class RefundAbuseDetector:
    """Refund share far above the customer's own and the population's."""

    kind = "refund_abuse"
    event_types = frozenset({"refund", "purchase"})
    judges: Literal["before", "after"] = "after"
    name = "refund-ratio"
    version = "2"

    def on_event(self, state: CustomerState, event: Event, ctx: DetectionContext) -> Verdict | None:
        if event.type == "refund":
            state.remember(self.kind, event.event_id)
        elif event.type != "purchase":
            return None
        return self._judge(state, event.epoch, ctx)

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        if not state.is_open(self.kind):
            return None
        return self._judge(state, now, ctx)

    def next_check(self, state: CustomerState, now: float, ctx: DetectionContext) -> float:
        return now + DAY if state.is_open(self.kind) else NEVER

    def score(self, state: CustomerState, now: float, ctx: DetectionContext) -> Score:
        cfg = ctx.config.refund_abuse
        refunds = window_count(state.refunds, now, cfg.window_days)
        refunded = window_sum(state.refunds, now, cfg.window_days)
        bought = window_sum(state.purchases, now, cfg.window_days)
        ratio = refunded / bought if bought > 0 else (10.0 if refunded > 0 else 0.0)
        baseline = self._baseline(state, refunded, bought, ctx)
        return Score(refund_surprise(refunds, ratio, baseline), refund_surprise(
            cfg.min_refunds, max(cfg.min_ratio, cfg.baseline_multiple * baseline), baseline))

    @staticmethod
    def _baseline(state: CustomerState, refunded: float, bought: float,
                  ctx: DetectionContext) -> float:
        earlier_refunds = max(0.0, state.refund_total - refunded)
        earlier_bought = max(0.0, state.spend_total - bought)
        own = earlier_refunds / earlier_bought if earlier_bought > 0 else 0.0
        return max(own, ctx.population.refund_ratio)

    def _judge(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        cfg = ctx.config.refund_abuse
        refunds = window_count(state.refunds, now, cfg.window_days)
        is_open = state.is_open(self.kind)
        if not is_open and refunds < cfg.min_refunds:
            return None  # too few refunds to fire: no need to sum the window
        refunded = window_sum(state.refunds, now, cfg.window_days)
        bought = window_sum(state.purchases, now, cfg.window_days)
        ratio = refunded / bought if bought > 0 else (10.0 if refunded > 0 else 0.0)
        if is_open:
            if ratio < cfg.resolve_ratio:
                return Verdict(self.kind, firing=False)
            return None
        if refunds < cfg.min_refunds or ratio < cfg.min_ratio:
            return None
        baseline = self._baseline(state, refunded, bought, ctx)
        if ratio < cfg.baseline_multiple * baseline:
            return None
        return Verdict(
            self.kind,
            firing=True,
            score=round(refund_surprise(refunds, ratio, baseline), 3),
            threshold=round(refund_surprise(
                cfg.min_refunds, max(cfg.min_ratio, cfg.baseline_multiple * baseline),
                baseline), 3),
            events=list(state.evidence.get(self.kind, [])),
            reasons=[
                Reason(feature="refund_ratio", value=round(ratio, 3),
                       baseline=round(baseline, 3),
                       text=(f"refunded {ratio:.0%} of purchases in {cfg.window_days:.0f} days; "
                             f"usually {baseline:.0%}")),
                Reason(feature="refunds_in_window", value=float(refunds), baseline=0.0,
                       text=f"{refunds} refunds in {cfg.window_days:.0f} days"),
            ],
        )
