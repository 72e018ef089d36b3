"""Value tier and lifecycle stage: who the customer is decides severity and routing.

One way everywhere (firing alert, resolved alert, profile, the customers gauge):

* the **value tier** compares the customer's decayed spend *as of their last
  purchase* with the population's cut points, which are measured the same way
  (at each purchase). It changes only when they buy: a silent customer keeps the
  tier they had, so a top customer who drifts away is still a top customer when
  the drop-off alert fires, and when the profile is read.
* the **lifecycle stage** is judged at the moment asked about (an alert's event
  time, the profile's "as of"): it is what the silence says.

>>> from anomon.core.state import CustomerState
>>> s = CustomerState.new("c1", now=0.0)
>>> lifecycle_stage(s, now=0.0, cfg=SegmentConfig(), mean_gap=30.0)
'new'
"""

from __future__ import annotations

from anomon.core.detection_config import SegmentConfig
from anomon.core.features import decayed_value, silence_days, tenure_days
from anomon.core.population import PopulationBaseline
from anomon.core.state import CustomerState

TIERS = ("high", "mid", "low")
STAGES = ("new", "active", "loyal", "at_risk", "lapsed", "churned")


def tier_value(state: CustomerState) -> float:
    """The value a tier is judged on: decayed spend as of the last purchase (0 before one)."""
    if state.last_purchase_ts is None:
        return 0.0
    return decayed_value(state, state.last_purchase_ts)


def value_tier(state: CustomerState, now: float, population: PopulationBaseline) -> str:
    """``high`` (top decile of decayed spend), ``mid`` (above median) or ``low``.

    ``now`` is not used: the tier is the customer's as of their last purchase
    (see the module docstring); it stays in the signature the engine calls.
    """
    value = tier_value(state)
    mid, high = population.value_cuts()
    if value >= high:
        return "high"
    if value >= mid:
        return "mid"
    return "low"


def lifecycle_stage(
    state: CustomerState, now: float, cfg: SegmentConfig, mean_gap: float
) -> str:
    """new, active, loyal, at_risk, lapsed or churned, from tenure and silence."""
    silence = silence_days(state, now) if state.last_purchase_ts is not None else tenure_days(
        state, now
    )
    if silence >= cfg.churned_days:
        return "churned"
    if state.n_purchases >= 2 and silence > 4 * mean_gap:
        return "lapsed"
    if state.n_purchases >= 2 and silence > 2 * mean_gap:
        return "at_risk"
    if tenure_days(state, now) < cfg.new_days or state.n_purchases < 2:
        return "new"
    if state.n_purchases >= cfg.loyal_purchases and tenure_days(state, now) >= cfg.loyal_days:
        return "loyal"
    return "active"
