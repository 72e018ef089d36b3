"""At least once: the outputs of successive batches reach the producer in their order.

A producer's ``send`` can wait before it queues a record (for a topic's metadata,
or for a partition's full batch to drain: aiokafka's accumulator). Each batch's
outputs are sent by a task of their own; unchained, a later batch's dead letter
overtook an earlier one waiting there, and a key's outputs left out of order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from anomon.worker.batch import Batch
from anomon.worker.committer import AtLeastOnce
from anomon.worker.handler import Outgoing


class WaitingProducer:
    """Queues records as aiokafka's producer does; a large one first waits for room."""

    def __init__(self) -> None:
        self.queued: list[bytes] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: Any = None, partition: int | None = None) -> asyncio.Future[Any]:
        if len(value) > 100:
            await asyncio.sleep(0.01)  # the partition's current batch is full: wait for it
        self.queued.append(value)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _batch(*values: bytes) -> Batch:
    return Batch(outputs=[Outgoing("dlq", b"poison", v, None, 0) for v in values])


async def test_a_later_batch_does_not_overtake_a_waiting_send() -> None:
    producer = WaitingProducer()
    committer = AtLeastOnce(None, producer, "changelog", {})  # type: ignore[arg-type]
    first, second, third = _batch(b"x" * 200, b"a"), _batch(b"b"), _batch(b"y" * 200, b"c")
    for batch in (first, second, third):
        committer.submit(batch)
    await committer._before_commit([first, second, third])
    assert producer.queued == [b"x" * 200, b"a", b"b", b"y" * 200, b"c"]


async def test_a_send_cancelled_before_it_started_does_not_hold_up_the_next() -> None:
    producer = WaitingProducer()
    committer = AtLeastOnce(None, producer, "changelog", {})  # type: ignore[arg-type]
    first, second = _batch(b"a"), _batch(b"b")
    committer.submit(first)
    committer._outputs[id(first)].cancel()  # before the task took its first step
    committer.submit(second)
    await asyncio.wait_for(committer._outputs[id(second)], 2.0)
    assert producer.queued == [b"b"]
