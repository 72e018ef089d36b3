"""While records flow, the sweep takes at most ``background_share`` of the loop.

A sweep round judges the customers due since the last one in chunks between
batches. Under load, a chunk after every batch gave the sweep most of the loop
for a fraction of a second, and the records, arriving faster than they were then
handled, queued. Idle, there is nothing to hold it back for.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from anomon.worker import loop as loop_module
from anomon.worker.loop import StreamLoop

CHUNK_S = 0.004


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


class Sweeper:
    """A round that never ends; each chunk takes ``CHUNK_S`` of the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.in_round = True
        self.index = SimpleNamespace(stale=False)
        self.chunks = 0

    def rebuilding(self) -> bool:
        return False

    def step(self) -> str:
        self.clock.now += CHUNK_S
        self.chunks += 1
        return "chunk"


def _loop(share: float, monkeypatch: pytest.MonkeyPatch) -> tuple[StreamLoop, Sweeper, Clock]:
    clock = Clock()
    monkeypatch.setattr(loop_module, "time", clock)
    sweeper = Sweeper(clock)
    committer = SimpleNamespace(submit=lambda batch: None)
    loop = StreamLoop(consumer=None, committer=committer,  # type: ignore[arg-type]
                      handler=None, eraser=None, sweeper=sweeper,  # type: ignore[arg-type]
                      stores={}, new_store=None, restore=None,  # type: ignore[arg-type]
                      stats=None, clock=None, input_topic="input",  # type: ignore[arg-type]
                      erasure_topic="erasures", sweep_interval_s=60.0,
                      background_share=share)
    loop.joined = True
    return loop, sweeper, clock


def _run(loop: StreamLoop, clock: Clock, flowing: bool, batch_s: float, seconds: float) -> None:
    """Alternate batches of ``batch_s`` and the loop's background turn for ``seconds``."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now += batch_s
        loop._background(flowing=flowing)


@pytest.mark.parametrize("share", [0.25, 0.5])
def test_under_load_the_sweep_takes_its_share(share: float,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    loop, sweeper, clock = _loop(share, monkeypatch)
    _run(loop, clock, flowing=True, batch_s=0.001, seconds=1.0)
    swept = sweeper.chunks * CHUNK_S
    assert swept / 1.0 == pytest.approx(share, abs=0.03)


def test_a_chunk_after_every_batch_with_a_share_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    loop, sweeper, clock = _loop(1.0, monkeypatch)
    _run(loop, clock, flowing=True, batch_s=0.001, seconds=1.0)
    assert sweeper.chunks * CHUNK_S == pytest.approx(0.8, abs=0.01)  # 4 ms of every 5


def test_idle_the_sweep_is_not_held_back(monkeypatch: pytest.MonkeyPatch) -> None:
    loop, sweeper, clock = _loop(0.25, monkeypatch)
    _run(loop, clock, flowing=True, batch_s=0.001, seconds=0.1)
    held = loop.background_at
    assert held > clock.now
    loop._background(flowing=False)
    assert sweeper.chunks * CHUNK_S > 0.025 and loop.background_at > held


async def test_the_fetch_waits_no_longer_than_the_next_chunk(
        monkeypatch: pytest.MonkeyPatch) -> None:
    loop, sweeper, clock = _loop(0.25, monkeypatch)
    waits: list[int] = []

    class Consumer:
        async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
            waits.append(timeout_ms)
            return {}

    loop.consumer = Consumer()
    loop.committer = SimpleNamespace(  # type: ignore[assignment]
        failed=set(), submit=lambda batch: None, wait_room=_nothing)
    loop.background_at = clock.now + 0.012
    await loop._once()
    assert waits == [12]
    sweeper.in_round = False
    await loop._once()
    assert waits[-1] == loop_module.POLL_MS


async def _nothing() -> None:
    return None
