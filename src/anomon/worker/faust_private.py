"""Every use of Faust's private API, in one place, for the Faust version it was written for.

Each function says why the public API does not do. Importing this module with
another Faust version fails at once with a one-line error, so an upgrade starts
here: re-read the Faust source these rely on, then raise :data:`WRITTEN_FOR`.

* :func:`partition_context`: write a table key to a chosen changelog partition
  outside an agent (the sweep, erasure); Faust picks the partition from the
  current event, a private context variable.
* :func:`flush_buffer_before_commit`: exactly once, send Faust's buffered
  changelog writes before each transaction commit (robinhood/faust#340).
* :func:`committed_offsets` and :func:`exclusive_commit`: read the committed
  input offsets and take a turn in Faust's one-committer-at-a-time protocol for
  the sweep's own transaction commits.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib.metadata import version
from typing import Any

import faust
from faust.events import Event as FaustEvent
from faust.streams import _current_event
from faust.types import TP
from faust.types.tuples import Message

WRITTEN_FOR = "0.15.3"

_installed = version("faust-streaming")
if _installed != WRITTEN_FOR:  # pragma: no cover - depends on the installed Faust
    raise ImportError(f"anomon.worker.faust_private was written for faust-streaming "
                      f"{WRITTEN_FOR}, found {_installed}: re-check it, then raise WRITTEN_FOR")


@contextmanager
def partition_context(app: faust.App, topic: str, partition: int) -> Iterator[None]:
    """Table writes inside this block go to changelog ``partition`` (as if from ``topic``)."""
    message = Message(topic=topic, partition=partition, offset=-1, timestamp=time.time(),
                      timestamp_type=0, headers=None, key=None, value=None, checksum=None)
    event = FaustEvent(app, None, None, None, message)
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def flush_buffer_before_commit(app: faust.App) -> None:
    """Make the transaction manager flush the producer's buffer before each commit (once)."""
    manager: Any = app.consumer.transactions
    if getattr(manager, "_anomon_flushes_first", False):
        return
    commit: Callable[..., Awaitable[Any]] = manager.commit
    buffer = app.producer.buffer

    async def flushed_commit(offsets: Any, start_new_transaction: bool = True) -> bool:
        await buffer.flush()
        return bool(await commit(offsets, start_new_transaction=start_new_transaction))

    manager.commit = flushed_commit
    manager._anomon_flushes_first = True


def committed_offsets(app: faust.App) -> dict[TP, int]:
    """The input offsets Faust last committed, by topic partition (empty before a commit)."""
    return dict(getattr(app.consumer, "_committed_offset", {}) or {})


@asynccontextmanager
async def exclusive_commit(app: faust.App) -> AsyncIterator[None]:
    """Hold Faust's commit turn: no other commit runs inside this block."""
    consumer: Any = app.consumer
    await consumer.commit()  # records handled so far, with their outputs
    await consumer.maybe_wait_for_commit_to_finish()
    consumer._commit_fut = asyncio.Future()
    try:
        yield
    finally:
        fut, consumer._commit_fut = consumer._commit_fut, None
        if fut is not None and not fut.done():
            fut.set_result(None)
