"""Drop-off: silence longer than the customer's rhythm allows, or a fall in frequency.

Calibrated to a false-alarm budget per customer-day (``budget_per_1000_days``),
not to a p-value per gap: a customer who buys every three days and one who
buys monthly, a long history and last week's newcomer, spend the same budget.
Two point processes of the customer are watched, each as a gamma renewal
process with an uncertain rate (:mod:`anomon.core.detectors.renewal`):

* **purchases** (orders less than half a day apart are one basket), the rate
  from the count of gaps in the purchase window (:func:`basket_gaps`), which
  holds whatever the gap shape;
* **activity**: orders, visits, logins, complaints merged into bursts (events
  less than six hours apart are one burst). Visits that come in sessions just
  before an order make the same bursts as the orders: they add no evidence.
  Browsing on its own makes many more bursts, and a stop shows much sooner.

On each process two tests run, each with its own share of the budget; shares
add up (a union bound: the tests need not be independent, and their p-values
are never multiplied):

* **silence**: the rate-weighted predictive survival of the current silence
  falls below ``budget x expected gap`` (for purchases, once the window holds
  5 gaps, of the customer's fitted order process, merged orders counted as
  short gaps: :func:`~anomon.core.detectors.renewal.silence_renewal`; the
  fitted shape shrunk toward the population's by how little a short history
  tells: :func:`~anomon.core.detectors.renewal.shrunk_shape`);
* **decline**: a gamma-renewal CUSUM for a fall to ``decline_ratio`` x the
  reference rate (the posterior rate's 10% quantile, so an overestimated rate
  is no decline; frozen when the excursion starts) passes
  ``ln(1 / (budget x expected gap))``, once the customer has
  ``decline_min_gaps`` gaps over ``decline_min_days`` (a rate to fall from: a
  bursty buyer's first fortnight of orders is not one). A completed gap is weighed
  by the customer's own shape once it is established (a regular buyer's slow
  gap is strong evidence), else by the cautious tail shape; the silence in
  progress by the tail shape, so a stop shows as a silence and resolves on a
  return.

Scores are surprises (``-log10`` probability, see
:mod:`anomon.core.detectors.base`). A silence alert resolves on the next
purchase; a decline alert at a purchase once every CUSUM is below
``resolve_fraction`` of its threshold.

>>> from anomon.core.detection_config import DetectionConfig
>>> from anomon.core.population import PopulationBaseline
>>> from anomon.core.state import CustomerState
>>> from anomon.core.features import add_purchase, add_visit
>>> from anomon.core.timeutil import DAY
>>> ctx = DetectionContext(DetectionConfig(), PopulationBaseline())
>>> s, d = CustomerState.new("c1", 0.0), DropOffDetector()
>>> for week in range(20):
...     _ = add_purchase(s, week * 7 * DAY, 30.0); add_visit(s, week * 7 * DAY)
...     d.learn(s, ctx)
>>> d.on_sweep(s, s.last_purchase_ts + 10 * DAY, ctx) is None
True
>>> v = d.on_sweep(s, s.last_purchase_ts + 70 * DAY, ctx)
>>> v.tag, v.score >= v.threshold
('purchase_silence', True)
>>> due = d.next_check(s, s.last_purchase_ts, ctx)
>>> s.last_purchase_ts + 10 * DAY < due <= s.last_purchase_ts + 70 * DAY
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from anomon.core.alerts import Reason
from anomon.core.detection_config import DropOffConfig
from anomon.core.detectors.base import NEVER, DetectionContext, Score, Verdict
from anomon.core.detectors.renewal import (
    LN10,
    Renewal,
    cusum_step,
    cusum_threshold,
    days_to_evidence,
    fitted_shape,
    in_gap_evidence,
    renewal,
    shape_sampling_var,
    silence_renewal,
    unbiased_log_shape,
)
from anomon.core.events import Event
from anomon.core.features import MIN_GAP_DAYS, basket_gaps, merged_orders, silence_start
from anomon.core.state import MAX_PURCHASES, CustomerState
from anomon.core.timeutil import DAY

CHANNELS: tuple[str, str] = ("purchase", "activity")
TESTS: tuple[str, ...] = ("purchase_silence", "activity_silence", "purchase_decline",
                          "activity_decline")
INFORMATIVE_ACTIVITY = 1.5
LOG_INFORMATIVE = math.log(INFORMATIVE_ACTIVITY)
_WORDS = {"purchase": "purchase", "activity": "purchase, visit or contact"}
BOUND_GAPS = 1.5
""":meth:`DropOffDetector.earliest_check` schedules this many expected gaps after the last order."""
BOUND_MIN_P = 0.115
"""The least rate-weighted survival of ``BOUND_GAPS`` expected gaps (0.1167, at shape 0.25 with
half a pseudo-event of rate evidence; ``tests/unit/test_drop_off_bound.py`` checks it)."""
BOUND_MIN_GATE_GAPS = -math.log(BOUND_MIN_P)
"""An activity gate of fewer gaps than this opens before ``BOUND_GAPS``: no bound then."""


@dataclass(frozen=True, slots=True)
class _Test:
    """One test's outcome on one channel, in surprise units."""

    channel: str
    test: str
    score: float
    threshold: float
    silence: float
    model: Renewal
    ref_rate: float = 0.0
    eligible: bool = True

    @property
    def firing(self) -> bool:
        return self.eligible and self.score >= self.threshold


def _budgets_of(cfg: DropOffConfig, informative: bool) -> dict[str, float]:
    """Each test's budget per customer-day; without informative activity its shares go to
    the purchase tests."""
    out = {t: cfg.budget(t) for t in TESTS}
    if not informative:
        out["purchase_silence"] += out.pop("activity_silence")
        out["purchase_decline"] += out.pop("activity_decline")
    return {t: b for t, b in out.items() if b > 0.0}


class DropOffDetector:
    """Silence and frequency decline against the customer's renewal rhythm."""

    kind = "drop_off"
    event_types = frozenset({"purchase", "interaction", "complaint"})
    judges: Literal["before", "after"] = "after"
    name = "renewal-budget"
    version = "2"

    # -- learning -------------------------------------------------------------------------

    def learn(self, state: CustomerState, ctx: DetectionContext) -> None:
        """Fold newly completed gaps into the decline CUSUMs and the population prior."""
        seen = state.decline
        if state.gap_n != seen[4]:
            self._learn_gap(state, ctx, 0, state.gap_n, state.gap_mu + 0.5 * state.gap_var,
                            state.last_gap_days)
        if state.visit_n != seen[5]:  # the common case is neither: no new gap
            self._learn_gap(state, ctx, 1, state.visit_n, state.visit_mu + 0.5 * state.visit_var,
                            state.act_gap_days)

    def _learn_gap(self, state: CustomerState, ctx: DetectionContext, i: int, n: int,
                   log_mean_gap: float, gap: float) -> None:
        """Fold channel ``i``'s new gap (``gap`` days; ``n`` gaps so far) into the CUSUM."""
        channel = CHANNELS[i]
        seen = state.decline
        seen[4 + i] = float(n)
        if n >= 4:
            ctx.population.observe_rhythm(channel, log_mean_gap)
        if i == 0:
            fitted, n_orders = self._fitted_shape(state)
            if fitted is not None:
                ctx.population.observe_shape(unbiased_log_shape(fitted, n_orders),
                                             shape_sampling_var(fitted, n_orders))
        cfg = ctx.config.drop_off
        if (cfg.purchase_decline_share if i == 0 else cfg.activity_decline_share) <= 0.0:
            return
        model = self.model(state, channel, ctx)
        ref = seen[2 * i + 1]
        if ref > 0.0:
            seen[2 * i] = cusum_step(seen[2 * i], model.rhythm_shape, ref, cfg.decline_ratio, gap)
        if seen[2 * i] == 0.0:  # a new excursion starts from today's (cautious) rate,
            # once there is a rate to fall from
            enough = (n >= cfg.decline_min_gaps
                      and self._span_days(state, i) >= cfg.decline_min_days)
            seen[2 * i + 1] = model.rate_quantile() if enough else 0.0

    @staticmethod
    def _span_days(state: CustomerState, i: int) -> float:
        """Days channel ``i``'s rate rests on: the purchase window's gaps (unbounded once the
        window is full: a daily buyer's 48 orders are rate enough), or the history."""
        if i == 0:
            return math.inf if len(state.purchases) >= MAX_PURCHASES else basket_gaps(state)[1]
        return (state.last_ts - state.first_ts) / DAY

    def __init__(self) -> None:
        #: the budgets of the last config seen: (config, informative, uninformative)
        self._budgets: tuple[DropOffConfig, dict[str, float], dict[str, float]] | None = None
        #: channel -> (inputs, model) of the last model built: an event's learning and its
        #: scheduling ask for the same one
        self._models: dict[str, tuple[tuple[Any, ...], Renewal]] = {}
        #: (purchase window, fitted order-gap shape) of the last fit
        self._fit: tuple[tuple[Any, ...], tuple[float | None, int]] | None = None

    def _fitted_shape(self, state: CustomerState) -> tuple[float | None, int]:
        """The order process's fitted shape (:func:`fitted_shape`) and the order gaps it
        rests on; fitted once per purchase window."""
        key = (state.customer_id, state.n_purchases, state.gap_n, state.gap_mu)
        if self._fit is not None and self._fit[0] == key:
            return self._fit[1]
        gaps, days = basket_gaps(state)
        merged, log_total = merged_orders(state)
        out = (fitted_shape(gaps, days, log_total, merged, MIN_GAP_DAYS), gaps + merged)
        self._fit = (key, out)
        return out

    def budgets(self, state: CustomerState, cfg: DropOffConfig) -> dict[str, float]:
        """Budget per customer-day of each test; they add up to ``budget_per_1000_days``.

        Activity that is not at least ``INFORMATIVE_ACTIVITY`` x as frequent as
        purchases (visits glued to orders, or none) tells nothing the orders do
        not: its shares go to the purchase tests instead of being wasted. The
        dict returned is shared: read it, do not change it.
        """
        if self._budgets is None or self._budgets[0] is not cfg:
            self._budgets = (cfg, _budgets_of(cfg, informative=True),
                             _budgets_of(cfg, informative=False))
        informative = (state.visit_n >= 2 and state.gap_n >= 1
                       and state.gap_mu - state.visit_mu >= LOG_INFORMATIVE)
        return self._budgets[1] if informative else self._budgets[2]

    def model(self, state: CustomerState, channel: str, ctx: DetectionContext) -> Renewal:
        """The renewal model of one channel."""
        prior = ctx.population.rate_prior(channel)
        if channel == "purchase":  # the window changes only with an order
            key = (state.gap_n, state.gap_mu, state.gap_var, prior, state.n_purchases)
        else:
            key = (state.visit_n, state.visit_mu, state.visit_var, prior, 0)
        last = self._models.get(channel)
        if last is not None and last[0] == key:
            return last[1]
        counted = basket_gaps(state) if channel == "purchase" else None
        model = renewal(*key[:4], counted=counted)
        self._models[channel] = (key, model)
        return model

    def silence_model(self, state: CustomerState, channel: str,
                      ctx: DetectionContext) -> Renewal:
        """The model a channel's silence is judged by: for purchases, the fitted order
        process once there are enough gaps (:func:`silence_renewal`)."""
        model = self.model(state, channel, ctx)
        if channel != "purchase":
            return model
        shape_prior = ctx.population.shape_prior()
        key = (*self._models["purchase"][0], shape_prior)
        last = self._models.get("purchase_silence")
        if last is not None and last[0] == key:
            return last[1]
        gaps, days = basket_gaps(state)
        merged, log_total = merged_orders(state)
        out = silence_renewal(model, ctx.population.rate_prior(channel), gaps, days, log_total,
                              merged, MIN_GAP_DAYS, shape_prior, self._fitted_shape(state)[0])
        self._models["purchase_silence"] = (key, out)
        return out

    # -- hooks ----------------------------------------------------------------------------

    def on_event(self, state: CustomerState, event: Event, ctx: DetectionContext) -> Verdict | None:
        self.learn(state, ctx)
        if event.type != "purchase" or not state.is_open(self.kind):
            return None
        if state.episodes[self.kind].tag.endswith("silence"):
            return Verdict(self.kind, firing=False, events=[event.event_id])
        cfg = ctx.config.drop_off
        budgets = self.budgets(state, cfg)
        for i, channel in enumerate(CHANNELS):
            budget = budgets.get(f"{channel}_decline")
            ref = state.decline[2 * i + 1]
            if budget is None or ref <= 0.0:
                continue
            if state.decline[2 * i] >= cfg.resolve_fraction * cusum_threshold(budget, 1.0 / ref):
                return None
        return Verdict(self.kind, firing=False, events=[event.event_id])

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        if state.is_open(self.kind):
            return None
        tests = self._tests(state, now, ctx)
        firing = [t for t in tests if t.firing]
        if not firing:
            return None
        best = max(firing, key=lambda t: t.score - t.threshold)
        return Verdict(self.kind, firing=True, score=round(best.score, 3),
                       threshold=round(best.threshold, 3), tag=f"{best.channel}_{best.test}",
                       reasons=self._reasons(state, best, ctx))

    def score(self, state: CustomerState, now: float, ctx: DetectionContext) -> Score:
        tests = self._tests(state, now, ctx)
        if not tests:
            return Score(None, 0.0, "needs two purchases")
        best = max(tests, key=lambda t: t.score - t.threshold)
        return Score(best.score, best.threshold, f"{best.channel} {best.test}")

    def next_check(self, state: CustomerState, now: float, ctx: DetectionContext) -> float:
        return self._due(state, ctx, bound=False)

    def earliest_check(self, state: CustomerState, now: float, ctx: DetectionContext) -> float:
        """A lower bound of :meth:`next_check` without an inverse incomplete beta.

        A silence of ``BOUND_GAPS`` expected gaps has a rate-weighted survival of
        at least ``BOUND_MIN_P`` whatever the shape (0.25-4) and however certain
        the rate, so no silence threshold below that probability (the purchase
        threshold ``budget x expected gap``, the activity gate's ``e^-3``) is
        reached before it. Decline evidence and the floors are as in
        :meth:`next_check`. ``-inf`` where the bound does not hold (a threshold
        above ``BOUND_MIN_P``).
        """
        return self._due(state, ctx, bound=True)

    def _due(self, state: CustomerState, ctx: DetectionContext, bound: bool) -> float:
        """When a test could first fire: exactly, or with ``bound`` a cheap lower bound.

        Both take the same path, so the bound's floors and decline evidence are
        the exact check's; only the silence thresholds differ.
        """
        last = self._last(state, "purchase")
        if last is None or state.n_purchases < 2 or state.is_open(self.kind):
            return NEVER
        cfg = ctx.config.drop_off
        if bound and cfg.activity_gate_gaps < BOUND_MIN_GATE_GAPS:
            return -math.inf
        budgets = self.budgets(state, cfg)
        due = NEVER
        budget = budgets.get("purchase_silence")
        purchase_model: Renewal | None = None
        if budget is not None:
            model = purchase_model = self.silence_model(state, "purchase", ctx)
            if not bound:
                wait = model.silence_threshold_days(budget)
            elif budget * model.expected_gap > BOUND_MIN_P:
                return -math.inf
            else:
                wait = BOUND_GAPS * model.expected_gap
            wait = self._decline_wait(state, ctx, 0, budgets.get("purchase_decline"), wait)
            due = min(due, last + max(wait, cfg.min_silence_days) * DAY)
        visit = self._last(state, "activity")
        budget = budgets.get("activity_silence")
        if visit is not None and budget is not None:
            # the gate is computed only for customers whose activity is tested
            gate = NEVER if purchase_model is None else last + DAY * (
                BOUND_GAPS * purchase_model.expected_gap if bound
                else self._gate_days(purchase_model, cfg))
            wait = max(0.0, (gate - visit) / DAY)
            if not bound:  # the bound stops at the gate: no activity model needed
                model = self.model(state, "activity", ctx)
                wait = max(model.silence_threshold_days(budget), wait)
            wait = self._decline_wait(state, ctx, 1, budgets.get("activity_decline"), wait)
            due = min(due, visit + max(wait, cfg.min_silence_days) * DAY)
        return due

    def _decline_wait(self, state: CustomerState, ctx: DetectionContext, i: int,
                      budget: float | None, wait: float) -> float:
        """``wait`` (days), or sooner if channel ``i``'s decline evidence could reach its
        threshold sooner (``budget`` ``None``: the channel's decline is not tested)."""
        ref = state.decline[2 * i + 1]
        if not (ref > 0.0 and budget is not None):
            return wait
        model = self.model(state, CHANNELS[i], ctx)
        h = cusum_threshold(budget, 1.0 / ref)
        return min(wait, days_to_evidence(model.shape, ref, ctx.config.drop_off.decline_ratio,
                                          h - state.decline[2 * i]))

    # -- the tests ------------------------------------------------------------------------

    @staticmethod
    def _gate_days(model: Renewal, cfg: DropOffConfig) -> float:
        """The purchase silence after which activity silence may speak.

        As unlikely for this customer as ``activity_gate_gaps`` expected gaps are
        for a Poisson buyer (``e^-3``, about 5%): a bursty buyer's long gaps are
        common and open it later, a regular buyer's rare and open it sooner.
        """
        p = math.exp(-cfg.activity_gate_gaps)
        return model.silence_threshold_days(p / model.expected_gap)

    @staticmethod
    def _last(state: CustomerState, channel: str) -> float | None:
        last = state.last_purchase_ts if channel == "purchase" else state.last_visit_ts
        return None if last is None else silence_start(last)

    def _tests(self, state: CustomerState, now: float, ctx: DetectionContext) -> list[_Test]:
        if state.last_purchase_ts is None or state.n_purchases < 2:
            return []
        cfg = ctx.config.drop_off
        budgets = self.budgets(state, cfg)
        out = []
        gate_open = False
        for i, channel in enumerate(CHANNELS):
            last = self._last(state, channel)
            if last is None or f"{channel}_silence" not in budgets:
                continue
            silence = max(0.0, (now - last) / DAY)
            eligible = silence >= cfg.min_silence_days
            quiet = self.silence_model(state, channel, ctx)
            if channel == "activity":
                eligible = eligible and gate_open
            surprise = quiet.silence_surprise(silence)
            out.append(_Test(channel, "silence", surprise,
                             quiet.silence_threshold(budgets[f"{channel}_silence"]),
                             silence, quiet, eligible=eligible))
            model = self.model(state, channel, ctx)
            if channel == "purchase":  # as unlikely as the gate (see _gate_days)
                gate_open = surprise >= cfg.activity_gate_gaps / LN10
            ref = state.decline[2 * i + 1]
            if ref > 0.0 and f"{channel}_decline" in budgets:
                value = state.decline[2 * i] + in_gap_evidence(
                    model.shape, ref, cfg.decline_ratio, silence)
                h = cusum_threshold(budgets[f"{channel}_decline"], 1.0 / ref)
                out.append(_Test(channel, "decline", value / LN10, h / LN10, silence, model,
                                 ref, eligible))
        return out

    def _reasons(self, state: CustomerState, test: _Test, ctx: DetectionContext) -> list[Reason]:
        cfg = ctx.config.drop_off
        own = state.n_purchases >= cfg.min_purchases
        note = "" if own else " (mostly the population's rhythm: little history of their own)"
        usual = test.model.expected_gap
        what = _WORDS[test.channel]
        reasons = [Reason(
            feature=f"{test.channel}_silence_days", value=round(test.silence, 1),
            baseline=round(usual, 1),
            text=f"no {what} for {test.silence:.0f} days; usually every {usual:.1f} days{note}")]
        if test.test == "silence":
            p = 10.0 ** -test.score
            reasons.append(Reason(
                feature=f"{test.channel}_silence_surprise", value=round(test.score, 2),
                baseline=round(test.threshold, 2),
                text=f"an unchanged customer is this silent with probability {p:.1e} per "
                     f"usual gap"))
        else:
            rate = 1.0 / test.ref_rate
            recent = self._recent_gap(state, test.channel)
            reasons.append(Reason(
                feature=f"{test.channel}_decline_evidence", value=round(test.score, 2),
                baseline=round(test.threshold, 2),
                text=(f"{what} rhythm slowed: recent gaps about {recent:.0f} days against "
                      f"{rate:.1f} before (evidence {test.score:.1f} of "
                      f"{test.threshold:.1f} needed)")))
        return reasons

    @staticmethod
    def _recent_gap(state: CustomerState, channel: str) -> float:
        return state.last_gap_days if channel == "purchase" else state.act_gap_days
