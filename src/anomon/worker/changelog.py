"""Restoring partitions' customer states from the compacted changelog, to its real end.

As Kafka Streams does on assignment: before a partition's input is processed,
its changelog partition is read from where the local store or a standby
replica (:mod:`anomon.worker.standby`) left off (else the beginning) to the end
offset, into the partition's :class:`~anomon.worker.store.PartitionStore`. The end is
:func:`anomon.kafka.offsets.log_offsets`' (some brokers answer ListOffsets
short). States are kept as the bytes read and decoded on first touch, so a
record restored costs a dict insert, not a parse.

With exactly-once the changelog is read ``read_committed``: writes of an
aborted transaction (a worker killed mid-batch) are never restored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from anomon.kafka.logs import kv
from anomon.kafka.offsets import log_offsets
from anomon.worker.store import PartitionStore

log = logging.getLogger("anomon.worker.changelog")

STALL_S = 2.0  # nothing more to read for this long at or past the last stable offset: done


class RestoreError(RuntimeError):
    """A changelog partition could not be read to its end."""


@dataclass
class RestoreResult:
    """What a restore read."""

    records: int = 0
    seconds: float = 0.0
    ends: dict[int, int] | None = None


async def restore(bootstrap: str, topic: str, stores: Mapping[int, PartitionStore],
                  isolation_level: str = "read_uncommitted", timeout_s: float = 600.0,
                  **client: Any) -> RestoreResult:
    """Read ``topic``'s partitions numbered like ``stores`` into them, to the end offset."""
    started = time.monotonic()
    result = RestoreResult(ends={})
    if not stores:
        return result
    tps = {p: TopicPartition(topic, p) for p in stores}
    earliest, ends = await log_offsets(bootstrap, tps.values(), **client)
    starts: dict[int, int] = {}
    for p, tp in tps.items():
        store = store_of(stores, p)
        first, end = earliest.get(tp, 0), ends.get(tp, 0)
        resume = store.backend.offset() if store.keep_encoded or store.warm else None
        if resume is None or not first <= resume <= end:
            if len(store.backend):
                store.backend.clear()
            store.live.clear()
            resume = first
        starts[p] = resume
        assert result.ends is not None
        result.ends[p] = end
    todo = {p for p in tps if starts[p] < ends[tps[p]]}
    if todo:
        result.records = await _read(bootstrap, tps, stores, starts,
                                     {p: ends[tps[p]] for p in todo}, isolation_level,
                                     timeout_s, client)
    for p in tps:
        store = store_of(stores, p)
        store.warm = False
        if store.keep_encoded:
            store.backend.set_offset(ends[tps[p]])
    result.seconds = time.monotonic() - started
    log.info("changelog restored %s", kv(partitions=sorted(stores), records=result.records,
                                         seconds=round(result.seconds, 3)))
    return result


def store_of(stores: Mapping[int, PartitionStore], partition: int) -> PartitionStore:
    return stores[partition]


async def _read(bootstrap: str, tps: dict[int, TopicPartition],
                stores: Mapping[int, PartitionStore], starts: dict[int, int],
                ends: dict[int, int], isolation_level: str, timeout_s: float,
                client: dict[str, Any]) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, isolation_level=isolation_level,
                                max_partition_fetch_bytes=2 * 1024 * 1024,
                                fetch_max_bytes=16 * 1024 * 1024, fetch_max_wait_ms=100,
                                client_id="anomon-restore", **client)
    await consumer.start()
    records = 0
    try:
        todo = {p: tps[p] for p in ends}
        consumer.assign(list(todo.values()))
        for p, tp in todo.items():
            consumer.seek(tp, starts[p])
        deadline = time.monotonic() + timeout_s
        last_progress = time.monotonic()
        while todo:
            batches = await consumer.getmany(timeout_ms=200, max_records=5_000)
            for tp, batch in batches.items():
                store = stores[tp.partition]
                for record in batch:
                    if record.key is not None:
                        store.restore(record.key, record.value)
                records += len(batch)
            if batches:
                last_progress = time.monotonic()
            await asyncio.sleep(0)  # heartbeats and the web server run between chunks
            for p, tp in list(todo.items()):
                position = await consumer.position(tp)
                if position >= ends[p]:
                    del todo[p]
                    continue
                stable = consumer.last_stable_offset(tp)
                stalled = time.monotonic() - last_progress > STALL_S
                if stalled and stable is not None and position >= stable:
                    log.info("changelog read to its last stable offset %s", kv(
                        partition=p, position=position, end=ends[p], stable=stable))
                    del todo[p]
            if todo and time.monotonic() > deadline:
                raise RestoreError(f"changelog partitions {sorted(todo)} not read to their end "
                                   f"in {timeout_s} s")
    finally:
        await consumer.stop()
    return records
