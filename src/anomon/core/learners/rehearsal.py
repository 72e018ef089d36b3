"""Rehearsal: learn from a uniform sample of history rather than the newest example.

Delayed labels resolve out of step: a churn snapshot's "bought again" is known
at the next order, its "gone" only when the horizon passes, so the newest
labels are skewed toward one class and toward recent times. An SGD model fed
them in arrival order chases that skew. ``Rehearsal`` keeps a reservoir
(Vitter's algorithm R) of every example seen and, for every ``every``-th new
example, makes the wrapped model learn one drawn uniformly from the reservoir.

Parameters
----------
model
    A River classifier (e.g. ``StandardScaler | LogisticRegression``).
size
    Reservoir capacity: the memory of the sample of history.
every
    Train on one draw per this many new examples (a larger step makes up for
    fewer steps; the cost of learning falls by this factor).
seed
    Random seed of the draws.

>>> from river import compose, linear_model, optim, preprocessing
>>> inner = compose.Pipeline(preprocessing.StandardScaler(),
...                          linear_model.LogisticRegression(optimizer=optim.SGD(0.05)))
>>> model = Rehearsal(inner, size=100, seed=1)
>>> for i in range(1000):
...     x = {"silence": float(i % 10)}
...     model.learn_one(x, i % 10 >= 5)
>>> model.predict_proba_one({"silence": 9.0})[True] > 0.8 > model.predict_proba_one(
...     {"silence": 0.0})[True]
True
>>> len(model.reservoir), model.seen
(100, 1000)
"""

from __future__ import annotations

import random
from typing import Any

from river import base


class Rehearsal(base.Classifier):
    """Train the wrapped classifier on uniform draws from a reservoir of past examples."""

    def __init__(self, model: Any, size: int = 2000, every: int = 1, seed: int = 0) -> None:
        self.model = model
        self.size = size
        self.every = every
        self.seed = seed
        self.reservoir: list[tuple[dict[Any, Any], Any]] = []
        self.seen = 0
        self._rng = random.Random(seed)

    def learn_one(self, x: dict[Any, Any], y: Any, **kwargs: Any) -> None:
        self.seen += 1
        if len(self.reservoir) < self.size:
            self.reservoir.append((x, y))
        else:
            slot = self._rng.randrange(self.seen)
            if slot < self.size:
                self.reservoir[slot] = (x, y)
        if self.seen % self.every:
            return
        drawn_x, drawn_y = self.reservoir[self._rng.randrange(len(self.reservoir))]
        self.model.learn_one(drawn_x, drawn_y)

    def predict_proba_one(self, x: dict[Any, Any], **kwargs: Any) -> dict[Any, float]:
        return self.model.predict_proba_one(x)

    def forget(self) -> None:
        """Empty the reservoir (after a drift): the model then learns from what comes next."""
        self.reservoir.clear()
        self.seen = 0

    @property
    def _multiclass(self) -> bool:
        return False
