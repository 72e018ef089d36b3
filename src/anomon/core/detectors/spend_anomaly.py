"""Spend anomaly: an order far outside the customer's usual size.

Two opinions on each purchase, judged *before* the order is learned:

* the customer's own baseline: a z-score of ``log1p(amount)`` against their
  exponentially weighted order-size statistics, the mean and the spread each
  shrunk toward what the population says of it (:func:`order_size_baseline`:
  customers differ in what they spend far more than one customer's orders
  differ), made a Student-t by the orders the spread rests on
  (:func:`t_as_z`), plus a minimum ratio to their typical order;
* a River ``HalfSpaceTrees`` on behaviour features (order-size z, gap ratio),
  with a threshold that is the running ``hst_quantile`` of its own scores. Like
  River's ``QuantileFilter`` with ``protect_anomaly_detector``, the trees do not
  learn the orders they flag; unlike it, the score is computed once and reused.

Fires when the order is at least ``min_ratio`` x typical and either the z-score
passes ``z_threshold`` or the trees flag it with ``z_threshold - 1``. Resolves
on the next ordinary order or after ``resolve_after_days``. The detector owns
its order-size baseline: it learns each order *after* judging it, and never an
order it flags. Scores are surprises: ``-log10`` of the normal tail of the z-score, which
is the Student-t tail of the order size.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from river import anomaly, stats

from anomon.core.alerts import Reason
from anomon.core.detection_config import SpendAnomalyConfig
from anomon.core.detectors.base import NEVER, DetectionContext, Score, Verdict, surprise
from anomon.core.detectors.rhythm import rhythm_of
from anomon.core.events import Event
from anomon.core.ewstat import ew_update
from anomon.core.features import EW_ALPHA
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY

HST_SAMPLE = 8
OWN_ORDERS_MAX = (2.0 - EW_ALPHA) / EW_ALPHA
"""Orders a customer's exponentially weighted order-size mean is worth (about 12)."""
MIN_VAR = 1e-6
"""The least spread of one customer's log order sizes (identical orders have none)."""


def z_surprise(z: float) -> float:
    """Surprise of a z-score: ``-log10`` of the upper normal tail.

    >>> round(z_surprise(4.0), 2)
    4.5
    """
    return surprise(0.5 * math.erfc(z / math.sqrt(2.0)))


def t_as_z(t: float, dof: float) -> float:
    """A Student-t statistic as the normal z-score of the same tail (Wallace's approximation).

    An order is judged against a spread estimated from a few orders; the
    t distribution's heavier tail is the price of that estimate, and the z
    threshold then means the same for a short history and a long one.

    >>> round(t_as_z(4.0, 10.0), 2), round(t_as_z(4.0, 1e9), 2)  # exact: 3.02, 4.0
    (3.02, 4.0)
    """
    z = math.sqrt(dof * math.log1p(t * t / dof)) * (8.0 * dof + 1.0) / (8.0 * dof + 3.0)
    return math.copysign(z, t)


def order_size_baseline(n: int, own_mu: float, own_var: float, pop_mu: float,
                        within_var: float, between_var: float,
                        prior_weight: float) -> tuple[float, float, float]:
    """Mean and spread of a customer's next log order size, from their ``n`` orders, and
    the orders that spread rests on (the degrees of freedom of its Student-t).

    Customers differ in how much they spend (``between_var``, the spread of
    their typical orders) far more than one customer's orders differ from each
    other (``within_var``), so the two are shrunk apart, as a normal hierarchy:

    * the customer's spread is their own, shrunk toward ``within_var`` by
      ``prior_weight`` pseudo-orders;
    * their typical order is their own mean, weighed against the population's
      by precision: ``n / spread`` against ``1 / between_var``. Where customers
      differ much, a few orders place a customer; where they are alike, the
      population's mean counts more;
    * the spread of the next order adds the uncertainty of that mean.

    ``n`` counts at most :data:`OWN_ORDERS_MAX` (the exponentially weighted
    mean's worth). With no orders it is the population's: ``pop_mu`` and
    ``within_var + between_var``, resting on ``prior_weight`` orders.

    >>> mu, sd, dof = order_size_baseline(0, 0.0, 0.0, 3.8, 0.15, 0.8, 3.0)
    >>> round(mu, 2), round(sd, 2), dof
    (3.8, 0.97, 3.0)

    Eight orders of about 7.4 (log1p 2.0) in a population that spends 44 (3.8):

    >>> mu, sd, dof = order_size_baseline(8, 2.0, 0.1, 3.8, 0.15, 0.8, 3.0)
    >>> round(mu, 2), round(sd, 2), dof
    (2.03, 0.36, 11.0)
    """
    n_own = min(n, OWN_ORDERS_MAX)
    var = max((n_own * own_var + prior_weight * within_var) / (n_own + prior_weight), MIN_VAR)
    precision = n_own / var + 1.0 / between_var
    mu = (n_own / var * own_mu + pop_mu / between_var) / precision
    return mu, math.sqrt(var + 1.0 / precision), n_own + prior_weight


class SpendAnomalyDetector:
    """Order size against the customer's own baseline, with a HalfSpaceTrees second opinion."""

    kind = "spend_anomaly"
    event_types = frozenset({"purchase"})
    judges: Literal["before", "after"] = "before"
    name = "spend-z-hst"
    version = "3"

    def __init__(self, cfg: SpendAnomalyConfig | None = None, seed: int = 42) -> None:
        cfg = cfg or SpendAnomalyConfig()
        self.hst = anomaly.HalfSpaceTrees(
            n_trees=cfg.hst_trees, height=cfg.hst_height, window_size=cfg.hst_window, seed=seed
        )
        self.hst_threshold = stats.Quantile(cfg.hst_quantile)
        self.hst_seen = 0
        self._counter = 0

    def on_event(self, state: CustomerState, event: Event, ctx: DetectionContext) -> Verdict | None:
        if event.type != "purchase":
            return None
        cfg = ctx.config.spend_anomaly
        amount = float(event.amount)
        x = math.log1p(amount)
        z, mu = self._size_z(state, ctx, x)
        typical = math.expm1(mu)
        ratio = amount / typical if typical > 0 else 0.0
        n = state.amt_n
        candidate = ratio >= cfg.min_ratio and n >= cfg.min_purchases and z >= cfg.z_threshold - 1
        hst_score, hst_cut = self._hst(state, z, ctx, candidate)
        flagged = candidate and (
            z >= cfg.z_threshold or hst_score > hst_cut or ratio >= cfg.strong_ratio
        )
        if not flagged:  # a baseline must not learn what it flags
            if n >= 2:
                ctx.population.observe_own_amount(x - state.amt_mu, min(n, OWN_ORDERS_MAX))
            state.amt_n, state.amt_mu, state.amt_var = ew_update(
                state.amt_n, state.amt_mu, state.amt_var, x, EW_ALPHA)
            ctx.population.observe_amount(x)
            if state.is_open(self.kind) and z < 2.0:
                return Verdict(self.kind, firing=False, events=[event.event_id])
            return None
        reasons = [
            Reason(feature="order_amount", value=round(amount, 2), baseline=round(typical, 2),
                   text=f"order of {amount:,.2f} is {ratio:.1f}x their typical {typical:,.2f}"),
            Reason(feature="amount_z", value=round(z, 2), baseline=cfg.z_threshold,
                   text=f"{z:.1f} standard deviations above their usual order size"),
        ]
        if hst_score > hst_cut:
            reasons.append(Reason(feature="behaviour_anomaly_score", value=round(hst_score, 3),
                                  baseline=round(hst_cut, 3),
                                  text="unusual purchase behaviour for the population"))
        return Verdict(self.kind, firing=True, score=round(z_surprise(z), 3),
                       threshold=round(z_surprise(cfg.z_threshold), 3),
                       reasons=reasons, events=[event.event_id])

    def _size_z(self, state: CustomerState, ctx: DetectionContext,
                log_amount: float) -> tuple[float, float]:
        """The z-score of an order of ``log1p`` size ``log_amount``, and the log1p of the
        customer's typical order.

        :func:`order_size_baseline` with the population's statistics, the spread
        at least ``min_sd``; the score a Student-t of the orders the spread rests
        on, read as a normal z (:func:`t_as_z`).
        """
        cfg = ctx.config.spend_anomaly
        pop = ctx.population
        mu, sd, dof = order_size_baseline(state.amt_n, state.amt_mu, state.amt_var, pop.amt_mu,
                                          pop.amt_within_var, pop.amt_between_var(),
                                          cfg.prior_weight)
        return t_as_z((log_amount - mu) / max(sd, cfg.min_sd), dof), mu

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        if not state.is_open(self.kind):
            return None
        opened = state.episodes[self.kind].opened_ts
        if (now - opened) / DAY >= ctx.config.spend_anomaly.resolve_after_days:
            return Verdict(self.kind, firing=False)
        return None

    def next_check(self, state: CustomerState, now: float, ctx: DetectionContext) -> float:
        if not state.is_open(self.kind):
            return NEVER
        opened = state.episodes[self.kind].opened_ts
        return opened + ctx.config.spend_anomaly.resolve_after_days * DAY

    def score(self, state: CustomerState, now: float, ctx: DetectionContext) -> Score:
        """The last order's surprise against the customer's order-size baseline."""
        threshold = z_surprise(ctx.config.spend_anomaly.z_threshold)
        if not state.purchases:
            return Score(None, threshold, "judged at each order")
        z, _ = self._size_z(state, ctx, math.log1p(state.purchases[-1][1]))
        return Score(z_surprise(z), threshold, "the last order")

    def _hst(
        self, state: CustomerState, z: float, ctx: DetectionContext, candidate: bool
    ) -> tuple[float, float]:
        """Score candidates (and a learning sample) with HalfSpaceTrees; never learn a flag.

        Scoring every order costs tens of microseconds, so the trees see every
        ``HST_SAMPLE``-th order to learn the population's behaviour, and every
        candidate outlier to judge it.
        """
        self._counter += 1
        learn = self._counter % HST_SAMPLE == 0
        if not (candidate or learn):
            return 0.0, math.inf
        rhythm = rhythm_of(state, ctx.population, ctx.config.drop_off.prior_weight)
        gap = state.last_gap_days or rhythm.mean_days
        x = {
            "amount_z": (min(max(z, -4.0), 8.0) + 4.0) / 12.0,
            "gap_ratio": min(max(math.log(max(gap, 0.1) / rhythm.mean_days) + 3.0, 0.0), 6.0) / 6.0,
        }
        score = float(self.hst.score_one(x))
        cut = self.hst_threshold.get()
        ready = self.hst_seen >= ctx.config.spend_anomaly.hst_window and cut is not None
        threshold = float(cut) if ready and cut is not None else math.inf
        if learn and not candidate:
            self.hst.learn_one(x)
            self.hst_threshold.update(score)
            self.hst_seen += 1
        return score, threshold

    def state_dict(self) -> dict[str, Any]:
        """Model state for checkpoints."""
        return {"hst": self.hst, "hst_threshold": self.hst_threshold, "hst_seen": self.hst_seen}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.hst = data["hst"]
        self.hst_threshold = data["hst_threshold"]
        self.hst_seen = data["hst_seen"]
