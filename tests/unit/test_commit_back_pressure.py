"""The loop waits for the committer only when commits fall behind, not at every commit.

At least once a commit holds a second of batches, and a busy loop makes a few
hundred small batches a second: the bound on batches in flight must hold
several commits, or the loop stalls at each one (seconds of latency at 70% of
the sustained rate on Apache Kafka, ``bench/RESULTS.md``).
"""

from __future__ import annotations

import asyncio

from aiokafka.structs import TopicPartition

from anomon.worker.batch import Batch
from anomon.worker.committer import MAX_IN_FLIGHT, Committer


class HeldCommits(Committer):
    """Commits nothing until the test lets it; counts the records committed."""

    def __init__(self, interval_s: float) -> None:
        super().__init__(None, "changelog", {}, interval_s=interval_s)
        self.go = asyncio.Event()
        self.committed_records = 0

    async def commit(self, batch: Batch) -> None:
        await self.go.wait()
        self.committed_records += batch.records


def _batch(offset: int) -> Batch:
    return Batch(offsets={TopicPartition("events", 0): offset}, records=1)


async def test_a_busy_second_of_small_batches_does_not_make_the_loop_wait() -> None:
    committer = HeldCommits(interval_s=1.0)
    await committer.start()
    for offset in range(1000):  # a second at 20,000 events/s in batches of 20
        committer.submit(_batch(offset))
    await asyncio.wait_for(committer.wait_room(), 0.05)
    committer.go.set()
    await asyncio.wait_for(committer.drain(), 2.0)
    assert committer.committed_records == 1000


async def test_the_loop_waits_while_commits_fall_behind_and_goes_on_when_they_catch_up() -> None:
    committer = HeldCommits(interval_s=0.0)
    await committer.start()
    for offset in range(MAX_IN_FLIGHT):
        committer.submit(_batch(offset))
    waiting = asyncio.create_task(committer.wait_room())
    await asyncio.sleep(0.1)
    assert not waiting.done()
    committer.go.set()
    await asyncio.wait_for(waiting, 0.5)
    await asyncio.wait_for(committer.drain(), 2.0)
    assert committer.committed_records == MAX_IN_FLIGHT
