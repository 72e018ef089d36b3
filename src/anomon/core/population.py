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


class PopulationBaseline:
    """Population rhythm, order size, refund share and value quantiles."""

    def __init__(self, high_quantile: float = 0.9, mid_quantile: float = 0.5) -> None:
        self.gap_mu = math.log(30.0)
        self.gap_var = 1.0
        self.amt_mu = math.log1p(50.0)
        self.amt_var = 0.5
        self.purchase_value = 0.0
        self.refund_value = 0.0
        self.n_gaps = 0
        self.n_amounts = 0
        self._high = stats.Quantile(high_quantile)
        self._mid = stats.Quantile(mid_quantile)
        self.n_values = 0

    def observe_gap(self, log_gap: float) -> None:
        """A new inter-purchase gap (log days) somewhere in the population."""
        self.n_gaps, self.gap_mu, self.gap_var = ew_update(
            self.n_gaps, self.gap_mu, self.gap_var, log_gap, _ALPHA)

    def observe_amount(self, log_amount: float) -> None:
        """A new order value (log1p)."""
        self.n_amounts, self.amt_mu, self.amt_var = ew_update(
            self.n_amounts, self.amt_mu, self.amt_var, log_amount, _ALPHA)

    def observe_value(self, value: float) -> None:
        """A customer's decayed value at one of their purchases."""
        self.n_values += 1
        self._high.update(value)
        self._mid.update(value)

    def observe_refund_share(self, purchase: float, refund: float) -> None:
        """Add purchase and refund value to the population totals."""
        self.purchase_value += purchase
        self.refund_value += refund

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
        """Everything needed to restore the baseline (picklable)."""
        return dict(self.__dict__)

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.__dict__.update(data)
