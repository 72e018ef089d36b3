"""Standby replicas: warm copies of partitions another worker owns, tailed from the changelog.

As Kafka Streams' ``num.standby.replicas``: the assignor
(:mod:`anomon.worker.assignor`) gives each partition ``ANOMON_STANDBY_REPLICAS``
members besides its owner, preferring members that hold it warm already. Such
a member reads the partition's changelog as the owner writes it, into a store of
its own (kept encoded: a standby costs a dict entry per customer, never a
parse). When the partition moves to it (the owner failed or left), the loop
takes the warm store over and the restore reads only what the standby had not
read yet, instead of the whole partition.

A standby is never ahead of what its owner committed (it reads the changelog,
``read_committed`` with exactly once), so a takeover from it is as correct as a
restore from the beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from anomon.kafka.logs import kv
from anomon.worker.store import PartitionStore

log = logging.getLogger("anomon.worker.standby")

RETRY_S = 1.0
MAX_RECORDS = 5_000


class StandbyReplicas:
    """The standby stores of one worker and the task that keeps them current."""

    def __init__(self, bootstrap: str, topic: str, new_store: Callable[[int], PartitionStore],
                 isolation_level: str = "read_uncommitted", **client: Any) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.new_store = new_store
        self.isolation_level = isolation_level
        self.client = client
        self.stores: dict[int, PartitionStore] = {}
        #: changelog records applied since the worker started
        self.records = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def partitions(self) -> list[int]:
        return sorted(self.stores)

    def positions(self) -> dict[int, int | None]:
        """Partition -> changelog offset read up to."""
        return {p: s.backend.offset() for p, s in sorted(self.stores.items())}

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", isolation_level=self.isolation_level,
            fetch_max_wait_ms=500,
            max_partition_fetch_bytes=2 * 1024 * 1024, client_id="anomon-standby",
            **self.client)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="anomon-standby")
        self._assign()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._consumer.stop(), 5.0)
        for store in self.stores.values():
            store.close()
        self.stores.clear()

    def update(self, partitions: set[int]) -> None:
        """Keep exactly ``partitions`` warm: drop the others, start the new ones."""
        gone = set(self.stores) - partitions
        added = partitions - set(self.stores)
        if not gone and not added:
            return
        for p in gone:
            self.stores.pop(p).close()
        for p in added:
            self.stores[p] = self.new_store(p)
        log.info("standby partitions %s", kv(partitions=sorted(self.stores),
                                             added=sorted(added), dropped=sorted(gone)))
        self._assign()

    def take(self, partition: int) -> PartitionStore | None:
        """The warm store of ``partition`` for its new owner (``None``: not kept here)."""
        store = self.stores.pop(partition, None)
        if store is not None:
            store.warm = True  # the restore resumes at its offset
            self._assign()
        return store

    def _assign(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        tps = [TopicPartition(self.topic, p) for p in sorted(self.stores)]
        consumer.assign(tps)
        for tp in tps:
            offset = self.stores[tp.partition].backend.offset()
            if offset is None:
                self.stores[tp.partition].backend.clear()
                consumer.seek(tp, 0)  # below the log start: reset to the earliest
            else:
                consumer.seek(tp, offset)
        self._changed.set()

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while True:
            if not self.stores:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
            except KafkaError as err:
                log.warning("standby read failed, retrying %s", kv(error=repr(err)[:200]))
                await asyncio.sleep(RETRY_S)
                continue
            for tp, records in batches.items():
                self._apply(tp.partition, records)
            await asyncio.sleep(0)

    def _apply(self, partition: int, records: list[Any]) -> None:
        store = self.stores.get(partition)
        if store is None or not records:
            return  # taken over or dropped since the fetch
        start = store.backend.offset() or 0
        for record in records:
            if record.offset >= start and record.key is not None:
                store.restore(record.key, record.value)
                self.records += 1
        store.backend.set_offset(records[-1].offset + 1)
