"""Garbage-collector settings for the long-running commands (worker, replay).

Customer states are long-lived and an event's garbage is not. Python's defaults
(a young collection every 700 allocations, older ones scanning every live state)
spend much of a replay's time re-scanning states that will never be garbage.
Fewer young collections, and objects alive at startup frozen out of the
collector's way, keep the work proportional to the garbage.

A worker keeps changing states: every order adds a few small lists that outlive
the young generation, and a first-touched customer brings dozens. At 30,000
customers they piled up into the older generations, whose collections paused the
worker for up to 0.3 s (see ``docs/hot-path.md``). :class:`PeriodicFreeze` moves
what is alive into the permanent generation every second instead, so a
collection only ever scans the objects of the last second. What it gives up: a
reference cycle that becomes garbage after it was frozen is never collected.
The engine makes none, and a worker under load collected the same cycles with
and without freezing (those of its start), so the cost is measured as nothing;
``anomon_gc_frozen_objects`` shows it if that changes.

>>> import gc
>>> before = gc.get_threshold()
>>> tune_collector(freeze=False)
>>> gc.get_threshold()[0] == YOUNG_THRESHOLD
True
>>> gc.set_threshold(*before)
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


def tune_collector(freeze: bool = True) -> None:
    """Raise the young-generation threshold; with ``freeze``, exempt everything alive now."""
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
    if freeze:
        gc.freeze()


class PeriodicFreeze:
    """Freeze everything alive (``gc.freeze``) at most once per ``interval_s``.

    Parameters
    ----------
    interval_s
        Least seconds between two freezes; 0 turns freezing off.
    clock
        Monotonic seconds (``time.monotonic``).

    >>> freezer = PeriodicFreeze(1.0, clock=lambda: 10.0)
    >>> freezer.maybe_freeze(), freezer.maybe_freeze()
    (True, False)
    >>> PeriodicFreeze(0.0).maybe_freeze()
    False
    """

    def __init__(self, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.next_at = 0.0
        self.freezes = 0

    def maybe_freeze(self) -> bool:
        """Freeze if the interval has passed since the last freeze; whether it froze."""
        if self.interval_s <= 0:
            return False
        now = self.clock()
        if now < self.next_at:
            return False
        gc.freeze()  # O(1): the generations' lists are spliced onto the permanent one
        self.next_at = now + self.interval_s
        self.freezes += 1
        return True


class PauseTimer:
    """Times each collection from the collector's own callbacks, by generation.

    ``observe(generation, seconds)`` is called at the end of each; install with
    :meth:`install`, remove with :meth:`remove`.

    >>> seen = []
    >>> timer = PauseTimer(lambda g, s: seen.append(g)).install()
    >>> _ = gc.collect(0)
    >>> timer.remove()
    >>> 0 in seen
    True
    """

    def __init__(self, observe: Callable[[int, float], None]) -> None:
        self.observe = observe
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.observe(int(info["generation"]), time.perf_counter() - self.started)

    def install(self) -> PauseTimer:
        gc.callbacks.append(self)
        return self

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
