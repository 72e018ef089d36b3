"""Detector and alert-policy parameters, loaded from ``models/detectors.toml``.

Every parameter has a default here; the TOML file overrides them. Units are in
the names (``_days``, ``_s``).

>>> cfg = DetectionConfig()
>>> cfg.drop_off.alpha
0.002
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DropOffConfig(_Section):
    """Silence longer than the customer's rhythm allows, or a fall in frequency."""

    alpha: float = Field(
        0.002, description="Fire when P(an active customer is this silent) < alpha."
    )
    min_silence_days: float = 14.0
    min_gap_ratio: float = Field(3.0, description="Silence must also exceed this x the mean gap.")
    min_purchases: int = Field(4, description="Below this the segment rhythm is used.")
    min_joint_gap_ratio: float = Field(
        2.0, description="Purchases and visits silent: purchase silence at least this x mean gap."
    )
    quiet_alpha: float = Field(
        5e-5, description="Fire when purchases and visits together are this unlikely."
    )
    min_visit_gap_ratio: float = Field(
        4.5, description="...and interaction silence at least this x the mean visit gap."
    )
    prior_weight: float = Field(4.0, description="Pseudo-gaps of the population rhythm.")
    decline_alpha: float = Field(
        0.002, description="Fire when the last gap plus the silence, as two gaps, is this unlikely."
    )


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
    min_refunds: int = 3
    min_ratio: float = 0.5
    baseline_multiple: float = 3.0
    resolve_ratio: float = 0.2


class PaymentArrearsConfig(_Section):
    """Overdue or failed payments, repeated."""

    min_streak: int = 2
    severe_days_overdue: int = 45


class SpendAnomalyConfig(_Section):
    """An order far outside the customer's usual size."""

    z_threshold: float = 4.0
    min_ratio: float = Field(4.0, description="Order / typical order at least this.")
    strong_ratio: float = Field(
        6.0, description="An order this many times typical needs only z >= z_threshold - 1."
    )
    min_purchases: int = 3
    prior_weight: float = 3.0
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
