"""Churn risk: P(no purchase within the horizon), learned online from late labels.

At each purchase, and every ``snapshot_every_days`` of silence, the customer's
features are snapshotted into their state (at most ``MAX_PENDING``). The label
of a snapshot is known only later: 0 when the customer buys again within
``horizon_days``, 1 when the horizon passes in silence. The model (River
``StandardScaler | LogisticRegression``, the silence features unscaled; one per
worker, shared by all customers) learns when a label resolves. Labels resolve
out of step (a return is known at once, a loss only after the horizon), so a
resolved label joins a uniform reservoir of past labels and the model learns
one label drawn from it: rehearsal that keeps the model from chasing whichever
class resolved last.

Before learning, the model predicts each new label; the log-loss of those
predictions feeds a rolling log-loss, a rolling ROC AUC and an ADWIN drift
detector. A drift is counted and logged, and empties the reservoir so the model
learns from what comes after it.

In the sweep the model scores the customer's features as of now (silence
included); once it has learned ``min_labels`` labels, a probability at or over
``threshold`` fires and one under ``resolve_threshold`` resolves. Reasons are the
features with the largest weight x standardised value for this customer.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

from river import compose, drift, linear_model, metrics, optim, utils

from anomon.core.alerts import Reason
from anomon.core.detection_config import ChurnRiskConfig
from anomon.core.detectors.base import DetectionContext, Score, Verdict, surprise
from anomon.core.detectors.rhythm import rhythm_of, visit_rhythm_of
from anomon.core.events import Event
from anomon.core.features import (
    activity_silence_days,
    decayed_value,
    silence_days,
    tenure_days,
    window_count,
    window_sum,
    window_totals,
)
from anomon.core.learners.rehearsal import Rehearsal
from anomon.core.learners.silence_unscaled import SilenceUnscaled
from anomon.core.state import MAX_PENDING, CustomerState
from anomon.core.timeutil import DAY

FEATURE_WORDS = {
    "silence_ratio": "silence compared with their usual gap",
    "silence_surprise": "how unlikely this silence is under their own rhythm",
    "visit_surprise": "how unlikely their absence from the site or app is",
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
HEALTH_WINDOW = 500
HEALTH_SAMPLE = 8  # one label in this many is predicted before learning, for health and drift
MAX_SURPRISE = 12.0  # -log10 of a silence probability, capped
log = logging.getLogger(__name__)


def churn_surprise(p_churn: float) -> float:
    """Surprise of a churn probability: ``-log10 P(they buy again within the horizon)``.

    >>> round(churn_surprise(0.5), 3)
    0.301
    """
    return surprise(1.0 - p_churn)


def churn_features(state: CustomerState, now: float, ctx: DetectionContext) -> dict[str, float]:
    """The churn model's inputs for ``state`` as of ``now``.

    At an order (no silence of either kind) the silence features are 0 without
    fitting a rhythm: the common case of a snapshot costs no gamma function.
    """
    silence = silence_days(state, now)
    bought_30, bought_n90, bought_90 = window_totals(state.purchases, now, 30.0, 90.0)
    refunded_90 = window_sum(state.refunds, now, 90.0)
    detractor = state.nps is not None and state.nps <= 6 and (now - (state.nps_ts or 0)) < 90 * DAY
    visit_silence = activity_silence_days(state, now)
    silence_ratio = silence_surprise = visit_ratio = visit_surprise = 0.0
    if silence > 0.0:
        rhythm = rhythm_of(state, ctx.population, ctx.config.drop_off.prior_weight)
        silence_ratio = silence / rhythm.mean_days
        silence_surprise = -math.log10(max(rhythm.silence_p(silence), 1e-300))
    if visit_silence > 0.0 and state.visit_n > state.gap_n + 2:  # activity beyond the orders
        visits = visit_rhythm_of(state)
        if visits is not None:
            visit_ratio = visit_silence / visits.mean_days
            visit_surprise = -math.log10(max(visits.silence_p(visit_silence), 1e-300))
    return {
        "silence_ratio": math.log1p(silence_ratio),
        "silence_surprise": min(MAX_SURPRISE, silence_surprise),
        "visit_surprise": min(MAX_SURPRISE, visit_surprise),
        "visit_silence_ratio": math.log1p(min(visit_ratio, 50.0)),
        "log_silence_days": math.log1p(silence),
        "purchases_30d": math.log1p(bought_30),
        "purchases_90d": math.log1p(bought_n90),
        "log_value": math.log1p(decayed_value(state, now)),
        "log_tenure_days": math.log1p(tenure_days(state, now)),
        "log_purchases": math.log1p(state.n_purchases),
        "complaints_90d": float(window_count(state.complaints, now, 90.0)),
        "refund_ratio_90d": min(refunded_90 / bought_90, 2.0) if bought_90 > 0 else 0.0,
        "detractor": 1.0 if detractor else 0.0,
        "bad_payment_streak": float(min(state.pay_streak, 6)),
    }


def _rounded(x: dict[str, float]) -> list[float]:
    """The features in ``FEATURE_NAMES`` order, to 4 decimals (a snapshot's stored form).

    ``round(v * 1e4) / 1e4`` rather than ``round(v, 4)``, which goes through a
    decimal string and cost a microsecond per value.

    >>> _rounded(dict.fromkeys(FEATURE_NAMES, 2 / 3))[:2]
    [0.6667, 0.6667]
    """
    try:
        return [round(x[f] * 1e4) / 1e4 for f in FEATURE_NAMES]
    except (ValueError, OverflowError):  # a NaN or an infinity: kept as it is
        return [round(x[f], 4) for f in FEATURE_NAMES]


def new_churn_model(learning_rate: float, reservoir_size: int = 2000,
                    rehearse_every: int = 1) -> Rehearsal:
    """Scaler + logistic regression, trained by rehearsal from a reservoir of labels.

    The silence features are not standardised. Most snapshots are taken at an
    order, where they are all 0, so their spread is tiny: a customer silent for
    one usual gap stood 10-40 standard deviations out, and the first loss
    labels sent whole populations of fast buyers to a probability of 1. They
    are on bounded, scale-free scales already (logs of ratios and days, a
    capped surprise).
    """
    return Rehearsal(
        compose.Pipeline(
            SilenceUnscaled(),
            linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=1e-4),
        ),
        size=reservoir_size,
        every=rehearse_every,
    )


class ChurnRiskDetector:
    """Online logistic regression on customer snapshots with delayed labels."""

    kind = "churn_risk"
    event_types = frozenset({"purchase"})
    judges: Literal["before", "after"] = "after"
    name = "churn-logreg"
    version = "4"

    def __init__(self, cfg: ChurnRiskConfig | None = None) -> None:
        cfg = cfg or ChurnRiskConfig()
        self.model = new_churn_model(cfg.learning_rate, cfg.reservoir_size, cfg.rehearse_every)
        self.labels = {0: 0, 1: 0}
        self.dropped_snapshots = 0
        self.rolling_log_loss = utils.Rolling(metrics.LogLoss, window_size=HEALTH_WINDOW)
        self.rolling_auc = metrics.RollingROCAUC(window_size=HEALTH_WINDOW)
        self.drift = drift.ADWIN(delta=cfg.drift_delta)
        self.drifts = 0
        self.label_log: list[tuple[float, float, dict[str, float], int]] | None = None
        """When a list: every learned label as ``(snapshot_ts, resolved_ts, x, y)`` (evaluation)."""

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
        if state.is_open(self.kind):
            p = self.probability(churn_features(state, now, ctx))
            if p < cfg.resolve_threshold:
                return Verdict(self.kind, firing=False, score=churn_surprise(p),
                               events=[event.event_id])
        return None

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        cfg = ctx.config.churn_risk
        self._resolve_pending(state, now, bought=False, horizon=cfg.horizon_days * DAY)
        if state.last_purchase_ts is None:
            return None
        x = None
        if now - state.snapshot_ts >= cfg.snapshot_every_days * DAY:
            x = self._snapshot(state, now, ctx)
        if self.n_labels < cfg.min_labels or state.n_purchases < cfg.min_purchases:
            return None
        if x is None:
            x = churn_features(state, now, ctx)
        p = self.probability(x)
        if state.is_open(self.kind):
            if p < cfg.resolve_threshold:
                return Verdict(self.kind, firing=False, score=churn_surprise(p))
            return None
        if p < cfg.threshold:
            return None
        return Verdict(self.kind, firing=True, score=round(churn_surprise(p), 4),
                       threshold=round(churn_surprise(cfg.threshold), 4),
                       reasons=self.explain(x, p, cfg.horizon_days))

    def probability_at(self, state: CustomerState, now: float, ctx: DetectionContext) -> float:
        """P(no purchase within the horizon) for this customer as of ``now``, silence included."""
        return self.probability(churn_features(state, now, ctx))

    def score(self, state: CustomerState, now: float, ctx: DetectionContext) -> Score:
        cfg = ctx.config.churn_risk
        threshold = churn_surprise(cfg.threshold)
        if self.n_labels < cfg.min_labels or state.n_purchases < cfg.min_purchases:
            return Score(None, threshold, f"model learning ({self.n_labels} labels)")
        return Score(churn_surprise(self.probability_at(state, now, ctx)), threshold)

    def next_check(self, state: CustomerState, now: float, ctx: DetectionContext) -> float:
        cfg = ctx.config.churn_risk
        due = self.next_due(state, cfg)
        if state.is_open(self.kind):
            due = min(due, now + DAY)
        elif (state.last_purchase_ts is not None and self.n_labels >= cfg.min_labels
                and state.n_purchases >= cfg.min_purchases):
            mean_gap = rhythm_of(state, ctx.population, ctx.config.drop_off.prior_weight).mean_days
            start = max(now, state.last_purchase_ts + mean_gap * DAY)
            due = min(due, start + cfg.check_every_days * DAY)
        return due

    def probability(self, x: dict[str, float]) -> float:
        """P(no purchase within the horizon)."""
        return float(self.model.predict_proba_one(x).get(True, 0.0))

    def explain(self, x: dict[str, float], p: float, horizon_days: float) -> list[Reason]:
        """Top features by weight x value (standardised, but for silence), in words."""
        scaler, logreg = self.model.model.steps.values()
        means = scaler.means
        scaled = scaler.transform_one(x)
        contrib = {f: logreg.weights.get(f, 0.0) * v for f, v in scaled.items()}
        top = sorted(contrib, key=lambda f: contrib[f], reverse=True)[:3]
        reasons = [Reason(feature="churn_probability", value=round(p, 4), baseline=0.5,
                          text=f"{p:.0%} chance of no purchase within {horizon_days:.0f} days")]
        for f in top:
            if contrib[f] <= 0:
                break
            reasons.append(Reason(  # silence features' baseline: 0, at an order
                feature=f, value=round(x[f], 3), baseline=round(means.get(f, 0.0), 3),
                text=f"{FEATURE_WORDS.get(f, f)} unusual (weight x value {contrib[f]:+.2f})"))
        return reasons

    def _snapshot(self, state: CustomerState, now: float,
                  ctx: DetectionContext) -> dict[str, float]:
        """Keep the customer's features as of ``now`` for a later label; return them."""
        x = churn_features(state, now, ctx)
        state.pending.append([now, _rounded(x)])
        state.snapshot_ts = now
        if len(state.pending) > MAX_PENDING:
            del state.pending[0]
            self.dropped_snapshots += 1
        return x

    def _resolve_pending(self, state: CustomerState, now: float, bought: bool,
                         horizon: float) -> None:
        if not state.pending:
            return
        keep = []
        for ts, values in state.pending:
            if len(values) != len(FEATURE_NAMES):
                self.dropped_snapshots += 1  # taken by an older feature set
                continue
            if now - ts > horizon:
                self._learn(dict(zip(FEATURE_NAMES, values, strict=True)), 1, ts, ts + horizon)
            elif bought and now > ts:
                self._learn(dict(zip(FEATURE_NAMES, values, strict=True)), 0, ts, now)
            else:
                keep.append([ts, values])
        state.pending = keep

    def _learn(self, x: dict[str, float], label: int, snapshot_ts: float,
               resolved_ts: float) -> None:
        self.labels[label] += 1
        if self.label_log is not None:
            self.label_log.append((snapshot_ts, resolved_ts, x, label))
        if self.n_labels % HEALTH_SAMPLE == 0:
            self._watch(x, label)
        self.model.learn_one(x, bool(label))

    def _watch(self, x: dict[str, float], label: int) -> None:
        """Prequential health: predict each label before learning it.

        Labels resolve in runs of one class (a sweep resolves many silent ones at
        once), so per-label losses are not independent: ADWIN watches the rolling
        ROC AUC, one value per ``HEALTH_WINDOW`` sampled labels, instead. One label
        in ``HEALTH_SAMPLE`` is watched: a sample is as good an estimate, and cheaper.
        """
        p = self.probability(x)
        self.rolling_log_loss.update(bool(label), {True: p, False: 1.0 - p})
        self.rolling_auc.update(bool(label), {True: p, False: 1.0 - p})
        if self.n_labels % (HEALTH_WINDOW * HEALTH_SAMPLE):
            return
        self.drift.update(float(self.rolling_auc.get()))
        if self.drift.drift_detected:
            self.drifts += 1
            self.model.forget()
            log.warning("churn model drift: rolling ROC AUC now %.3f; learning afresh from new "
                        "labels (drift %d, %d labels so far)", self.rolling_auc.get(),
                        self.drifts, self.n_labels)

    def health(self) -> dict[str, float]:
        """Model health for metrics: labels, rolling log-loss and ROC AUC, drifts."""
        return {
            "labels_bought_again": float(self.labels[0]),
            "labels_silent": float(self.labels[1]),
            "rolling_log_loss": float(self.rolling_log_loss.get()),  # type: ignore[operator]
            "rolling_roc_auc": float(self.rolling_auc.get()),
            "drifts": float(self.drifts),
            "dropped_snapshots": float(self.dropped_snapshots),
            "reservoir": float(len(self.model.reservoir)),
        }

    def next_due(self, state: CustomerState, cfg: ChurnRiskConfig) -> float:
        """Event time at which this customer next needs the sweep."""
        due = state.snapshot_ts + cfg.snapshot_every_days * DAY
        if state.pending:
            due = min(due, state.pending[0][0] + cfg.horizon_days * DAY + 1.0)
        return due

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model, "labels": dict(self.labels),
                "dropped_snapshots": self.dropped_snapshots,
                "rolling_log_loss": self.rolling_log_loss, "rolling_auc": self.rolling_auc,
                "drift": self.drift, "drifts": self.drifts}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.model = data["model"]
        self.labels = {int(k): int(v) for k, v in data["labels"].items()}
        self.dropped_snapshots = int(data.get("dropped_snapshots", 0))
        self.rolling_log_loss = data.get("rolling_log_loss", self.rolling_log_loss)
        self.rolling_auc = data.get("rolling_auc", self.rolling_auc)
        self.drift = data.get("drift", self.drift)
        self.drifts = int(data.get("drifts", 0))
