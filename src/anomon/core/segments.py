"""Value tier and lifecycle stage: who the customer is decides severity and routing.

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


def value_tier(state: CustomerState, now: float, population: PopulationBaseline) -> str:
    """``high`` (top decile of decayed spend), ``mid`` (above median) or ``low``."""
    value = decayed_value(state, now)
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
