"""Garbage-collector settings for the long-running commands (worker, replay).

Customer states are long-lived and an event's garbage is not. Python's defaults
(a young collection every 700 allocations, older ones scanning every live state)
spend much of a replay's time re-scanning states that will never be garbage.
Fewer young collections, and objects alive at startup frozen out of the
collector's way, keep the work proportional to the garbage.

>>> import gc
>>> before = gc.get_threshold()
>>> tune_collector(freeze=False)
>>> gc.get_threshold()[0] == YOUNG_THRESHOLD
True
>>> gc.set_threshold(*before)
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


def tune_collector(freeze: bool = True) -> None:
    """Raise the young-generation threshold; with ``freeze``, exempt everything alive now."""
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
    if freeze:
        gc.freeze()
