"""A standard scaler that passes the churn model's silence features through as they are.

Its own module (not the churn detector's) because it subclasses a River class:
the churn detector is compiled in ``ANOMON_COMPILE=1`` builds, and a compiled
class cannot derive from a class with a metaclass.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from river import preprocessing

SILENCE_FEATURES: tuple[str, ...] = (
    "silence_ratio", "silence_surprise", "visit_surprise", "visit_silence_ratio",
    "log_silence_days")
"""Learned as they are, not standardised: see
:func:`anomon.core.detectors.churn_risk.new_churn_model`."""
_SILENCE = frozenset(SILENCE_FEATURES)


class SilenceUnscaled(preprocessing.StandardScaler):
    """River's ``StandardScaler`` for every feature but the silence ones, passed as they are.

    One transformer rather than a union of two selections: it runs at every
    label learned and every silent customer scored.

    >>> scaler = SilenceUnscaled()
    >>> for v in (1.0, 3.0):
    ...     scaler.learn_one({"log_purchases": v, "silence_ratio": v})
    >>> scaler.transform_one({"log_purchases": 3.0, "silence_ratio": 3.0})
    {'log_purchases': 1.0, 'silence_ratio': 3.0}
    """

    def learn_one(self, x: dict[Hashable, Any]) -> None:
        super().learn_one({f: v for f, v in x.items() if f not in _SILENCE})

    def transform_one(self, x: dict[Hashable, Any]) -> dict[Hashable, Any]:
        means, variances = self.means, self.vars
        out: dict[Hashable, Any] = {}
        for f, v in x.items():
            if f in _SILENCE:
                out[f] = v
            else:
                var = variances[f]
                out[f] = (v - means[f]) / var**0.5 if var else 0.0
        return out
