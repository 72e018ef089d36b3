"""At least once, a commit may encode its states in slices while later batches are handled.

A state a later batch changes before it is encoded is written as it is then, and
written again by the next commit; a customer erased meanwhile gets no stale
state; and no state is written before the outputs of every batch handled so far
are acknowledged (a replayed event is a duplicate and makes no alert).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from anomon.core.state import CustomerState
from anomon.worker.batch import Batch
from anomon.worker.committer import AtLeastOnce
from anomon.worker.handler import Outgoing
from anomon.worker.store import MemoryBackend, PartitionStore


class SlowAcks:
    """Queues each record at once; acknowledges it when the test says so."""

    def __init__(self) -> None:
        self.pending: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: Any = None, partition: int | None = None) -> asyncio.Future[Any]:
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append(ack)
        return ack

    def acknowledge_all(self) -> None:
        for ack in self.pending:
            if not ack.done():
                ack.set_result(None)


def _store() -> PartitionStore:
    return PartitionStore(0, MemoryBackend(), on_unreadable=lambda cid, err: None)


def _committer(store: PartitionStore, slice_s: float) -> AtLeastOnce:
    return AtLeastOnce(None, None, "changelog", {0: store}, outputs=SlowAcks(),  # type: ignore[arg-type]
                       slice_s=slice_s)


async def test_a_state_changed_between_slices_is_written_as_it_is_then_and_again() -> None:
    store = _store()
    for i in range(200):
        store[f"c{i}"] = CustomerState.new(f"c{i}", now=float(i))
    committer = _committer(store, slice_s=1e-9)  # a turn after every few states
    batch = Batch(touched={0})
    erased: list[str] = []

    async def later_batch() -> None:  # the loop, handling records between slices
        await asyncio.sleep(0)
        written = batch.changes[0]
        assert 0 < len(written) < 200, "the commit did not yield between slices"
        victim = next(k for k in sorted(store.live) if k.encode() not in written)
        for key in sorted(store.live):
            if key != victim:
                state = store.get(key)
                assert state is not None
                state.last_ts += 1000.0
                store[key] = state
        store.pop(victim)  # erased before it was encoded
        erased.append(victim)

    changer = asyncio.create_task(later_batch())
    await committer._encode(batch)
    await changer

    changes = batch.changes[0]
    victim = erased[0]
    assert victim.encode() not in changes  # no stale state of an erased customer
    assert store.deleted == {victim}  # its tombstone goes with the next commit
    assert len(changes) == 199
    decoded = {k: CustomerState.from_bytes(v) for k, v in changes.items() if v is not None}
    later = {k for k, state in decoded.items() if state.last_ts >= 1000.0}
    assert 0 < len(later) < 199  # those encoded after the change carry it ...
    # ... and every state changed after the commit took it is dirty again: written next time
    assert store.dirty == {f"c{i}" for i in range(200)} - {victim}


async def test_in_one_go_nothing_runs_between_taking_and_encoding() -> None:
    store = _store()
    for i in range(200):
        store[f"c{i}"] = CustomerState.new(f"c{i}", now=float(i))
    committer = _committer(store, slice_s=0.0)
    batch = Batch(touched={0})
    encoding = committer._encode(batch)
    with pytest.raises(StopIteration):  # done in its first step: it never suspends
        encoding.send(None)
    assert len(batch.changes[0]) == 200 and not store.dirty


@pytest.mark.parametrize("slice_s, waits_for_later", [(0.002, True), (0.0, False)])
async def test_a_commit_waits_for_the_outputs_its_states_may_hold(
        slice_s: float, waits_for_later: bool) -> None:
    committer = _committer(_store(), slice_s=slice_s)
    outputs: SlowAcks = committer.outputs  # type: ignore[assignment]
    first = Batch(outputs=[Outgoing("alerts", b"k", b"1", None, 0)])
    later = Batch(outputs=[Outgoing("alerts", b"k", b"2", None, 0)])
    committer.submit(first)
    committer.submit(later)  # handled while the first's commit was encoding
    waiting = asyncio.create_task(committer._before_commit([first]))
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(outputs.pending) == 2
    outputs.pending[0].set_result(None)  # the first batch's alert only
    for _ in range(5):
        await asyncio.sleep(0)
    # sliced, the states may hold the later batch: its alert must be acknowledged first;
    # in one go they hold exactly the first batch
    assert waiting.done() is not waits_for_later
    outputs.acknowledge_all()
    await asyncio.wait_for(waiting, 2.0)
