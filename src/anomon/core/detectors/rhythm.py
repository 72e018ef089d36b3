"""A customer's purchase rhythm: gamma-distributed gaps, shrunk toward the population.

The log-gap statistics of the customer (``gap_mu``, ``gap_var``) are blended
with the population's, weighted by how many gaps the customer has, then turned
into a gamma distribution (mean ``m``, shape ``k``) whose survival function says
how surprising a silence is.

>>> r = Rhythm(mean_days=10.0, shape=2.0, own_gaps=8)
>>> round(r.silence_p(10.0), 3), r.silence_p(60.0) < 1e-4
(0.406, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

# the scalar kernels of scipy.special's ufuncs: the same numbers, without the array machinery
from scipy.special.cython_special import gammaincc, gammainccinv

from anomon.core.population import PopulationBaseline
from anomon.core.state import CustomerState

MIN_SHAPE = 0.8
MAX_SHAPE = 4.0
MIN_LOG_VAR = 0.12
EFFECTIVE_GAPS = 12  # an exponentially weighted estimate rests on about this many gaps


@dataclass(frozen=True, slots=True)
class Rhythm:
    """Gap distribution of one customer."""

    mean_days: float
    shape: float
    own_gaps: int

    def silence_p(self, days: float, gaps: int = 1) -> float:
        """P(the sum of ``gaps`` gaps exceeds ``days``) for an unchanged customer."""
        if days <= 0:
            return 1.0
        return gammaincc(self.shape * gaps, self.shape * days / self.mean_days)


@lru_cache(maxsize=4096)
def _quantile_per_shape(shape_hundredths: int, gaps: int, p: float) -> float:
    k = shape_hundredths / 100.0
    return gammainccinv(k * gaps, p) / k


def silence_quantile_days(rhythm: Rhythm, p: float, gaps: int = 1) -> float:
    """Days of silence whose :meth:`Rhythm.silence_p` is ``p``, rounded to the early side.

    For scheduling: the shape is rounded up to a hundredth (a more regular
    customer is surprised sooner), so the time returned is never late, and
    the inverse gamma function is computed once per rounded shape.

    >>> r = Rhythm(mean_days=10.0, shape=2.0, own_gaps=8)
    >>> d = silence_quantile_days(r, 0.01)
    >>> round(d, 1), round(r.silence_p(d), 3)
    (33.2, 0.01)
    """
    return _quantile_per_shape(math.ceil(rhythm.shape * 100.0), gaps, p) * rhythm.mean_days


def shape_from_log_var(var: float) -> float:
    """Gamma shape whose log has variance ``var`` (trigamma(k) ~ 1/k + 1/(2k^2))."""
    var = max(var, 1e-6)
    k = (1.0 + math.sqrt(1.0 + 2.0 * var)) / (2.0 * var)
    return min(MAX_SHAPE, max(MIN_SHAPE, k))


def visit_rhythm_of(state: CustomerState) -> Rhythm | None:
    """The customer's interaction rhythm, or ``None`` with fewer than four gaps."""
    n = min(state.visit_n, EFFECTIVE_GAPS)
    if n < 4:
        return None
    w = 2.0  # pseudo-gaps of a wide prior around the customer's own mean
    var = (n * state.visit_var + w * 1.0) / (n + w)
    var = max(var, MIN_LOG_VAR) * (1.0 + 1.0 / (n + w))
    k = shape_from_log_var(var)
    return Rhythm(mean_days=math.exp(state.visit_mu + 1.0 / (2.0 * k)), shape=k, own_gaps=n)


def rhythm_of(state: CustomerState, population: PopulationBaseline, prior_weight: float) -> Rhythm:
    """The customer's rhythm, shrunk toward the population when history is short."""
    n = min(state.gap_n, EFFECTIVE_GAPS)
    w = prior_weight
    mu = (n * state.gap_mu + w * population.gap_mu) / (n + w)
    # mixture variance of customer and population, widened for the uncertainty of the mean
    spread = n * w * (state.gap_mu - population.gap_mu) ** 2 / (n + w) ** 2
    var = (n * state.gap_var + w * population.gap_var) / (n + w) + spread
    var = max(var, MIN_LOG_VAR) * (1.0 + 1.0 / (n + w))
    k = shape_from_log_var(var)
    mean = math.exp(mu + 1.0 / (2.0 * k))
    return Rhythm(mean_days=mean, shape=k, own_gaps=n)
