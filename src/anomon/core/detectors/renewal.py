"""A customer's event rhythm as a gamma renewal process with an uncertain rate.

Gaps between a customer's bursts (orders, or visits merged into sessions) are
gamma with shape ``k`` and mean ``1 / rate``; the rate itself is uncertain, a
gamma posterior ``Gamma(alpha, beta)``: a population prior (``a0`` pseudo-events
over ``b0`` pseudo-days, refitted online) plus the customer's own gaps. Two
questions are asked of it, both calibrated to a false-alarm *budget per
customer-day* rather than a p-value per gap:

* **silence**: an unchanged customer with rate ``lam`` raises a silence alarm
  at rate ``lam * P(gap > s)`` per day. Averaged over the posterior this is
  ``alpha / beta * I(beta / (beta + k s); alpha + 1, k)`` (``I`` the regularised
  incomplete beta function: the gap's predictive law is a beta prime). The
  alarm fires once it is below the budget, i.e. once the rate-weighted
  survival ``p`` is below ``budget x expected gap`` (``beta / alpha``). A fast
  buyer and a slow one, a long history and a short one spend the same budget.
* **decline**: a CUSUM of the log-likelihood ratio of "buying at ``ratio`` x the
  reference rate" against the reference rate, frozen when an excursion
  starts. A completed gap ``g`` adds ``k ln(ratio) + k (1 - ratio) lam0 g``; the
  current silence adds a lower bound of the log ratio of the two survival
  functions (see :func:`in_gap_evidence`). Its
  average run length under no change is at least ``e^h / lam0`` days, so the
  threshold ``h = ln(1 / (budget x expected gap))`` spends the same budget.

A purchase silence is judged on the customer's fitted order process once
there are :data:`FIT_MIN_GAPS` gaps (:func:`silence_renewal`): the gamma shape
by maximum likelihood, orders merged into baskets counted as short gaps
(:func:`censored_shape`). Otherwise the shape is used only as far as the log
gaps establish it: their variance is shrunk toward the Poisson value and
widened for its uncertainty, so a bursty or new customer gets a heavy tail and
only a well-established regular rhythm a light one (``shape``); the decline
CUSUM weighs completed gaps by the customer's own shape once that is clearly
regular (``rhythm_shape``, see
:data:`ESTABLISHED`). The rate is known only as well as the mean log gap it is
estimated from: ``n / var`` pseudo-events (a gamma posterior's log has
variance about ``1 / alpha``), so a bursty rhythm, whose gaps scatter widely,
tells less per gap than a regular one.

>>> r = renewal(n=12, mu=math.log(10.0), var=0.35, prior=(1.5, 30.0))
>>> round(r.expected_gap, 1), 1.0 < r.shape < 4.0
(12.6, True)
>>> s = r.silence_threshold_days(1e-4)
>>> r.silence_surprise(s) > r.silence_threshold(1e-4) - 1e-6 > r.silence_surprise(s - 1.0)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

# the scalar kernels of scipy.special's ufuncs: the same numbers, without the array machinery
from scipy.special.cython_special import betainc, betaincinv
from scipy.special.cython_special import psi as digamma

POISSON_LOG_VAR = 1.6449  # trigamma(1): variance of log(gap) for exponential gaps
EFFECTIVE_GAPS = 12  # an exponentially weighted estimate (weight 0.15) rests on about this many
SHAPE_PRIOR_GAPS = 4.0  # pseudo-gaps of the Poisson log-gap variance
MIN_SHAPE = 0.25
"""Fitted shapes are clamped to at least this: the burstiest population measured, off the
matrix (``bench/off_matrix.py``); at 0.4 drop-off spent 2x its budget on such buyers."""
TAIL_WIDENING = 2.0
MAX_SHAPE = 4.0
LN10 = math.log(10.0)
REFERENCE_Z = 1.2816  # the decline reference is the rate's 10% quantile
ESTABLISHED = 2.0
"""A customer's own gap shape at least this large is established: the decline CUSUM weighs
completed gaps by it (Poisson buyers' estimates seldom reach it, bursty buyers' almost never)."""


def shape_of_log_var(var: float) -> float:
    """Gamma shape whose log has variance ``var`` (trigamma(k) ~ 1/k + 1/(2k^2)), clamped.

    >>> round(shape_of_log_var(POISSON_LOG_VAR), 2), shape_of_log_var(0.01)
    (0.93, 4.0)
    """
    var = max(var, 1e-6)
    k = (1.0 + math.sqrt(1.0 + 2.0 * var)) / (2.0 * var)
    return min(MAX_SHAPE, max(MIN_SHAPE, k))


@dataclass(frozen=True, slots=True)
class Renewal:
    """Gap shape ``shape`` and the rate posterior ``Gamma(alpha, beta)`` (rate per day).

    ``shape`` is the cautious tail shape of silences; ``rhythm_shape`` the one
    the decline CUSUM weighs completed gaps by: the customer's own once it is
    :data:`ESTABLISHED`, else ``shape``.
    """

    shape: float
    alpha: float
    beta: float
    rhythm_shape: float

    @property
    def expected_gap(self) -> float:
        """``beta / alpha``: one over the expected rate (days)."""
        return self.beta / self.alpha

    @property
    def rate(self) -> float:
        """Expected rate (bursts per day)."""
        return self.alpha / self.beta

    def rate_quantile(self, z: float = REFERENCE_Z) -> float:
        """A low quantile of the rate (``z`` standard deviations; Wilson-Hilferty).

        The decline CUSUM's reference: a customer whose rate is merely
        overestimated must not look like a decliner.

        >>> r = Renewal(shape=1.0, alpha=12.0, beta=120.0, rhythm_shape=1.0)
        >>> round(r.rate_quantile(0.0), 4), round(r.rate_quantile(1.2816), 4)
        (0.0972, 0.0653)
        """
        a = self.alpha
        root = 1.0 - 1.0 / (9.0 * a) - z / (3.0 * math.sqrt(a))
        return max(root, 0.05) ** 3 * a / self.beta

    def silence_p(self, days: float) -> float:
        """Rate-weighted survival of a silence of ``days`` (see the module docstring)."""
        if days <= 0.0:
            return 1.0
        b = self.beta
        return betainc(self.alpha + 1.0, self.shape, b / (b + self.shape * days))

    def silence_surprise(self, days: float) -> float:
        """``-log10`` of :meth:`silence_p`."""
        return -math.log10(max(self.silence_p(days), 1e-300))

    def silence_threshold(self, budget: float) -> float:
        """The surprise at which the silence spends ``budget`` false alarms per day."""
        return -math.log10(min(1.0, budget * self.expected_gap))

    def silence_threshold_days(self, budget: float) -> float:
        """The silence (days) at which the surprise reaches :meth:`silence_threshold`."""
        p = budget * self.expected_gap
        if p >= 1.0:
            return 0.0
        z = _beta_quantile(self.alpha + 1.0, self.shape, p)
        return self.beta * (1.0 / max(z, 1e-300) - 1.0) / self.shape if z > 0.0 else math.inf


@lru_cache(maxsize=8192)
def _beta_quantile(a: float, b: float, p: float) -> float:
    """``I^-1(p; a, b)``, cached: between two of a customer's gaps every sweep asks again."""
    return betaincinv(a, b, p)


def renewal(n: int, mu: float, var: float, prior: tuple[float, float],
            counted: tuple[int, float] | None = None) -> Renewal:
    """The renewal model of a customer from their log-gap statistics and a prior.

    ``n``, ``mu``, ``var``: count, mean and variance of the log gaps (days),
    exponentially weighted; ``prior``: ``(a0, b0)`` of the rate; ``counted``:
    ``(gaps, days)``, the gaps of a window of recent history and their total.
    With it the rate comes from the count: the arithmetic mean gap estimates a
    gamma's mean whatever its shape, where the mean log gap needs the shape
    and overstates a bursty buyer's rate when the shape is misjudged. The
    count is worth ``gaps x shape`` pseudo-events (the gamma likelihood of a
    rate from ``gaps`` gaps of shape ``k``), with the cautious tail shape.

    A bursty buyer (shape 0.7, mean gap 10 days) whose merged baskets hid the
    short gaps, so that the log gaps look like shape 1.3:

    >>> logs = dict(n=12, mu=math.log(10.0) - 0.863, var=1.0, prior=(1.0, 20.0))
    >>> from_logs, counted = renewal(**logs), renewal(**logs, counted=(30, 300.0))
    >>> round(from_logs.expected_gap, 1), round(counted.expected_gap, 1)
    (7.5, 10.4)
    """
    n_eff = min(n, EFFECTIVE_GAPS)
    w = SHAPE_PRIOR_GAPS
    shrunk = (n_eff * var + w * POISSON_LOG_VAR) / (n_eff + w)
    own = (n_eff * var + POISSON_LOG_VAR) / (n_eff + 1.0)  # mostly the customer's own
    centre = shape_of_log_var(own)
    # widened for its uncertainty, and because merged baskets cut the short gaps that
    # reveal burstiness: the tail is judged as if the rhythm were less regular
    tail = min(centre, shape_of_log_var(shrunk * (1.0 + TAIL_WIDENING / math.sqrt(n_eff + w))))
    a0, b0 = prior
    if n_eff == 0:
        return Renewal(tail, a0, b0, tail)
    rhythm = centre if centre >= ESTABLISHED else tail
    if counted is not None and counted[0] > 0:
        gaps, days = counted
        return Renewal(tail, a0 + gaps * tail, b0 + days * tail, rhythm)
    mean_gap = math.exp(mu - digamma(centre) + math.log(centre))
    # the rate is known as well as the mean log gap: its variance is var / n (a gamma
    # posterior's log has variance about 1 / alpha); a bursty rhythm tells less per gap
    info = n_eff / own
    return Renewal(tail, a0 + info, b0 + info * mean_gap, rhythm)


def _gamma_shape_of(s: float) -> float:
    """The gamma shape with ``ln(mean) - mean(ln)`` equal to ``s`` (Minka's closed form,
    within 1.5%)."""
    s = max(s, 1e-6)
    return (3.0 - s + math.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)


def censored_shape(gaps: int, days: float, log_total: float, merged: int, cut: float) -> float:
    """Gamma shape of a customer's order gaps, counting merged orders as short gaps.

    ``gaps`` basket gaps add up to ``days`` and their logs to ``log_total``;
    ``merged`` more gaps are known only to be shorter than ``cut`` days (orders
    merged into a basket). A fit to the basket gaps alone reads a bursty buyer
    as regular, since merging cuts away the short gaps that show the
    burstiness; counting the merged orders gives the shape back. The
    likelihood is maximised by expectation-maximisation: a merged gap, for the
    shape ``k`` of the moment, is expected at ``cut k / (k + 1)``, its log at
    ``ln(cut) - 1 / k`` (gaps much shorter than the mean: density ``~ g^(k-1)``).
    Clamped to ``[MIN_SHAPE, MAX_SHAPE]``.

    Shape-0.5 gaps with a mean of 3 days: a third of them merged; their basket
    gaps alone look like shape 1.5.

    >>> import random
    >>> rng = random.Random(7)
    >>> g = [rng.gammavariate(0.5, 6.0) for _ in range(3000)]
    >>> kept = [x for x in g if x >= 0.5]
    >>> k = censored_shape(len(kept), sum(kept), sum(map(math.log, kept)),
    ...                    len(g) - len(kept), 0.5)
    >>> 0.45 < k < 0.55
    True
    """
    if gaps < 1:
        return MAX_SHAPE
    n = gaps + merged
    if merged == 0:  # no gap hidden: the plain maximum-likelihood shape
        k = _gamma_shape_of(math.log(days / n) - log_total / n)
        return min(MAX_SHAPE, max(MIN_SHAPE, k))
    log_cut = math.log(cut)
    k = 1.0
    for _ in range(50):
        total = days + merged * cut * k / (k + 1.0)
        logs = log_total + merged * (log_cut - 1.0 / k)
        k_next = _gamma_shape_of(math.log(total / n) - logs / n)
        done = abs(k_next - k) < 1e-4 * k
        k = k_next
        if done:
            break
    return min(MAX_SHAPE, max(MIN_SHAPE, k))


FIT_MIN_GAPS = 5
"""From this many order gaps in the purchase window the silence is judged on the fitted order
process (:func:`silence_renewal`); with fewer, on the basket model."""


def unbiased_shape(k: float, n: int) -> float:
    """The gamma shape MLE of ``n`` gaps with its small-sample bias taken off.

    The MLE overstates the shape by about ``3 / n`` of itself (a too regular
    rhythm, a too light tail); ``(n - 3) k / n + 2 / (3 n)`` is nearly
    unbiased (Bowman and Shenton).

    >>> round(unbiased_shape(4.0, 30), 2), round(unbiased_shape(1.0, 5), 2)
    (3.62, 0.53)
    """
    return (n - 3.0) * k / n + 2.0 / (3.0 * n)


def shape_sampling_var(k: float, n: int) -> float:
    """Sampling variance of the log of a gamma shape fitted to ``n`` gaps of shape ``k``.

    The Fisher information gives ``var(k_hat) = k / (n (k trigamma(k) - 1))``;
    with ``trigamma(k) ~ 1/k + 1/(2k^2) + 1/(6k^3)`` the log's variance is
    ``1 / (n (1/2 + 1/(6k)))``: about ``1.5 / n`` for a Poisson buyer.

    >>> round(shape_sampling_var(1.0, 12), 3), round(shape_sampling_var(4.0, 40), 3)
    (0.125, 0.046)
    """
    return 1.0 / (max(n, 1) * (0.5 + 1.0 / (6.0 * k)))


def unbiased_log_shape(k: float, n: int) -> float:
    """``ln k`` of an unbiased shape estimate ``k``, its own bias taken off: the log of an
    unbiased estimate falls short by about half its variance.

    >>> round(unbiased_log_shape(1.0, 12), 3)
    0.062
    """
    return math.log(k) + 0.5 * shape_sampling_var(k, n)


def shrunk_shape(k: float, n: int, prior: tuple[float, float] | None) -> float:
    """A customer's fitted shape ``k`` (``n`` gaps) shrunk toward the population's.

    ``prior`` is ``(m, tau2)``: the mean log shape of customers and the spread
    of their true log shapes (the observed spread less the sampling variance,
    :meth:`~anomon.core.population.PopulationBaseline.shape_prior`). The
    log shape moves toward ``m`` by ``s2 / (s2 + tau2)``, ``s2`` its sampling
    variance (:func:`shape_sampling_var`): an empirical-Bayes estimate. Where
    all customers share one rhythm (Poisson buyers of a web shop) a dozen gaps
    that happen to scatter are read as that rhythm, not as a bursty one; where
    rhythms differ the customer's own fit speaks.

    >>> round(shrunk_shape(0.55, 12, (0.0, 0.02)), 2)  # one rhythm: pulled to it
    0.92
    >>> round(shrunk_shape(0.55, 12, (0.0, 0.5)), 2)  # many rhythms: mostly its own
    0.64
    >>> shrunk_shape(0.55, 12, None)
    0.55
    """
    if prior is None:
        return k
    m, tau2 = prior
    s2 = shape_sampling_var(k, n)
    log_k = m + tau2 / (tau2 + s2) * (unbiased_log_shape(k, n) - m)
    return min(MAX_SHAPE, max(MIN_SHAPE, math.exp(log_k)))


def fitted_shape(gaps: int, days: float, log_total: float, merged: int,
                 cut: float) -> float | None:
    """The order process's shape once the window holds :data:`FIT_MIN_GAPS` order gaps
    (:func:`censored_shape`, its bias taken off), else ``None``."""
    n = gaps + merged
    if n < FIT_MIN_GAPS:
        return None
    k = censored_shape(gaps, days, log_total, merged, cut)
    return min(MAX_SHAPE, max(MIN_SHAPE, unbiased_shape(k, n)))


def silence_renewal(model: Renewal, prior: tuple[float, float], gaps: int, days: float,
                    log_total: float, merged: int, cut: float,
                    shape_prior: tuple[float, float] | None = None,
                    fitted: float | None = None) -> Renewal:
    """The model a purchase silence is judged by: the customer's fitted order process.

    ``model`` is the basket gaps' model (from :func:`renewal` with ``counted``):
    its shape is shrunk toward Poisson and widened, and read from basket gaps,
    which for a bursty buyer lack the short gaps merging cut away. Once the
    purchase window holds ``FIT_MIN_GAPS`` order gaps, merged ones counted,
    the silence is judged on the order process instead: the shape fitted by
    :func:`censored_shape` (its bias taken off, :func:`unbiased_shape`), the
    rate from every order gap (a merged one at its expected length). A regular
    rhythm then counts as regular as its gaps show, and a bursty one as bursty.
    An unchanged customer's alarm rate is the order rate times the chance an
    order gap outlasts the silence: the same budget is spent (a basket gap is
    an order gap known to be longer than ``cut``). With fewer gaps ``model``,
    its tail made heavier where merged orders show a heavier one.

    ``shape_prior`` (the population's, see :func:`shrunk_shape`) pulls a short
    history's fitted shape toward the rhythm customers share; ``fitted``, when
    the caller has it, saves fitting again.

    A bursty buyer (shape 0.5, every 3 days) whose basket gaps read as shape 1.5:

    >>> basket = renewal(n=12, mu=1.2, var=0.8, prior=(1.0, 20.0), counted=(30, 130.0))
    >>> orders = silence_renewal(basket, (1.0, 20.0), 30, 130.0, 30.0, 14, 0.5)
    >>> orders.shape < basket.shape, orders.expected_gap < basket.expected_gap
    (True, True)
    >>> orders.silence_threshold_days(4.5e-4) > basket.silence_threshold_days(4.5e-4)
    True
    """
    n = gaps + merged
    if n < FIT_MIN_GAPS and merged < 1:  # too few gaps, and none of them hidden
        return model
    if fitted is None:
        fitted = fitted_shape(gaps, days, log_total, merged, cut)
    if fitted is not None:
        k = shrunk_shape(fitted, n, shape_prior)
    else:
        k = censored_shape(gaps, days, log_total, merged, cut)
        if k >= model.shape:
            return model
    a0, b0 = prior
    total = days + merged * cut * k / (k + 1.0)
    return Renewal(k, a0 + n * k, b0 + total * k, model.rhythm_shape)


def in_gap_evidence(shape: float, rate: float, ratio: float, days: float) -> float:
    """Decline evidence of the current silence: a lower bound of the survival log ratio.

    The exact term, ``ln P(gap > days | rate x ratio) - ln P(gap > days | rate)``,
    tends to ``k (1 - ratio) rate days + (k - 1) ln(ratio)``; for a regular
    rhythm (``k > 1``) this asymptote lies below it, for ``k <= 1`` the line
    through zero does. Both are linear in time, so the crossing time is exact.

    >>> round(in_gap_evidence(1.0, 0.1, 0.25, 10.0), 4)  # exponential: exact
    0.75
    >>> in_gap_evidence(4.0, 0.1, 0.25, 5.0)  # half a gap of a regular buyer: no evidence
    0.0
    """
    offset = (shape - 1.0) * math.log(ratio) if shape > 1.0 else 0.0
    return max(0.0, shape * (1.0 - ratio) * rate * days + offset)


def days_to_evidence(shape: float, rate: float, ratio: float, needed: float) -> float:
    """The silence at which :func:`in_gap_evidence` reaches ``needed``.

    >>> d = days_to_evidence(4.0, 0.1, 0.25, 3.0)
    >>> round(in_gap_evidence(4.0, 0.1, 0.25, d), 6)
    3.0
    """
    offset = (shape - 1.0) * math.log(ratio) if shape > 1.0 else 0.0
    slope = shape * (1.0 - ratio) * rate
    return max(0.0, (needed - offset) / slope) if slope > 0.0 else math.inf


def cusum_step(value: float, shape: float, rate: float, ratio: float, gap: float) -> float:
    """The decline CUSUM after a completed gap of ``gap`` days (floored at 0).

    >>> cusum_step(0.0, 1.0, 0.1, 0.25, 5.0)  # a gap shorter than usual: no evidence
    0.0
    >>> round(cusum_step(0.0, 1.0, 0.1, 0.25, 40.0), 3)  # four usual gaps in one
    1.614
    """
    step = shape * (math.log(ratio) + (1.0 - ratio) * rate * gap)
    return max(0.0, value + step)


def cusum_threshold(budget: float, expected_gap: float, floor: float = 2.0) -> float:
    """``h = ln(1 / (budget x expected gap))``: the CUSUM's run length spends ``budget``.

    >>> round(cusum_threshold(1e-4, 10.0), 2)
    6.91
    """
    return max(floor, -math.log(max(budget * expected_gap, 1e-300)))
