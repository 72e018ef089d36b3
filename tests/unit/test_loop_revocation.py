"""The loop hands no batch over once a revocation began after its records were fetched.

Between ``getmany`` and handling, the loop gives the clients' tasks a few turns
(so the next fetch is in flight while it handles). A revocation may begin
meanwhile; it drains and commits what was handled, and the next assignment
starts every partition from the committed offsets. Records handled after that
would be handled twice, or by a worker that no longer owns them.

``getmany`` called as a rebalance starts waits for the new assignment and returns
records of it, read from the committed offsets: those the loop leaves unhandled
must be read again (a seek back), or the next batch's commit skips them.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from anomon.worker.loop import StreamLoop


class Committer:
    def __init__(self) -> None:
        self.failed: set[int] = set()
        self.submitted: list[Any] = []

    def submit(self, batch: Any) -> None:
        self.submitted.append(batch)

    async def drain(self) -> None:
        return None

    async def wait_room(self) -> None:
        return None


class Consumer:
    """Returns one record at once, as getmany does from its buffer."""

    def __init__(self) -> None:
        self.seeks: list[tuple[Any, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        return {("input", 0): ["record"]}

    def assignment(self) -> set[Any]:
        return {("input", 0), ("input", 1)}

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))


def _loop(committer: Committer, consumer: Consumer | None = None) -> StreamLoop:
    sweeper = SimpleNamespace(in_round=False, index=SimpleNamespace(stale=False))
    loop = StreamLoop(consumer=consumer or Consumer(),  # type: ignore[arg-type]
                      committer=committer,  # type: ignore[arg-type]
                      handler=None, eraser=None, sweeper=sweeper,  # type: ignore[arg-type]
                      stores={}, new_store=None, restore=None,  # type: ignore[arg-type]
                      stats=None, clock=None, input_topic="input",  # type: ignore[arg-type]
                      erasure_topic="erasures", sweep_interval_s=60.0)
    loop.handle = lambda fetched: ("batch", fetched)  # type: ignore[method-assign]
    loop._background = lambda flowing: None  # type: ignore[method-assign]
    return loop


async def test_records_fetched_are_handled_and_handed_over() -> None:
    committer = Committer()
    await _loop(committer)._once()
    assert committer.submitted == [("batch", {("input", 0): ["record"]})]


async def test_a_revocation_during_the_turns_leaves_the_records_unhandled() -> None:
    committer = Committer()
    loop = _loop(committer)

    async def revoke() -> None:
        await loop.on_partitions_revoked(set())

    revoking = asyncio.create_task(revoke())  # runs at the loop's first turn
    await loop._once()
    await revoking
    assert loop.rebalancing
    assert committer.submitted == []


class RebalancingConsumer(Consumer):
    """``getmany`` as a rebalance starts: it waits out the revocation and the new
    assignment, then returns records of the new assignment (its positions moved past
    them); partition 2 went to another worker meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: StreamLoop | None = None

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        assert self.loop is not None
        await self.loop.on_partitions_revoked(set())
        self.loop.rebalancing = False  # what on_partitions_assigned leaves
        return {("input", 0): [SimpleNamespace(offset=40), SimpleNamespace(offset=41)],
                ("input", 2): [SimpleNamespace(offset=7)]}


async def test_records_returned_across_a_whole_rebalance_are_read_again() -> None:
    committer, consumer = Committer(), RebalancingConsumer()
    loop = consumer.loop = _loop(committer, consumer)
    await loop._once()
    assert committer.submitted == []
    assert consumer.seeks == [(("input", 0), 40)]  # not partition 2: no longer ours


async def test_records_left_during_a_rebalance_are_not_sought() -> None:
    # the assignment to come starts every partition from the committed offsets
    consumer = Consumer()
    loop = _loop(Committer(), consumer)
    revoking = asyncio.create_task(loop.on_partitions_revoked(set()))
    await loop._once()
    await revoking
    assert loop.rebalancing and consumer.seeks == []
