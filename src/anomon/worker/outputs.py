"""Sending the worker's outputs, at least once or inside Kafka transactions.

At least once (the default), alerts, dead letters and late events go out
through Faust's topics as soon as a record is handled; the input offset is
committed afterwards, so a crash in between sends them again (identical alert
ids: consumers de-duplicate).

Exactly once (``processing_guarantee="exactly_once"``), Faust runs one
transactional producer per input partition and commits the input offsets in
its transactions, together with the table's changelog writes. Faust routes a
send to the producer of the *destination's* partition, and only for topics it
consumes, so our output topics would go out outside any transaction
(faust-streaming/faust#177).
:class:`Outputs` sends each output with the producer of the input partition
whose record (or sweep) caused it: a ``read_committed`` consumer of the alerts
topic then sees an alert only once its input offset is committed with it.

The sweep is not driven by an input record, so nothing would commit its
transaction; after a sweep :meth:`Outputs.commit_sweep` commits the swept
partitions' transactions at their committed input offsets, taking its turn in
Faust's commit protocol (one committer at a time). And Faust's buffered
changelog writes are flushed before every commit
(:meth:`Outputs.flush_before_commit`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import faust
from faust.types import TP

from anomon.kafka.logs import kv
from anomon.worker.faust_private import (
    committed_offsets,
    exclusive_commit,
    flush_buffer_before_commit,
)
from anomon.worker.records import Outgoing

log = logging.getLogger("anomon.worker.outputs")


class Outputs:
    """Sends outputs for the worker (see the module docstring)."""

    def __init__(self, app: faust.App, input_topic: str,
                 topics: Mapping[str, faust.types.TopicT]) -> None:
        self.app = app
        self.input_topic = input_topic
        self.topics = dict(topics)

    @property
    def transactional(self) -> bool:
        return bool(self.app.in_transaction)

    def transactional_id(self, partition: int) -> str:
        """Faust's id of the transactional producer of input ``partition``."""
        group = self.app.assignor.group_for_topic(self.input_topic)
        return f"{self.app.conf.id}-{group}-{partition}"

    async def send(self, out: Outgoing, partition: int | None) -> None:
        """Send ``out`` caused by input ``partition``."""
        if not self.transactional or partition is None:
            await self.topics[out.topic].send(key=out.key, value=out.value, headers=out.headers)
            return
        await self.app.producer.send(
            out.topic, out.key, out.value, None, None, out.headers,
            transactional_id=self.transactional_id(partition))

    def flush_before_commit(self) -> None:
        """Exactly once: send Faust's buffered table writes before each transaction commit.

        Faust writes the changelog through a buffer that a background task
        drains into the transactions; a commit can run before the buffered
        writes of the records whose offsets it commits are sent. Those writes
        then open the next transaction, which nothing commits if no record
        follows on that partition: the broker aborts it after the transaction
        timeout, and the states are lost while their input offsets are
        committed (the kill test showed it; robinhood/faust#340 reports the
        same loss). Flushing first puts them in the transaction of their offsets.
        """
        if self.transactional:
            flush_buffer_before_commit(self.app)

    async def commit_sweep(self, partitions: Iterable[int]) -> None:
        """Commit the transactions the sweep wrote to (exactly once only)."""
        parts = sorted(set(partitions))
        if not self.transactional or not parts:
            return
        async with exclusive_commit(self.app):
            committed = committed_offsets(self.app)
            assigned = self.app.consumer.assignment()
            offsets = {}
            for p in parts:
                tp = TP(self.input_topic, p)
                if tp in committed and tp in assigned:
                    offsets[tp] = committed[tp]
            if offsets:
                await self.app.consumer.transactions.commit(offsets, start_new_transaction=True)
            skipped = [p for p in parts if TP(self.input_topic, p) not in offsets]
            if skipped:
                log.debug("sweep outputs wait for the next commit %s", kv(partitions=skipped))
