"""One exponentially weighted mean and variance, used for every running baseline.

While fewer than ``1 / floor`` values were seen the weights are plain averages
(weight ``1 / n``); after that each new value weighs ``floor``, so the estimate
follows slow drift.

>>> n, mu, var = 0, 0.0, 0.0
>>> for x in (1.0, 2.0, 3.0):
...     n, mu, var = ew_update(n, mu, var, x, floor=0.1)
>>> n, round(mu, 6), round(var, 6)
(3, 2.0, 0.666667)
"""

from __future__ import annotations


def ew_update(n: int, mu: float, var: float, x: float, floor: float) -> tuple[int, float, float]:
    """Fold ``x`` into (count, mean, variance); returns the new triple."""
    n += 1
    alpha = max(1.0 / n, floor)
    delta = x - mu
    mu += alpha * delta
    var = (1.0 - alpha) * (var + alpha * delta * delta)
    return n, mu, var
