"""Drift in a model's late labels: has the share of customers who go silent changed?

The churn model learns from labels that resolve late (bought again, or silent
past the horizon). A shift in the share of "silent" labels means the population
the model learned from has changed: a manager's churn indicator, and a reason to
watch the model. :class:`LabelDrift` runs River's ADWIN over the labels and
counts the changes it detects (``anomon_model_drift_total``).

Labels reach it as counts since the last call; within one call they are spread
evenly, so a batch never looks like a change by itself.

>>> d = LabelDrift()
>>> d.update(silent=0, bought_again=600), d.update(silent=5, bought_again=15)
(0, 0)
>>> d.update(silent=400, bought_again=100) > 0
True
>>> spread(2, 6)
[0, 0, 1, 0, 0, 1]
"""

from __future__ import annotations

from river import drift


def spread(ones: int, total: int) -> list[int]:
    """``total`` labels of which ``ones`` are 1, the ones spaced evenly."""
    if total <= 0:
        return []
    return [int((i + 1) * ones // total > i * ones // total) for i in range(total)]


class LabelDrift:
    """Changes in the rate of label 1 ("silent"), detected by ADWIN."""

    def __init__(self, delta: float = 0.002) -> None:
        self.detector = drift.ADWIN(delta=delta)
        self.changes = 0

    def update(self, silent: int, bought_again: int) -> int:
        """Feed new labels; returns how many changes they revealed."""
        found = 0
        for value in spread(silent, silent + bought_again):
            self.detector.update(value)
            if self.detector.drift_detected:
                found += 1
        self.changes += found
        return found
