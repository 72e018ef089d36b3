"""At least once: outputs leave on a producer of their own, never behind a changelog write.

aiokafka's producer keeps one request in flight per broker. On one producer, a
batch's alerts queued behind the previous commit's changelog write (up to a
megabyte, acknowledged by every replica) and waited for it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from anomon.worker.batch import Batch
from anomon.worker.committer import AtLeastOnce
from anomon.worker.handler import Outgoing


class Acknowledging:
    """Acknowledges every record at once."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: Any = None, partition: int | None = None) -> asyncio.Future[Any]:
        self.sent.append(value)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Builder(list[bytes]):
    """A record batch that takes every record."""

    def append(self, key: bytes, value: bytes | None, timestamp: None) -> bool:  # type: ignore[override]
        return True


class Stalled(Acknowledging):
    """A changelog write that is never acknowledged."""

    def create_batch(self) -> Builder:
        return Builder()

    async def send_batch(self, builder: Any, topic: str,
                         partition: int) -> asyncio.Future[Any]:
        self.sent.append(topic.encode())
        return asyncio.get_running_loop().create_future()


def _batch(alert: bytes) -> Batch:
    return Batch(outputs=[Outgoing("alerts", b"customer", alert, None, 0)])


async def test_alerts_are_acknowledged_while_a_changelog_write_is_stalled() -> None:
    changelog, outputs = Stalled(), Acknowledging()
    committer = AtLeastOnce(None, changelog, "changelog", {}, outputs=outputs)
    await committer.start()
    first = _batch(b"first")
    first.changes[0] = {b"customer": b"state"}
    committer.submit(first)
    for _ in range(50):  # the commit reaches the changelog write, which never returns
        await asyncio.sleep(0)
    assert changelog.sent == [b"changelog"]
    second = _batch(b"second")
    committer.submit(second)
    await asyncio.wait_for(committer._outputs[id(second)], 2.0)
    assert outputs.sent == [b"first", b"second"]
    assert committer._task is not None
    committer._task.cancel()


async def test_one_producer_serves_both_when_no_other_is_given() -> None:
    producer = Acknowledging()
    committer = AtLeastOnce(None, producer, "changelog", {})
    batch = _batch(b"alert")
    committer.submit(batch)
    await asyncio.wait_for(committer._before_commit([batch]), 2.0)
    assert producer.sent == [b"alert"]
