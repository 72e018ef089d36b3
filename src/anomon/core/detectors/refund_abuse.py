"""Refund abuse: refunds or returns out of proportion to purchases.

Fires when, over ``window_days``, there are at least ``min_refunds`` refunds,
refunded value is at least ``min_ratio`` of purchased value, that ratio is
``baseline_multiple`` x the customer's own earlier ratio (floored at the
population's), and so many refunds among so many orders are at least
``min_surprise`` surprising for the customer's usual share of orders refunded
(:func:`refund_count_surprise`): their own earlier share, shrunk toward the
population's by ``prior_orders`` pseudo-orders. The ratios alone are no
test for a customer who habitually returns a third of what they buy: their
three refunds in a month is what they do. The same is judged over the last
``short_window_days``: a frequent buyer who starts returning most orders has,
over the long window, their orders from before it too, which dilute the share.
The short window must also be ``short_window_extra_surprise`` more surprising
(it counts refunds of orders from before it against the orders in it).
Resolves when the ratio falls below ``resolve_ratio`` over both windows. Score
and threshold are surprises (``-log10`` of the binomial tail, and
``min_surprise``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scipy.special.cython_special import bdtrc

from anomon.core.alerts import Reason
from anomon.core.detection_config import RefundAbuseConfig
from anomon.core.detectors.base import NEVER, DetectionContext, Score, Verdict, surprise
from anomon.core.events import Event
from anomon.core.features import window_count, window_totals
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


def refund_count_surprise(refunds: int, orders: int, usual_share: float) -> float:
    """Surprise of ``refunds`` refunds among ``orders`` orders when a share ``usual_share``
    of a customer's orders is usually refunded: ``-log10 P(Binomial >= refunds)``.

    Refunds of orders from just before the window count against it, so there are
    taken to be at least as many orders as refunds.

    >>> round(refund_count_surprise(4, 5, 0.04), 2)  # a customer who rarely returns
    4.91
    >>> round(refund_count_surprise(4, 5, 0.35), 2)  # one who returns a third of it
    1.27
    """
    if refunds <= 0:
        return 0.0
    return surprise(float(bdtrc(refunds - 1, max(orders, refunds), usual_share)))


@dataclass(frozen=True, slots=True)
class _Window:
    """Refunds against purchases over one window ending now."""

    days: float
    refunds: int
    refunded: float
    bought: float
    baseline: float
    orders: int
    usual_share: float
    """The share of the customer's orders usually refunded (shrunk toward the population's)."""
    penalty: float = 0.0
    """Surprise it must show beyond ``min_surprise`` (see ``RefundAbuseDetector._windows``)."""

    @property
    def ratio(self) -> float:
        if self.bought > 0:
            return self.refunded / self.bought
        return 10.0 if self.refunded > 0 else 0.0

    def score(self) -> float:
        return refund_count_surprise(self.refunds, self.orders, self.usual_share)

    def threshold(self, cfg: RefundAbuseConfig) -> float:
        return cfg.min_surprise + self.penalty

    def value_rules(self, cfg: RefundAbuseConfig) -> bool:
        """Enough refunds, of enough of the window's value, far enough above the customer's
        usual share of value: as surprising, by Markov's bound, as ``min_refunds`` refunds at
        the smallest ratio the rules allow (and the short window's extra surprise more)."""
        ratio = self.ratio
        least = max(cfg.min_ratio, cfg.baseline_multiple * self.baseline)
        return (self.refunds >= cfg.min_refunds and ratio >= least
                and refund_surprise(self.refunds, ratio, self.baseline)
                >= self.penalty + refund_surprise(cfg.min_refunds, least, self.baseline))

    def fires(self, cfg: RefundAbuseConfig) -> bool:
        """The value rules hold and the count clears the threshold."""
        return self.value_rules(cfg) and self.score() >= self.threshold(cfg)


class RefundAbuseDetector:
    """Refund share far above the customer's own and the population's."""

    kind = "refund_abuse"
    event_types = frozenset({"refund", "purchase"})
    judges: Literal["before", "after"] = "after"
    name = "refund-ratio"
    version = "4"

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
        best = max(self._windows(state, now, ctx),
                   key=lambda w: w.score() - w.threshold(cfg))
        return Score(best.score(), best.threshold(cfg))

    @staticmethod
    def _window(state: CustomerState, now: float, days: float, ctx: DetectionContext,
                penalty: float = 0.0) -> _Window:
        _, refunds, refunded = window_totals(state.refunds, now, days, days)
        _, orders, bought = window_totals(state.purchases, now, days, days)
        earlier_refunds = max(0.0, state.refund_total - refunded)
        earlier_bought = max(0.0, state.spend_total - bought)
        own = earlier_refunds / earlier_bought if earlier_bought > 0 else 0.0
        prior = ctx.config.refund_abuse.prior_orders
        share = ((max(0, state.n_refunds - refunds) + prior * ctx.population.refunds_per_order)
                 / (max(0, state.n_purchases - orders) + prior))
        return _Window(days, refunds, refunded, bought, max(own, ctx.population.refund_ratio),
                       orders, min(share, 1.0), penalty)

    def _windows(self, state: CustomerState, now: float, ctx: DetectionContext) -> list[_Window]:
        """The long window, then the short one.

        The short one is a second test, and it sees refunds of orders from
        before it began against the orders within it: its score must also
        clear the threshold by ``short_window_extra_surprise`` (1: ten times
        less likely for an unchanged customer).
        """
        cfg = ctx.config.refund_abuse
        penalty = cfg.short_window_extra_surprise
        return [self._window(state, now, cfg.window_days, ctx),
                self._window(state, now, cfg.short_window_days, ctx, penalty)]

    def _judge(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        cfg = ctx.config.refund_abuse
        is_open = state.is_open(self.kind)
        widest = max(cfg.window_days, cfg.short_window_days)  # the "short" one may be set wider
        if not is_open and window_count(state.refunds, now, widest) < cfg.min_refunds:
            return None  # too few refunds to fire in either window: no need to sum them
        windows = self._windows(state, now, ctx)
        if is_open:
            if all(w.ratio < cfg.resolve_ratio for w in windows):
                return Verdict(self.kind, firing=False)
            return None
        firing = [w for w in windows if w.fires(cfg)]
        if not firing:
            return None
        best = max(firing, key=lambda w: w.score() - w.threshold(cfg))
        return Verdict(
            self.kind,
            firing=True,
            score=round(best.score(), 3),
            threshold=round(best.threshold(cfg), 3),
            events=list(state.evidence.get(self.kind, [])),
            reasons=[
                Reason(feature="refund_ratio", value=round(best.ratio, 3),
                       baseline=round(best.baseline, 3),
                       text=(f"refunded {best.ratio:.0%} of purchases in {best.days:.0f} days; "
                             f"usually {best.baseline:.0%}")),
                Reason(feature="refunds_in_window", value=float(best.refunds),
                       baseline=round(best.usual_share * max(best.orders, best.refunds), 2),
                       text=(f"{best.refunds} refunds against {best.orders} orders in "
                             f"{best.days:.0f} days; usually {best.usual_share:.0%} of their "
                             f"orders")),
            ],
        )
