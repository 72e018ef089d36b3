"""Churn risk: P(no purchase within the horizon), learned online from late labels.

At each purchase, and every ``snapshot_every_days`` of silence, the customer's
features are snapshotted into their state (at most ``MAX_PENDING``). The label
of a snapshot is known only later: 0 when the customer buys again within
``horizon_days``, 1 when the horizon passes in silence. The model (River
``StandardScaler | LogisticRegression``, one per worker, shared by all
customers) learns each snapshot when its label resolves.

In the sweep the model scores the customer's features as of now (silence
included); once it has learned ``min_labels`` labels, a probability at or over
``threshold`` fires and one under ``resolve_threshold`` resolves. Reasons are the
features with the largest weight x standardised value for this customer.
"""

from __future__ import annotations

import math
from typing import Any

from river import compose, linear_model, optim, preprocessing

from anomon.alerts import Reason
from anomon.detection_config import ChurnRiskConfig
from anomon.detectors.base import DetectionContext, Verdict
from anomon.detectors.rhythm import rhythm_of, visit_rhythm_of
from anomon.events import Event
from anomon.features import (
    decayed_value,
    silence_days,
    tenure_days,
    window_count,
    window_sum,
)
from anomon.state import MAX_PENDING, CustomerState
from anomon.timeutil import DAY

FEATURE_WORDS = {
    "silence_ratio": "silence compared with their usual gap",
    "visit_silence_ratio": "days without a visit compared with their usual rhythm",
    "log_silence_days": "days since the last purchase",
    "purchases_30d": "purchases in the last 30 days",
    "purchases_90d": "purchases in the last 90 days",
    "log_value": "recent spend",
    "log_tenure_days": "time as a customer",
    "log_purchases": "lifetime purchases",
    "complaints_90d": "complaints in the last 90 days",
    "refund_ratio_90d": "refund share in the last 90 days",
    "detractor": "a detractor survey answer",
    "bad_payment_streak": "overdue or failed payments in a row",
}
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURE_WORDS)


def churn_features(state: CustomerState, now: float, ctx: DetectionContext) -> dict[str, float]:
    """The churn model's inputs for ``state`` as of ``now``."""
    rhythm = rhythm_of(state, ctx.population, ctx.config.drop_off.prior_weight)
    silence = silence_days(state, now)
    bought_90 = window_sum(state.purchases, now, 90.0)
    refunded_90 = window_sum(state.refunds, now, 90.0)
    detractor = state.nps is not None and state.nps <= 6 and (now - (state.nps_ts or 0)) < 90 * DAY
    visits = visit_rhythm_of(state)
    last_seen = max(state.last_visit_ts or 0.0, state.last_purchase_ts or 0.0)
    visit_silence = max(0.0, (now - last_seen) / DAY) if last_seen else silence
    visit_ratio = visit_silence / visits.mean_days if visits is not None else 0.0
    return {
        "silence_ratio": math.log1p(silence / rhythm.mean_days),
        "visit_silence_ratio": math.log1p(min(visit_ratio, 50.0)),
        "log_silence_days": math.log1p(silence),
        "purchases_30d": math.log1p(window_count(state.purchases, now, 30.0)),
        "purchases_90d": math.log1p(window_count(state.purchases, now, 90.0)),
        "log_value": math.log1p(decayed_value(state, now)),
        "log_tenure_days": math.log1p(tenure_days(state, now)),
        "log_purchases": math.log1p(state.n_purchases),
        "complaints_90d": float(window_count(state.complaints, now, 90.0)),
        "refund_ratio_90d": min(refunded_90 / bought_90, 2.0) if bought_90 > 0 else 0.0,
        "detractor": 1.0 if detractor else 0.0,
        "bad_payment_streak": float(min(state.pay_streak, 6)),
    }


def new_churn_model(learning_rate: float) -> compose.Pipeline:
    """Scaler + logistic regression, the default churn model."""
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=1e-4),
    )


class ChurnRiskDetector:
    """Online logistic regression on customer snapshots with delayed labels."""

    kind = "churn_risk"
    name = "churn-logreg"
    version = "1"

    def __init__(self, cfg: ChurnRiskConfig | None = None) -> None:
        cfg = cfg or ChurnRiskConfig()
        self.model = new_churn_model(cfg.learning_rate)
        self.labels = {0: 0, 1: 0}
        self.dropped_snapshots = 0
        self.last_p: float | None = None

    @property
    def n_labels(self) -> int:
        return self.labels[0] + self.labels[1]

    def on_event(self, state: CustomerState, event: Event, ctx: DetectionContext) -> Verdict | None:
        if event.type != "purchase":
            return None
        cfg = ctx.config.churn_risk
        now = event.epoch
        self._resolve_pending(state, now, bought=True, horizon=cfg.horizon_days * DAY)
        if now - state.snapshot_ts >= cfg.min_snapshot_gap_days * DAY or not state.pending:
            self._snapshot(state, now, ctx)
        episode = state.episodes.get(self.kind)
        if episode is not None and episode.open:
            p = self.probability(churn_features(state, now, ctx))
            if p < cfg.resolve_threshold:
                return Verdict(self.kind, firing=False, score=p, events=[event.event_id])
        return None

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        cfg = ctx.config.churn_risk
        self._resolve_pending(state, now, bought=False, horizon=cfg.horizon_days * DAY)
        if state.last_purchase_ts is None:
            return None
        if now - state.snapshot_ts >= cfg.snapshot_every_days * DAY:
            self._snapshot(state, now, ctx)
        if self.n_labels < cfg.min_labels or state.n_purchases < cfg.min_purchases:
            return None
        x = churn_features(state, now, ctx)
        p = self.probability(x)
        self.last_p = p
        episode = state.episodes.get(self.kind)
        if episode is not None and episode.open:
            return Verdict(self.kind, firing=False, score=p) if p < cfg.resolve_threshold else None
        if p < cfg.threshold:
            return None
        return Verdict(self.kind, firing=True, score=round(p, 4), threshold=cfg.threshold,
                       reasons=self.explain(x, p, cfg.horizon_days))

    def probability(self, x: dict[str, float]) -> float:
        """P(no purchase within the horizon)."""
        return float(self.model.predict_proba_one(x).get(True, 0.0))

    def explain(self, x: dict[str, float], p: float, horizon_days: float) -> list[Reason]:
        """Top features by weight x standardised value, in words."""
        scaler, logreg = self.model.steps.values()
        scaled = scaler.transform_one(x)
        contrib = {f: logreg.weights.get(f, 0.0) * v for f, v in scaled.items()}
        top = sorted(contrib, key=lambda f: contrib[f], reverse=True)[:3]
        reasons = [Reason(feature="churn_probability", value=round(p, 4), baseline=0.5,
                          text=f"{p:.0%} chance of no purchase within {horizon_days:.0f} days")]
        for f in top:
            if contrib[f] <= 0:
                break
            mean = scaler.means.get(f, 0.0)
            reasons.append(Reason(
                feature=f, value=round(x[f], 3), baseline=round(mean, 3),
                text=f"{FEATURE_WORDS.get(f, f)} unusual (weight x value {contrib[f]:+.2f})"))
        return reasons

    def _snapshot(self, state: CustomerState, now: float, ctx: DetectionContext) -> None:
        x = churn_features(state, now, ctx)
        state.pending.append([now, [round(x[f], 4) for f in FEATURE_NAMES]])
        state.snapshot_ts = now
        if len(state.pending) > MAX_PENDING:
            del state.pending[0]
            self.dropped_snapshots += 1

    def _resolve_pending(self, state: CustomerState, now: float, bought: bool,
                         horizon: float) -> None:
        if not state.pending:
            return
        keep = []
        for ts, values in state.pending:
            if now - ts > horizon:
                self._learn(dict(zip(FEATURE_NAMES, values, strict=True)), 1)
            elif bought and now > ts:
                self._learn(dict(zip(FEATURE_NAMES, values, strict=True)), 0)
            else:
                keep.append([ts, values])
        state.pending = keep

    def _learn(self, x: dict[str, float], label: int) -> None:
        self.model.learn_one(x, bool(label))
        self.labels[label] += 1

    def next_due(self, state: CustomerState, cfg: ChurnRiskConfig) -> float:
        """Event time at which this customer next needs the sweep."""
        due = state.snapshot_ts + cfg.snapshot_every_days * DAY
        if state.pending:
            due = min(due, state.pending[0][0] + cfg.horizon_days * DAY + 1.0)
        return due

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model, "labels": dict(self.labels),
                "dropped_snapshots": self.dropped_snapshots}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.model = data["model"]
        self.labels = {int(k): int(v) for k, v in data["labels"].items()}
        self.dropped_snapshots = int(data.get("dropped_snapshots", 0))
