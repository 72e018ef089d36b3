"""Publishing batches: outputs, then the states that made them, then the input offsets.

The loop enqueues each :class:`~anomon.worker.batch.Batch` without waiting
(:meth:`Committer.submit`) and goes on with the next ``getmany``; the
committer works through the queue in order, so fetching and processing
overlap with publishing and committing. Commits are at least
``interval_s`` apart (``ANOMON_COMMIT_INTERVAL_MS``); whatever queued up
meanwhile is merged and committed as one, and the states those batches changed
are encoded then, once each (a customer changed in several of those batches is
encoded and written once). So a slow commit makes commits larger rather than
the loop slower, and a busy worker sends the broker a few large requests a
second rather than one per batch. ``drain`` commits at once and waits until every batch
enqueued so far is committed (on revocation, before a sweep of the same
partitions would matter, and at shutdown). At least once, the encoding is cut
into slices (``slice_s``) between which the loop handles records: a second's
changed states take tens of milliseconds to encode.

:class:`AtLeastOnce`: a batch's alerts, dead letters and late records are sent
as soon as it is enqueued, on a producer of their own (a producer keeps one
request in flight per broker: outputs never wait behind a changelog write);
once the broker acknowledged all of them, the changed states go to the
changelog; once those are acknowledged, the input offsets are committed.
Outputs are acknowledged before the state that made them: a replayed event is
recognised as a duplicate and makes no alert, so an alert lost after its state
was written would never come back. A send that fails (the broker restarting) is
sent again until it is acknowledged; the in-memory states are the truth
meanwhile. A crash re-reads the records after the last commit: identical alerts
may be sent again (same alert ids).

:class:`ExactlyOnce`: one Kafka transaction per input partition and batch,
holding the batch's outputs of that partition, its changelog writes and its
input offsets (``send_offsets_to_transaction``). Each input partition has a
transactional producer of its own, with the stable id
``<app_id>-<input topic>-<partition>``: the worker that takes a partition over
initialises that id first, which fences the previous owner (alive or a zombie)
and aborts its open transaction before the changelog is restored. A failed
transaction is aborted and its partition reported in :attr:`failed`: the loop
throws that partition's state away and restores it from the changelog, as if
newly assigned (what the aborted transaction did in memory is not kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from anomon.kafka.logs import kv
from anomon.worker import metrics
from anomon.worker.batch import Batch, Changes
from anomon.worker.handler import Outgoing
from anomon.worker.store import PartitionStore

log = logging.getLogger("anomon.worker.committer")

MAX_IN_FLIGHT = 4096
"""Batches enqueued and not yet committed before the loop waits. A busy loop makes a few
hundred small batches a second and a commit takes a second's worth at least once: the bound
holds several commits (a batch is its offsets and outputs, the states stay in the stores)."""
RETRY_S = 0.5
ROOM_CHECK_S = 0.05  # a loop waiting for room looks at the committer's health this often
SLICE_CHECK_EVERY = 16  # states encoded between two looks at the clock

ProducerFactory = Callable[[str | None], AIOKafkaProducer]
Record = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]] | None, int | None]


def output_records(outputs: Iterable[Outgoing]) -> list[Record]:
    return [(o.topic, o.key, o.value, o.headers, None) for o in outputs]


async def send_until_acknowledged(producer: AIOKafkaProducer, records: list[Record],
                                  closing: asyncio.Event, after: asyncio.Event | None = None,
                                  queued: asyncio.Event | None = None) -> list[Any]:
    """Send ``records``; whatever fails is sent again until all are acknowledged.

    Chained sends keep their order: with ``after``, nothing is handed to the
    producer before that event is set, and ``queued`` is set once every record
    was handed to it. A ``send`` can wait (for metadata, or for a partition's
    full batch to drain), and an unchained later send would overtake it
    meanwhile. A send that ends without queueing everything (failed, or
    cancelled, even before its first step) must set ``queued`` too: the caller
    does, from the task's done-callback.
    """
    if after is not None:
        await after.wait()
    results: list[Any] = [None] * len(records)
    todo = list(range(len(records)))
    attempt = 0
    while todo:
        futures = []
        for i in todo:
            topic, key, value, headers, partition = records[i]
            try:
                futures.append(await producer.send(topic, value=value, key=key,
                                                   headers=headers, partition=partition))
            except KafkaError as err:  # not even queued
                failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                failed.set_exception(err)
                futures.append(failed)
        if queued is not None:
            queued.set()
        done = await asyncio.gather(*futures, return_exceptions=True)
        retry = []
        for i, outcome in zip(todo, done, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                retry.append(i)
            else:
                results[i] = outcome
        if retry:
            attempt += 1
            if closing.is_set():
                raise ConnectionError(f"{len(retry)} records not acknowledged at shutdown")
            if attempt == 1 or attempt % 20 == 0:
                first = next(o for o in done if isinstance(o, BaseException))
                log.warning("sends failed, sending again %s", kv(
                    records=len(retry), attempt=attempt, error=repr(first)[:200]))
            await asyncio.sleep(RETRY_S)
        todo = retry
    return results


Sent = list[tuple[int, int, "asyncio.Future[Any]"]]  # (partition, records, delivery)


async def send_changelog(producer: AIOKafkaProducer, topic: str,
                         changes: dict[int, Changes]) -> Sent:
    """Queue ``changes`` as record batches built here, one partition at a time.

    Building the batches directly (``create_batch``/``send_batch``) costs a fraction
    of one ``send`` per record; the partition is known, no partitioner is needed.
    """
    sent: Sent = []
    for partition, ch in changes.items():
        builder = producer.create_batch()
        count = 0
        for key, value in ch.items():
            if builder.append(key=key, value=value, timestamp=None) is None:
                sent.append((partition, count, await producer.send_batch(
                    builder, topic, partition=partition)))
                builder = producer.create_batch()
                count = 0
                if builder.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a state of {len(value or b'')} bytes fits no batch")
            count += 1
        if count:
            sent.append((partition, count, await producer.send_batch(
                builder, topic, partition=partition)))
    return sent


async def changelog_ends(sent: Sent) -> dict[int, int]:
    """Wait for the batches of :func:`send_changelog`; partition -> offset after the last."""
    ends: dict[int, int] = {}
    for partition, count, future in sent:
        meta = await future
        ends[partition] = max(ends.get(partition, 0), int(meta.offset) + count)
    return ends


async def write_changelog(producer: AIOKafkaProducer, topic: str, changes: dict[int, Changes],
                          closing: asyncio.Event) -> dict[int, int]:
    """:func:`send_changelog` until acknowledged (a partition that failed is sent again)."""
    todo = {p: ch for p, ch in changes.items() if ch}
    ends: dict[int, int] = {}
    attempt = 0
    while todo:
        failed: dict[int, Changes] = {}
        try:
            sent = await send_changelog(producer, topic, todo)
        except KafkaError as err:
            sent, failed, error = [], todo, err
        for partition, count, future in sent:
            try:
                meta = await future
            except KafkaError as err:
                failed[partition] = todo[partition]
                error = err
                continue
            ends[partition] = max(ends.get(partition, 0), int(meta.offset) + count)
        if failed:
            attempt += 1
            if closing.is_set():
                raise ConnectionError("changelog writes not acknowledged at shutdown")
            if attempt == 1 or attempt % 20 == 0:
                log.warning("changelog writes failed, sending again %s", kv(
                    partitions=sorted(failed), attempt=attempt, error=repr(error)[:200]))
            await asyncio.sleep(RETRY_S)
        todo = failed
    return ends


class Committer:
    """The queue of batches and the task that works through it (see the module docstring)."""

    def __init__(self, consumer: AIOKafkaConsumer, changelog_topic: str,
                 stores: dict[int, PartitionStore], interval_s: float = 0.0,
                 cache_limit: int = 0) -> None:
        self.consumer = consumer
        self.changelog_topic = changelog_topic
        self.stores = stores
        #: least time from the start of one commit to the start of the next
        self.interval_s = interval_s
        #: most states kept decoded over all stores (0: no bound), enforced after each commit
        self.cache_limit = cache_limit
        #: longest stretch of encoding before a pause as long for the loop (0: a commit
        #: encodes in one go; at least once only, see :meth:`_encode`)
        self.slice_s = 0.0
        self._hurry = asyncio.Event()
        self._last_commit = 0.0
        self.queue: asyncio.Queue[Batch] = asyncio.Queue()
        self.closing = asyncio.Event()
        #: partitions whose state must be thrown away and restored (exactly once)
        self.failed: set[int] = set()
        #: offsets committed so far (lag when the loop has not handled a record yet)
        self.committed: dict[TopicPartition, int] = {}
        self._pending = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    @property
    def in_flight(self) -> int:
        """Batches enqueued and not yet committed."""
        return self._pending

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="anomon-committer")

    def submit(self, batch: Batch) -> None:
        """Enqueue ``batch`` (no await: call it right after the batch is built)."""
        if batch.empty():
            return
        self._pending += 1
        self._idle.clear()
        if self._pending >= MAX_IN_FLIGHT:
            self._room.clear()
        self._enqueued(batch)
        self.queue.put_nowait(batch)

    def _enqueued(self, batch: Batch) -> None:
        """Hook: at-least-once starts the outputs' sends here."""

    async def wait_room(self) -> None:
        """Wait while too many batches are in flight (back pressure on the loop)."""
        while self._pending >= MAX_IN_FLIGHT and not self.closing.is_set():
            self._check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), ROOM_CHECK_S)

    async def drain(self) -> None:
        """Commit now; wait until every batch enqueued so far is committed (or given up)."""
        self._check()
        if not self._idle.is_set():
            self._hurry.set()
        await self._idle.wait()

    def _check(self) -> None:
        if self._task is not None and self._task.done() and self.error is None:
            self.error = self._task.exception() or RuntimeError("committer stopped")
        if self.error is not None:
            raise RuntimeError("the committer failed") from self.error

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batches = [await self.queue.get()]
            wait = self._last_commit + self.interval_s - loop.time()
            if wait > 0 and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), wait)
            self._hurry.clear()
            self._last_commit = loop.time()
            while not self.queue.empty():  # all that queued up meanwhile, in one commit
                batches.append(self.queue.get_nowait())
            try:
                batch = batches[0]
                for later in batches[1:]:
                    batch.absorb(later)
                if batch.partitions() & self.failed:
                    batch = batch.without(self.failed)
                # in one go (no await since the queue was emptied): the states of
                # exactly the batches taken, as the loop enqueues each batch once
                # handled; in slices: those states or later ones (see _encode)
                await self._encode(batch)
                await self._before_commit(batches)
                await self.commit(batch)
                metrics.COMMIT_SECONDS.observe(loop.time() - self._last_commit)
                metrics.STATE_WRITES.inc(sum(len(c) for c in batch.changes.values()))
                self._shrink()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.error = err
                log.exception("committer failed %s", kv(error=repr(err)[:300]))
                raise
            finally:
                self._pending -= len(batches)
                if self._pending < MAX_IN_FLIGHT:
                    self._room.set()
                if self._pending == 0:
                    self._idle.set()

    def _shrink(self) -> None:
        """Bound the decoded states once the commit's changes are persisted."""
        if self.cache_limit <= 0 or not self.stores:
            return
        per_store = -(-self.cache_limit // len(self.stores))
        for store in list(self.stores.values()):
            store.shrink(per_store)

    async def _encode(self, batch: Batch) -> None:
        """The changed states of the partitions ``batch`` touched, encoded into it.

        With ``slice_s`` 0, in one go: no await, so exactly the states of the
        batches taken (exactly once needs that). Otherwise it pauses for
        ``slice_s`` after every ``slice_s`` of encoding. A pause, rather than a
        bare turn of the event loop, lets the loop handle whole batches: with a
        turn only, every step of every task came with a slice of encoding,
        batches shrank and the worker spent more CPU per event
        (``bench/latency_settings.json``).

        A state that a batch handled during a pause changes before it is encoded
        is written as it is then (and again by the next commit, being dirty
        again), so the changelog may run ahead of the committed offsets, as a
        crash between a changelog write and its offset commit leaves it anyway. The
        records read again are duplicates of what the state holds and make no
        alert, so the outputs of every batch handled so far must be acknowledged
        before these states are written: :class:`AtLeastOnce` waits for them all.
        """
        work: list[tuple[PartitionStore, Changes, set[str]]] = []
        for p in sorted(batch.touched):
            store = self.stores.get(p)
            if store is None:
                continue
            changed, deleted = store.take_dirty()
            if not changed and not deleted:
                continue
            changes = batch.changes.setdefault(p, {})
            for key in deleted:
                changes[key.encode()] = None
            work.append((store, changes, changed))
        batch.touched = set()
        clock = time.perf_counter
        deadline = clock() + self.slice_s
        pausing = self.slice_s > 0
        n = 0
        for store, changes, changed in work:
            live = store.live
            for key in changed:
                state = live.get(key)
                if state is not None:  # else erased since: its tombstone goes next time
                    changes[key.encode()] = state.to_bytes()
                n += 1
                if pausing and n % SLICE_CHECK_EVERY == 0 and clock() >= deadline:
                    await asyncio.sleep(self.slice_s)
                    deadline = clock() + self.slice_s

    async def _before_commit(self, batches: list[Batch]) -> None:
        """Hook: at-least-once waits for the outputs of every batch about to be committed."""

    async def commit(self, batch: Batch) -> None:
        raise NotImplementedError

    async def prepare(self, partitions: set[int]) -> None:
        """Before ``partitions`` are restored (exactly once: fence their previous owner)."""

    async def release(self, partitions: set[int]) -> None:
        """``partitions`` are no longer this worker's."""

    async def close(self, timeout_s: float) -> None:
        """Commit what is enqueued within ``timeout_s``, then stop."""
        try:
            await asyncio.wait_for(self.drain(), timeout_s)
        except (TimeoutError, RuntimeError) as err:
            log.warning("batches left uncommitted at shutdown %s", kv(
                batches=self._pending, error=repr(err)[:200]))
        self.closing.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def persist(self, changes: dict[int, Changes], ends: dict[int, int]) -> None:
        """Acknowledged changes into local stores that keep a copy."""
        for p, ch in changes.items():
            store = self.stores.get(p)
            if store is not None:
                store.persist(ch, ends.get(p))


class AtLeastOnce(Committer):
    """Outputs, then states, then offsets; each step acknowledged before the next."""

    def __init__(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                 changelog_topic: str, stores: dict[int, PartitionStore],
                 interval_s: float = 0.0, cache_limit: int = 0,
                 outputs: AIOKafkaProducer | None = None, slice_s: float = 0.0) -> None:
        super().__init__(consumer, changelog_topic, stores, interval_s, cache_limit)
        self.slice_s = slice_s
        #: writes the changelog
        self.producer = producer
        #: sends the outputs (``producer`` if not given)
        self.outputs = outputs if outputs is not None else producer
        self._outputs: dict[int, asyncio.Task[list[Any]]] = {}
        self._uncommitted: dict[TopicPartition, int] = {}
        #: set once the last batch's outputs are all handed to the producer
        self._queued: asyncio.Event | None = None

    def _enqueued(self, batch: Batch) -> None:
        if batch.outputs:
            records = output_records(batch.outputs)
            queued = asyncio.Event()
            # each batch's sends start once the previous batch's are queued: a key's
            # outputs reach its partition in the order of its input records
            task = asyncio.create_task(send_until_acknowledged(
                self.outputs, records, self.closing, after=self._queued, queued=queued))
            # however the task ends (even cancelled before its first step), the next
            # batch's sends must not wait for it forever
            task.add_done_callback(lambda _: queued.set())
            self._outputs[id(batch)] = task
            self._queued = queued

    async def _before_commit(self, batches: list[Batch]) -> None:
        # taken before the first await: encoded in slices, the states may hold what
        # any batch handled so far did, so all of their outputs are waited for
        sendings = [self._outputs.pop(id(batch), None) for batch in batches]
        if self.slice_s > 0:
            sendings.extend(self._outputs.values())
        for sending in sendings:
            if sending is not None:
                await sending

    async def commit(self, batch: Batch) -> None:
        if any(batch.changes.values()):
            ends = await write_changelog(self.producer, self.changelog_topic, batch.changes,
                                         self.closing)
            self.persist(batch.changes, ends)
        if batch.offsets or self._uncommitted:
            await self._commit_offsets(batch.offsets)

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        wanted = {**self._uncommitted, **offsets}
        assigned = self.consumer.assignment()
        wanted = {tp: o for tp, o in wanted.items() if tp in assigned}
        if not wanted:
            self._uncommitted.clear()
            return
        try:
            await self.consumer.commit(wanted)
        except (KafkaError, AssertionError) as err:
            # the records are read again after a restart or a rebalance: at least once
            self._uncommitted = wanted
            log.warning("offset commit failed, retried with the next batch %s",
                        kv(partitions=sorted(tp.partition for tp in wanted),
                           error=repr(err)[:200]))
            return
        self._uncommitted.clear()
        self.committed.update(wanted)


class ExactlyOnce(Committer):
    """One transaction per input partition and batch (see the module docstring)."""

    def __init__(self, consumer: AIOKafkaConsumer, make_producer: ProducerFactory,
                 transactional_prefix: str, group_id: str, changelog_topic: str,
                 stores: dict[int, PartitionStore], interval_s: float = 0.0,
                 cache_limit: int = 0) -> None:
        super().__init__(consumer, changelog_topic, stores, interval_s, cache_limit)
        self.make_producer = make_producer
        self.prefix = transactional_prefix
        self.group_id = group_id
        self.producers: dict[int, AIOKafkaProducer] = {}

    def transactional_id(self, partition: int) -> str:
        return f"{self.prefix}-{partition}"

    async def prepare(self, partitions: set[int]) -> None:
        for p in sorted(partitions):
            old = self.producers.pop(p, None)
            if old is not None:
                await _stop(old)
        started = {p: self.make_producer(self.transactional_id(p)) for p in partitions}
        await asyncio.gather(*(_fence(producer) for producer in started.values()))
        self.producers.update(started)
        self.failed -= partitions

    async def release(self, partitions: set[int]) -> None:
        await asyncio.gather(*(_stop(self.producers.pop(p)) for p in partitions
                               if p in self.producers))

    async def commit(self, batch: Batch) -> None:
        parts = sorted(p for p in batch.partitions() if p not in self.failed)
        results = await asyncio.gather(*(self._transaction(p, batch.only(p)) for p in parts),
                                       return_exceptions=True)
        for p, outcome in zip(parts, results, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                self.failed.add(p)
                log.warning("transaction failed, the partition's state is restored again %s",
                            kv(partition=p, error=repr(outcome)[:300]))

    async def _transaction(self, partition: int, part: Batch) -> None:
        producer = self.producers.get(partition)
        if producer is None:
            raise RuntimeError(f"no transactional producer for partition {partition}")
        try:
            await producer.begin_transaction()
            futures = [await producer.send(topic, value=value, key=key, headers=headers,
                                           partition=p)
                       for topic, key, value, headers, p in output_records(part.outputs)]
            sent = await send_changelog(producer, self.changelog_topic, part.changes)
            if part.offsets:
                await producer.send_offsets_to_transaction(dict(part.offsets), self.group_id)
            await producer.commit_transaction()
            await asyncio.gather(*futures)
            ends = await changelog_ends(sent)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.abort_transaction(), 5.0)
            raise
        self.persist(part.changes, ends)
        self.committed.update(part.offsets)

    async def close(self, timeout_s: float) -> None:
        await super().close(timeout_s)
        await asyncio.gather(*(_stop(p) for p in self.producers.values()))
        self.producers.clear()


async def _fence(producer: AIOKafkaProducer) -> None:
    """Start ``producer`` and wait until its transactional id is initialised.

    Initialising the id fences the previous producer of that id and aborts its
    open transaction; ``begin_transaction`` waits for it, and an empty transaction
    commits without a request. Only then is the changelog read.
    """
    await producer.start()
    await producer.begin_transaction()
    await producer.commit_transaction()


async def _stop(producer: AIOKafkaProducer, timeout_s: float = 5.0) -> None:
    try:
        await asyncio.wait_for(producer.stop(), timeout_s)
    except (TimeoutError, KafkaError, OSError) as err:
        log.debug("producer did not stop cleanly: %r", err)
