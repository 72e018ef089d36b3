"""Detector and alert-policy parameters, loaded from ``models/detectors.toml``.

Every parameter has a default here; the TOML file overrides them. Units are in
the names (``_days``, ``_s``).

>>> cfg = DetectionConfig()
>>> round(cfg.drop_off.budget("purchase_silence"), 8)  # 0.6 of 0.6 per 1000 customer-days
0.00036
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DropOffConfig(_Section):
    """Silence longer than the customer's rhythm allows, or a fall in frequency.

    Calibrated to a false-alarm budget per customer-day, split (a union bound)
    over four tests: purchase silence, activity silence, purchase decline and
    activity decline. See :mod:`anomon.core.detectors.drop_off`.
    """

    budget_per_1000_days: float = Field(
        0.6, gt=0.0, le=100.0,
        description="False alarms per 1000 customer-days all drop-off tests together may raise.")
    purchase_silence_share: float = Field(0.6, ge=0.0, le=1.0)
    activity_silence_share: float = Field(0.2, ge=0.0, le=1.0)
    purchase_decline_share: float = Field(0.2, ge=0.0, le=1.0)
    activity_decline_share: float = Field(0.0, ge=0.0, le=1.0)
    activity_gate_gaps: float = Field(
        3.0, ge=0.0, description="Activity silence speaks only once the purchase silence is "
        "as unlikely for the customer as this many expected gaps for a Poisson buyer "
        "(probability e^-gaps): whole breaks (holidays) are common and not renewal gaps.")
    decline_min_gaps: int = Field(
        6, ge=1, description="The decline test starts once the customer has this many gaps: "
        "before, their rate is too uncertain to fall from (the silence test speaks alone).")
    decline_min_days: float = Field(
        60.0, ge=0.0, description="... and once its gaps span this many days: a burst of "
        "early orders is no rate to fall from (the rate of a bursty buyer's first fortnight "
        "is one they never keep, and their later pace would read as a lasting decline).")
    decline_ratio: float = Field(
        0.25, gt=0.0, lt=1.0, description="The decline the CUSUM looks for: this x the old rate.")
    resolve_fraction: float = Field(
        0.5, gt=0.0, lt=1.0, description="A decline resolves at a purchase once every CUSUM is "
        "below this fraction of its threshold.")
    min_silence_days: float = Field(7.0, ge=0.0, description="No alarm on a shorter silence.")
    min_purchases: int = Field(4, description="Below this the reasons say the baseline is "
                               "mostly the population's.")
    prior_weight: float = Field(4.0, description="Pseudo-gaps of the population rhythm (the "
                                "rhythm churn and segment features use).")

    @model_validator(mode="after")
    def _shares_add_up(self) -> DropOffConfig:
        total = (self.purchase_silence_share + self.activity_silence_share
                 + self.purchase_decline_share + self.activity_decline_share)
        if total > 1.0 + 1e-9:
            raise ValueError(f"drop_off shares add up to {total:g} > 1 (a union bound)")
        return self

    def budget(self, test: str) -> float:
        """The budget per customer-day of one test (``purchase_silence``...)."""
        share: float = getattr(self, f"{test}_share")
        return share * self.budget_per_1000_days / 1000.0


class ComplaintSpikeConfig(_Section):
    """Several complaints in a few days, high severity, a detractor survey."""

    window_days: float = 14.0
    min_complaints: int = 3
    min_complaints_severe: int = 2
    severe_level: int = 4
    alpha: float = 0.001
    prior_rate_per_year: float = 1.0
    quiet_days_to_resolve: float = 21.0


class RefundAbuseConfig(_Section):
    """Refunds out of proportion to purchases."""

    window_days: float = 45.0
    short_window_days: float = Field(21.0, description="Also judged over this many days: a "
                                     "frequent buyer's recent refunds are not diluted by the "
                                     "orders from before they began.")
    short_window_extra_surprise: float = Field(1.0, description="The short window's score must "
                                               "clear the threshold by this much (1: ten times "
                                               "less likely).")
    min_refunds: int = 3
    min_ratio: float = 0.5
    baseline_multiple: float = 3.0
    min_surprise: float = Field(
        3.0, description="The refunds' count must be at least this surprising (-log10 of the "
        "chance) for the customer's usual share of orders refunded: a habitual returner's "
        "third refund in a month is not abuse.")
    prior_orders: float = Field(
        10.0, gt=0.0, description="Pseudo-orders of the population's share of orders refunded "
        "that a customer's own share is shrunk toward (a short history is judged mostly by "
        "the population's).")
    resolve_ratio: float = 0.2


class PaymentArrearsConfig(_Section):
    """Money owed: failed or overdue payments not yet settled."""

    min_owed: int = Field(2, ge=1, description="This many unsettled amounts...")
    span_days: float = Field(75.0, description="...that fell due within this many days.")
    max_age_days: float = Field(30.0, description="One amount unsettled this long is arrears.")
    severe_days_overdue: int = Field(45, description="One payment this late is arrears.")


class SpendAnomalyConfig(_Section):
    """An order far outside the customer's usual size."""

    z_threshold: float = 4.0
    min_ratio: float = Field(4.0, description="Order / typical order at least this.")
    strong_ratio: float = Field(
        6.0, description="An order this many times typical needs only z >= z_threshold - 1."
    )
    min_purchases: int = 3
    prior_weight: float = Field(
        3.0, description="Pseudo-orders of the population's spread within one customer's orders "
        "that a customer's own spread is shrunk toward.")
    min_sd: float = 0.3
    resolve_after_days: float = 30.0
    hst_quantile: float = 0.995
    hst_trees: int = 10
    hst_height: int = 6
    hst_window: int = 250


class ChurnRiskConfig(_Section):
    """P(no purchase within the horizon), from an online logistic regression."""

    horizon_days: float = 90.0
    threshold: float = 0.5
    resolve_threshold: float = 0.3
    min_labels: int = 300
    snapshot_every_days: float = Field(30.0, description="Snapshot a silent customer this often.")
    min_snapshot_gap_days: float = Field(7.0, description="At most one purchase snapshot per...")
    min_purchases: int = 3
    check_every_days: float = 7.0
    learning_rate: float = Field(0.003, description="SGD step of the logistic regression.")
    reservoir_size: int = Field(
        2000, ge=1, description="Labels kept as a uniform sample of history; each new label "
        "trains the model on one drawn from it (rehearsal), so the model is not biased toward "
        "the labels that resolve first.")
    rehearse_every: int = Field(
        4, ge=1, description="One training step per this many labels (all enter the reservoir).")
    drift_delta: float = Field(0.002, description="ADWIN confidence on the model's log-loss.")


class PolicyConfig(_Section):
    """Alert policy: one alert per change, a cooldown per fingerprint."""

    cooldown_days: float = 14.0


class SegmentConfig(_Section):
    """Value tiers from the population's decayed-value quantiles, and lifecycle stages."""

    high_quantile: float = 0.9
    mid_quantile: float = 0.5
    new_days: float = 30.0
    loyal_purchases: int = 10
    loyal_days: float = 180.0
    churned_days: float = 365.0


class DetectionConfig(_Section):
    """All detector, policy and segment parameters."""

    drop_off: DropOffConfig = DropOffConfig()
    complaint_spike: ComplaintSpikeConfig = ComplaintSpikeConfig()
    refund_abuse: RefundAbuseConfig = RefundAbuseConfig()
    payment_arrears: PaymentArrearsConfig = PaymentArrearsConfig()
    spend_anomaly: SpendAnomalyConfig = SpendAnomalyConfig()
    churn_risk: ChurnRiskConfig = ChurnRiskConfig()
    policy: PolicyConfig = PolicyConfig()
    segments: SegmentConfig = SegmentConfig()

    @classmethod
    def load(cls, path: Path | None) -> DetectionConfig:
        """Read a TOML file; a missing path gives the defaults."""
        if path is None or not path.exists():
            return cls()
        with path.open("rb") as fh:
            return cls.model_validate(tomllib.load(fh))
