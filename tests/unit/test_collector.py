"""The collector's periodic freeze and its pause timer, on the real collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from anomon.collector import PauseTimer, PeriodicFreeze


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _collected_by_gc(obj: object) -> bool:
    """Whether ``obj`` is in a generation the collector scans (not frozen)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_a_freeze_takes_what_is_alive_out_of_the_collectors_scans() -> None:
    clock = _Clock()
    freezer = PeriodicFreeze(1.0, clock=clock)
    first = [[1.0, 2.0]]
    assert _collected_by_gc(first)
    assert freezer.maybe_freeze()
    assert not _collected_by_gc(first) and gc.get_freeze_count() > 0

    second = [[3.0, 4.0]]  # made within the interval: scanned until the next freeze
    clock.now += 0.5
    assert not freezer.maybe_freeze()
    assert _collected_by_gc(second)
    clock.now += 0.5
    assert freezer.maybe_freeze()
    assert not _collected_by_gc(second)
    assert freezer.freezes == 2


@pytest.mark.usefixtures("unfrozen")
def test_an_interval_of_zero_never_freezes() -> None:
    freezer = PeriodicFreeze(0.0)
    kept = [[1.0]]
    assert not freezer.maybe_freeze()
    assert _collected_by_gc(kept) and gc.get_freeze_count() == 0


def test_the_pause_timer_observes_each_collection_by_generation_until_removed() -> None:
    seen: list[tuple[int, float]] = []
    timer = PauseTimer(lambda generation, seconds: seen.append((generation, seconds)))
    timer.install()
    try:
        gc.collect(1)
    finally:
        timer.remove()
    assert (1, seen[-1][1]) == seen[-1] and seen[-1][1] >= 0.0
    count = len(seen)
    gc.collect(0)
    assert len(seen) == count and timer not in gc.callbacks
