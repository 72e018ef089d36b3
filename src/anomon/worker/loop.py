"""The hot path: fetch a batch, handle it on live states, hand it to the committer, repeat.

One asyncio task runs :meth:`StreamLoop.run`:

1. partitions newly assigned are restored from the changelog first (their
   input is paused meanwhile; the others keep flowing between restores);
2. ``getmany`` returns up to ``max_records`` records of the owned partitions;
3. each record is handled on its partition's store, synchronously
   (:class:`~anomon.worker.handler.RecordHandler`; erasure requests by
   :class:`~anomon.worker.erasure.Eraser`); each changed customer is encoded
   when the committer takes the batch (at most one commit per
   ``commit_interval_ms``: a customer changed by several batches is written once);
4. the batch goes to the committer (:mod:`anomon.worker.committer`) without
   waiting: it publishes and commits while the loop fetches and handles the
   next one;
5. between batches, a chunk of the sweep or of the sweep index rebuild; while
   records flow, these take at most ``background_share`` of the loop, so that a
   round of them does not leave the records less of the worker than they need.

Nothing awaits between building a batch and enqueueing it, so when the group
rebalances (:meth:`on_partitions_revoked`, awaited by the consumer) every
record handled so far is in the committer's queue: the revocation drains it,
which flushes the states and commits the offsets, before the partitions move.
Records fetched before a revocation began, or while a rebalance is under way,
are left unhandled: every assignment starts from the committed offsets, so they
are fetched again; records ``getmany`` returned after waiting out a whole
rebalance are of the new assignment, and the loop seeks back to read them again.
On assignment (eager protocol: every partition is revoked, then the new set
assigned) a partition kept keeps its warm state; a partition gone is dropped;
a partition new is paused until restored (from where a standby replica of it
on this worker had read, if there is one: :mod:`anomon.worker.standby`). The
assignor is sticky, so a worker joining or leaving moves only the partitions
that must move.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from anomon.collector import PeriodicFreeze
from anomon.kafka.logs import kv
from anomon.worker import metrics
from anomon.worker.batch import Batch
from anomon.worker.committer import Committer
from anomon.worker.erasure import Eraser
from anomon.worker.fetch_pace import FetchPace
from anomon.worker.handler import RecordHandler
from anomon.worker.standby import StandbyReplicas
from anomon.worker.stats import WorkerStats
from anomon.worker.store import PartitionStore
from anomon.worker.sweep import SweepClock
from anomon.worker.sweeper import Sweeper

log = logging.getLogger("anomon.worker.loop")

POLL_MS = 100  # longest wait for records when idle
RETRY_S = 1.0
REVOKE_DRAIN_S = 60.0
# Turns of the event loop given to the clients' tasks before and after handling a
# batch. A request takes three to leave: after handling, the outputs' send task hands
# them to the producer, its sender task drains them, its request task writes them to
# the socket; before handling, the consumer's fetcher learns that its records were
# taken, builds the next fetch, and its task sends it. With fewer, the alerts wait
# until the next batch is handled, and the next fetch is sent only then (measured on
# Apache Kafka at 5,000 events/s: p50 15-18 ms with these turns, 22-45 ms with one
# after handling).
TURNS = 3

Restore = Callable[[dict[int, PartitionStore]], Awaitable[Any]]


class StreamLoop(ConsumerRebalanceListener):
    """The consumer loop and its rebalance listener (see the module docstring)."""

    def __init__(self, *, consumer: AIOKafkaConsumer, committer: Committer,
                 handler: RecordHandler, eraser: Eraser, sweeper: Sweeper,
                 stores: dict[int, PartitionStore], new_store: Callable[[int], PartitionStore],
                 restore: Restore, stats: WorkerStats, clock: SweepClock, input_topic: str,
                 erasure_topic: str, sweep_interval_s: float, max_records: int = 1000,
                 exactly_once: bool = False, standby: StandbyReplicas | None = None,
                 standby_wanted: Callable[[], Iterable[int]] = tuple,
                 freezer: PeriodicFreeze | None = None, pace: FetchPace | None = None,
                 background_share: float = 1.0) -> None:
        self.consumer = consumer
        self.committer = committer
        self.handler = handler
        self.eraser = eraser
        self.sweeper = sweeper
        self.stores = stores
        self.new_store = new_store
        self.restore_states = restore
        self.stats = stats
        self.clock = clock
        self.input_topic = input_topic
        self.erasure_topic = erasure_topic
        self.sweep_interval_s = sweep_interval_s
        self.max_records = max_records
        self.exactly_once = exactly_once
        self.standby = standby
        #: the partitions the last assignment asked this worker to keep warm
        self.standby_wanted = standby_wanted
        #: moves the states out of the collector's way (everything alive), once a second
        self.freezer = freezer or PeriodicFreeze(0.0)
        #: the fetches' wait, long while nothing comes (:mod:`anomon.worker.fetch_pace`)
        self.pace = pace
        #: the share of the loop background chunks may take while records flow
        self.background_share = background_share
        #: while records flow, no background chunk before this (``time.perf_counter``)
        self.background_at = 0.0
        self.assigned: set[int] = set()
        self.pending: set[int] = set()  # assigned, to restore before their records are handled
        self.restoring: set[int] = set()
        self.joined = False
        self.rebalancing = False
        #: revocations so far (records fetched before one are not handled after it)
        self.revocations = 0
        self.ready_at: float | None = None
        self.stopping = asyncio.Event()
        self.beat = time.monotonic()
        self.next_sweep_at = time.monotonic() + sweep_interval_s
        self.on_ready: Callable[[], None] | None = None

    # -- state of the loop -------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Group joined, no rebalance under way, every owned partition restored."""
        return (self.joined and not self.rebalancing and not self.pending
                and not self.restoring)

    def partitions(self) -> list[int]:
        """Input partitions owned (restored or not)."""
        return sorted(self.assigned)

    def tps(self, partitions: Iterable[int]) -> list[TopicPartition]:
        """The input and erasure partitions numbered ``partitions``."""
        return [TopicPartition(topic, p) for p in sorted(partitions)
                for topic in (self.input_topic, self.erasure_topic)]

    def _maybe_ready(self) -> None:
        if self.ready and self.ready_at is None:
            self.ready_at = time.time()
            metrics.WORKER_READY.set(1)
            log.info("worker ready %s", kv(
                seconds_since_start=round(self.ready_at - self.stats.started_at, 2),
                partitions=self.partitions()))
            if self.on_ready is not None:
                self.on_ready()

    # -- rebalance listener --------------------------------------------------------

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish: publish and commit every batch handled so far."""
        self.rebalancing = True
        self.revocations += 1
        try:
            await asyncio.wait_for(self.committer.drain(), REVOKE_DRAIN_S)
        except (TimeoutError, RuntimeError) as err:
            log.warning("batches not committed before the rebalance %s",
                        kv(error=repr(err)[:200]))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Keep the partitions kept, drop those gone, pause the new ones until restored."""
        new = {tp.partition for tp in assigned if tp.topic == self.input_topic}
        gone = set(self.stores) - new
        for p in gone:
            self.stores.pop(p).close()
        if gone:
            await self.committer.release(gone)
        added = new - set(self.stores)
        warm = []
        for p in added:
            store = self.standby.take(p) if self.standby is not None else None
            if store is not None:
                warm.append(p)
            self.stores[p] = store if store is not None else self.new_store(p)
        if self.standby is not None:
            self.standby.update(set(self.standby_wanted()) - new)
        self.pending = (self.pending | added) & new
        self.restoring &= new
        held_back = self.pending | self.restoring
        if held_back:
            self.consumer.pause(*self.tps(held_back))
        if added or gone:
            self.sweeper.invalidate()
        self.clock.reset_offsets()
        first = not self.joined
        self.assigned = new
        self.joined = True
        self.rebalancing = False
        log.info("%s %s", "joined" if first else "rebalanced", kv(
            partitions=sorted(new), kept=sorted(new - added), restoring=sorted(added),
            from_standby=sorted(warm), dropped=sorted(gone)))
        self._maybe_ready()

    # -- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        """Until :attr:`stopping` is set."""
        while not self.stopping.is_set():
            self.beat = time.monotonic()
            try:
                await self._once()
            except asyncio.CancelledError:
                raise
            except KafkaError as err:
                log.warning("consumer error, retrying %s", kv(error=repr(err)[:300]))
                await self._sleep(RETRY_S)

    async def _once(self) -> None:
        if self.committer.failed:
            await self._reset(set(self.committer.failed))
        if self.pending and not self.rebalancing:
            await self._restore()
        timeout_ms = POLL_MS
        if self.sweeper.in_round or self.sweeper.index.stale:  # back for the next chunk
            timeout_ms = min(POLL_MS, max(0, round(
                (self.background_at - time.perf_counter()) * 1000)))
        revocations = self.revocations
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms,
                                              max_records=self.max_records)
        if self.pace is not None:
            self.pace.observe(bool(fetched))
        if fetched:
            await self._turns()  # the next fetch goes out, and is answered while we handle
            if self.revocations == revocations and not self.rebalancing:
                self.committer.submit(self.handle(fetched))
            elif not self.rebalancing:
                self._read_again(fetched)
            # else a rebalance is under way: the records are left unhandled, and read again
            # from the offsets the revocation committed (the assignment starts from those)
        self._background(flowing=bool(fetched))
        # getmany answers from its buffer without suspending, and so may everything above:
        # let the committer, the clients' own tasks (fetches, heartbeats) and the web
        # server run; the batch's alerts leave now
        await self._turns()
        await self.committer.wait_room()

    def _read_again(self, fetched: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Leave records returned across a whole rebalance unhandled, and read them again.

        ``getmany`` called while a rebalance is starting waits for the new assignment
        and returns records of it, read from the committed offsets: the consumer's
        positions have moved past them. Dropped without a seek, the next batch's
        commit would cover them and they would never be handled (a worker joining a
        busy group lost one batch of up to ``max_records`` so). Records of a partition
        no longer assigned are the new owner's to read.
        """
        assigned = self.consumer.assignment()
        for tp, records in fetched.items():
            if records and tp in assigned:
                self.consumer.seek(tp, records[0].offset)
        log.info("records fetched across a rebalance are read again %s",
                 kv(records=sum(len(r) for r in fetched.values())))

    @staticmethod
    async def _turns() -> None:
        """Let the clients' tasks take the :data:`TURNS` steps a request needs to leave."""
        for _ in range(TURNS):
            await asyncio.sleep(0)

    def handle(self, fetched: dict[TopicPartition, list[ConsumerRecord]]) -> Batch:
        """Handle one ``getmany`` worth of records (no await: the batch is all or nothing)."""
        batch = Batch()
        touched: list[PartitionStore] = []
        first = self.stats.records_in == 0
        for tp, records in fetched.items():
            p = tp.partition
            store = self.stores.get(p)
            if store is None or p in self.pending or p in self.restoring:
                self.consumer.seek(tp, records[0].offset)  # handled once restored
                continue
            if tp.topic == self.input_topic:
                started = time.perf_counter()
                self.handler.handle_batch(records, store, batch.outputs)
                batch.records += len(records)
                # once per partition and batch: the mean time a record of it took
                metrics.PROCESSING_SECONDS.observe((time.perf_counter() - started) / len(records))
            else:
                for record in records:
                    self.eraser.handle(record.value, p, store)
            batch.offsets[tp] = records[-1].offset + 1
            touched.append(store)
        note = self.sweeper.index.note_due
        for store in touched:
            live = store.live
            for customer_id in store.take_fresh():
                state = live.get(customer_id)
                if state is not None:
                    note(state)
            if store.dirty or store.deleted:
                batch.touched.add(store.partition)
        self.stats.batch_done()
        if batch.records and log.isEnabledFor(logging.DEBUG):
            oldest = min((r[0].timestamp for r in fetched.values() if r and r[0].timestamp),
                         default=None)
            log.debug("batch %s", kv(records=batch.records, outputs=len(batch.outputs),
                oldest_age_ms=round(time.time() * 1000 - oldest) if oldest else None,
                in_flight=self.committer.in_flight))
        if batch.records:
            newest = self.clock.worker_newest
            if newest is not None:
                metrics.EVENT_LAG_SECONDS.set(time.time() - newest)
            if first:
                log.info("first record %s", kv(
                    seconds_since_start=round(time.time() - self.stats.started_at, 2)))
        return batch

    def _background(self, flowing: bool) -> None:
        """A freeze when due, and a chunk of the index rebuild or of the sweep, between batches.

        While records flow (``flowing``: the last fetch returned some), a chunk
        that took ``t`` is followed by at least ``t x (1 / background_share - 1)``
        without one: at 0.25, three times as long for the records.
        """
        self.freezer.maybe_freeze()
        now = time.monotonic()
        if not self.ready:
            if now >= self.next_sweep_at:
                self.next_sweep_at = now + self.sweep_interval_s
                self.stats.sweep_skipped += 1
            return
        started = time.perf_counter()
        if flowing and started < self.background_at:
            return
        if self.sweeper.rebuilding():
            self._space(started)
            return
        if not self.sweeper.in_round and now >= self.next_sweep_at:
            self.next_sweep_at = now + self.sweep_interval_s
            self.sweeper.begin()
        if self.sweeper.in_round:
            self.committer.submit(self.sweeper.step())
            self._space(started)

    def _space(self, started: float) -> None:
        """Hold the next background chunk back for the records' share of the loop."""
        if self.background_share < 1.0:
            ended = time.perf_counter()
            self.background_at = ended + (ended - started) * (1.0 / self.background_share - 1.0)

    async def _restore(self) -> None:
        parts = set(self.pending)
        self.pending.clear()
        self.restoring |= parts
        try:
            await self.committer.prepare(parts)
            await self.restore_states({p: self.stores[p] for p in parts if p in self.stores})
            if self.exactly_once:
                await self._seek_committed(parts & self.assigned)
        except (KafkaError, OSError, RuntimeError) as err:
            log.warning("restore failed, retrying %s", kv(partitions=sorted(parts),
                                                          error=repr(err)[:300]))
            self.restoring -= parts
            self.pending |= parts & self.assigned
            await self._sleep(RETRY_S)
            return
        self.restoring -= parts
        gc.freeze()  # the restored states are long-lived: out of the collector's way
        resume = (parts & self.assigned) - self.pending
        if resume:
            self.consumer.resume(*self.tps(resume))
        self.sweeper.invalidate()
        self._maybe_ready()

    async def _seek_committed(self, parts: set[int]) -> None:
        """Exactly once: start where the last committed transaction left off."""
        for tp in self.tps(parts):
            committed = await self.consumer.committed(tp)
            if committed is not None:
                self.consumer.seek(tp, committed)
            else:
                await self.consumer.seek_to_beginning(tp)

    async def _reset(self, parts: set[int]) -> None:
        """Throw away the states of ``parts`` (a failed transaction) and restore them."""
        await self.committer.drain()
        parts &= set(self.stores)
        for p in parts:
            self.stores[p].close()
            self.stores[p] = self.new_store(p)
        self.committer.failed -= parts
        self.pending |= parts
        if parts:
            self.consumer.pause(*self.tps(parts))
            self.sweeper.invalidate()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
