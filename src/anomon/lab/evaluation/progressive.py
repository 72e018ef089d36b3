"""Delayed progressive validation of the churn model on the labels it learned.

River's :func:`river.evaluate.progressive_val_score` replays the snapshots in
event time: a fresh model scores each snapshot when it is taken and learns its
label only when the label resolved (the next purchase, or the horizon passing
in silence), as in production. The result is an honest online ROC AUC.

>>> from anomon.core.detectors.churn_risk import FEATURE_NAMES
>>> quiet = dict.fromkeys(FEATURE_NAMES, 0.0)
>>> log = [(float(t), float(t) + 5.0, {**quiet, "complaints_90d": float(t % 7)}, int(t % 7 > 3))
...        for t in range(400)]
>>> delayed_progressive_auc(log, learning_rate=0.05, reservoir_size=200) > 0.9
True
"""

from __future__ import annotations

from typing import Any

from river import evaluate, metrics

from anomon.core.detectors.churn_risk import new_churn_model

LabelRecord = tuple[float, float, dict[str, float], int]


def delayed_progressive_auc(log: list[LabelRecord], learning_rate: float,
                            reservoir_size: int = 2000, rehearse_every: int = 1) -> float | None:
    """ROC AUC of a fresh churn model, labels revealed when they resolved; ``None`` if empty."""
    if not log or len({y for *_, y in log}) < 2:
        return None
    ordered = sorted(log, key=lambda rec: rec[0])
    when = {id(x): (ts, resolved) for ts, resolved, x, _ in ordered}
    dataset: list[tuple[dict[Any, Any], bool]] = [(x, bool(y)) for _, _, x, y in ordered]
    metric = evaluate.progressive_val_score(
        dataset=dataset,
        model=new_churn_model(learning_rate, reservoir_size, rehearse_every),
        metric=metrics.ROCAUC(n_thresholds=50),
        moment=lambda x: when[id(x)][0],
        delay=lambda x, y: when[id(x)][1] - when[id(x)][0],
    )
    return float(metric.get())
