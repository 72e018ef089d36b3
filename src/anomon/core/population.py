"""What the whole population looks like: the prior every customer is shrunk toward.

New customers, or customers with little history, are judged against these
numbers until they have enough of their own. The statistics are exponentially
weighted with a small weight so they follow slow drift.

>>> pop = PopulationBaseline()
>>> pop.observe_gap(2.0); pop.observe_amount(4.0)
>>> round(pop.gap_mu, 2) > 0
True
"""

from __future__ import annotations

import math
from typing import Any

from river import stats

from anomon.core.ewstat import ew_update

_ALPHA = 0.002
MIN_BETWEEN_VAR = 0.01
"""The least spread of customers' typical log order sizes assumed (10% between customers)."""
SHAPE_PRIOR_MIN = 200
"""Fitted shapes seen before customers' shapes are shrunk toward the population's."""
SHAPE_SPREAD_FLOOR = 0.02
"""The least spread of customers' true log shapes assumed (about 14% between customers):
a customer with a long history keeps their own rhythm even in a population of one rhythm."""


class PopulationBaseline:
    """Population rhythm, order size, refund share and value quantiles."""

    def __init__(self, high_quantile: float = 0.9, mid_quantile: float = 0.5) -> None:
        self.gap_mu = math.log(30.0)
        self.gap_var = 1.0
        self.amt_mu = math.log1p(50.0)
        self.amt_var = 0.5
        #: the spread of a customer's own order sizes (log1p), pooled over customers
        self.amt_within_var = 0.15
        self.n_within = 0
        self.purchase_value = 0.0
        self.refund_value = 0.0
        #: orders and refunds seen, for the share of orders refunded
        self.n_orders_seen = 0
        self.n_refunds_seen = 0
        self.n_gaps = 0
        self.n_amounts = 0
        self._high = stats.Quantile(high_quantile)
        self._mid = stats.Quantile(mid_quantile)
        self.n_values = 0
        # per channel ("purchase", "activity"): customers' log mean gap, for the rate prior
        self.rhythm_stats: dict[str, list[float]] = {
            "purchase": [0.0, math.log(30.0), 1.0], "activity": [0.0, math.log(10.0), 1.0]}
        #: customers' fitted log order-gap shapes: count, mean, variance, mean sampling variance
        self.shape_stats: list[float] = [0.0, 0.0, 0.0, 0.0]
        #: channel -> (the statistics a prior was fitted to, the prior): refitted when they change
        self._priors: dict[str, tuple[list[float], tuple[float, float]]] = {}

    def observe_rhythm(self, channel: str, log_mean_gap: float) -> None:
        """A customer's own log mean gap on ``channel`` (at one of their gaps)."""
        n, mu, var = self.rhythm_stats[channel]
        n_, mu, var = ew_update(int(n), mu, var, log_mean_gap, _ALPHA)
        self.rhythm_stats[channel] = [float(n_), mu, var]

    def rate_prior(self, channel: str) -> tuple[float, float]:
        """``(a0, b0)``: a gamma prior of a customer's rate on ``channel`` (per day).

        Fitted to the spread of customers' log mean gaps: shape from the
        variance (trigamma), scale so the mean log rate matches one standard
        deviation *slower* than the population's. Kept weak (shape <= 1) and
        cautious: it speaks only for customers with little history, and a
        prior that thinks them faster than they are would call their
        ordinary gaps silences (frequent buyers are seen more often, so the
        population statistics lean toward them).

        >>> a0, b0 = PopulationBaseline().rate_prior("purchase")
        >>> 0.5 <= a0 <= 1.0 and b0 > 0
        True
        """
        stats_now = self.rhythm_stats[channel]
        cached = self._priors.get(channel)
        if cached is not None and cached[0] is stats_now:  # not observed since: the same prior
            return cached[1]
        _, mu, var = stats_now
        var = max(var, 0.05)
        mu += math.sqrt(var)
        a0 = min(1.0, max(0.5, (1.0 + math.sqrt(1.0 + 2.0 * var)) / (2.0 * var)))
        # E[log rate] = digamma(a0) - log(b0) = -mu; digamma(a) ~ log(a) - 1/(2a) - 1/(12a^2)
        prior = (a0, a0 * math.exp(mu - 1.0 / (2.0 * a0) - 1.0 / (12.0 * a0 * a0)))
        self._priors[channel] = (stats_now, prior)
        return prior

    def observe_shape(self, log_shape: float, sampling_var: float) -> None:
        """A customer's fitted log order-gap shape and its sampling variance (at an order)."""
        n, mu, var, s2 = self.shape_stats
        n_, mu, var = ew_update(int(n), mu, var, log_shape, _ALPHA)
        s2 += max(1.0 / n_, _ALPHA) * (sampling_var - s2)
        self.shape_stats = [float(n_), mu, var, s2]

    def shape_prior(self) -> tuple[float, float] | None:
        """``(m, tau2)``: the mean of customers' log gap shapes and the spread of the true ones.

        ``tau2`` is the observed variance of the fitted log shapes less their
        mean sampling variance (floored at :data:`SHAPE_SPREAD_FLOOR`): what is
        left when the noise of a dozen gaps is taken away. ``None`` until
        :data:`SHAPE_PRIOR_MIN` fits were seen.

        >>> pop = PopulationBaseline()
        >>> for i in range(300):
        ...     pop.observe_shape(0.5 if i % 2 else -0.1, 0.05)
        >>> m, tau2 = pop.shape_prior()
        >>> round(m, 2), round(tau2, 2)
        (0.2, 0.04)
        """
        n, mu, var, s2 = self.shape_stats
        if n < SHAPE_PRIOR_MIN:
            return None
        return mu, max(var - s2, SHAPE_SPREAD_FLOOR)

    def observe_gap(self, log_gap: float) -> None:
        """A new inter-purchase gap (log days) somewhere in the population."""
        self.n_gaps, self.gap_mu, self.gap_var = ew_update(
            self.n_gaps, self.gap_mu, self.gap_var, log_gap, _ALPHA)

    def observe_amount(self, log_amount: float) -> None:
        """A new order value (log1p)."""
        self.n_amounts, self.amt_mu, self.amt_var = ew_update(
            self.n_amounts, self.amt_mu, self.amt_var, log_amount, _ALPHA)

    def observe_own_amount(self, residual: float, n_own: float) -> None:
        """An order's log1p size less its customer's mean of ``n_own`` earlier orders.

        The residual's variance is the customer's spread times ``1 + 1 / n_own``;
        that factor is taken off, so :attr:`amt_within_var` estimates the spread
        of one customer's orders, pooled over customers.

        >>> pop = PopulationBaseline()
        >>> for r in (0.3, -0.3) * 50:
        ...     pop.observe_own_amount(r, 1.0)
        >>> round(pop.amt_within_var, 3)
        0.045
        """
        n = self.n_within = self.n_within + 1
        alpha = max(1.0 / n, _ALPHA)
        self.amt_within_var += alpha * (residual * residual * n_own / (n_own + 1.0)
                                        - self.amt_within_var)

    def amt_between_var(self) -> float:
        """The spread of customers' typical order sizes (log1p): all orders' less one
        customer's, at least :data:`MIN_BETWEEN_VAR`."""
        return max(self.amt_var - self.amt_within_var, MIN_BETWEEN_VAR)

    def observe_value(self, value: float) -> None:
        """A customer's decayed value at one of their purchases."""
        self.n_values += 1
        self._high.update(value)
        self._mid.update(value)

    def observe_refund_share(self, purchase: float, refund: float) -> None:
        """Add an order's value (``purchase``) or a refund's (``refund``) to the totals."""
        self.purchase_value += purchase
        self.refund_value += refund
        if refund > 0.0:
            self.n_refunds_seen += 1
        elif purchase > 0.0:
            self.n_orders_seen += 1

    @property
    def refunds_per_order(self) -> float:
        """Refunds per order in the population (0.05 before 50 orders were seen).

        >>> pop = PopulationBaseline()
        >>> for i in range(100):
        ...     pop.observe_refund_share(20.0, 0.0)
        ...     if i % 10 == 0:
        ...         pop.observe_refund_share(0.0, 20.0)
        >>> pop.refunds_per_order
        0.1
        """
        if self.n_orders_seen < 50:
            return 0.05
        return self.n_refunds_seen / self.n_orders_seen

    @property
    def refund_ratio(self) -> float:
        """Population refund value / purchase value."""
        return self.refund_value / self.purchase_value if self.purchase_value > 0 else 0.05

    def value_cuts(self) -> tuple[float, float]:
        """(mid, high) decayed-value cut points, or infinities before any data."""
        if self.n_values < 50:
            return math.inf, math.inf
        return float(self._mid.get() or math.inf), float(self._high.get() or math.inf)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the baseline (picklable; the prior cache left out)."""
        return {name: getattr(self, name) for name in STORED}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (a field newer than the checkpoint keeps its default)."""
        for name in STORED:
            if name in data:
                setattr(self, name, data[name])


STORED: tuple[str, ...] = (
    "gap_mu", "gap_var", "amt_mu", "amt_var", "amt_within_var", "n_within", "purchase_value",
    "refund_value", "n_orders_seen", "n_refunds_seen", "n_gaps", "n_amounts", "_high", "_mid",
    "n_values", "rhythm_stats", "shape_stats")
"""The attributes a checkpoint keeps, in the order they are set (named, not read from
``__dict__``: a compiled build's objects have none)."""
