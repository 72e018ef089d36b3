"""Detectors: each judges one kind of customer change against the customer's own baseline.

A detector is a small object with ``kind``, ``name``, ``version`` and two hooks,
``on_event`` (a new event for the customer) and ``on_sweep`` (event time has
moved on with no event: silence). Each returns a :class:`Verdict` or ``None``
(no opinion). The alert policy turns verdicts into alerts.
"""

from anomon.core.detectors.base import DetectionContext, Detector, Verdict

__all__ = ["DetectionContext", "Detector", "Verdict"]
