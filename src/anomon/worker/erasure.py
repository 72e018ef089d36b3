"""Erasure: delete one customer's state when a deletion request must be honoured.

``anomon erase CUSTOMER_ID`` writes an erasure request to the erasure topic
(``ANOMON_ERASURE_TOPIC``), one record on *every* partition. The topic has as
many partitions as the input topic and is co-partitioned with it (the
worker that owns input partition *p* also reads erasure partition *p*), so the
worker owning each partition handles the request there: it deletes the state
from its store and writes a tombstone to the changelog partition *p*.
Sending to every partition also reaches a state that a mis-keyed producer put
on another partition than the customer id's own. Compaction then removes the
old changelog records (on brokers that compact).

What goes with the state: the customer's features, alert episodes, recent event
ids, pending churn snapshots (the labels not yet learned) and the sweep's
bookkeeping. What stays: alerts already published, and records in the input,
dead-letter and late topics, until those topics' retention removes them; the
shared models hold no per-customer records. An event of the customer still
queued in the input topic recreates a state: erase after the producers have
stopped sending the customer's events.
"""

from __future__ import annotations

import logging

from anomon.kafka.erasure_requests import erasure_customer
from anomon.kafka.logs import customer_ref, kv
from anomon.worker.stats import WorkerStats
from anomon.worker.store import StateStore
from anomon.worker.sweep import SweepIndex

log = logging.getLogger("anomon.worker.erasure")


class Eraser:
    """Handles erasure requests in the worker (records of the erasure topic)."""

    def __init__(self, index: SweepIndex, stats: WorkerStats) -> None:
        self.index = index
        self.stats = stats

    def handle(self, value: bytes | None, partition: int, store: StateStore) -> str | None:
        """Erase the customer named by ``value`` from ``store`` (the states of ``partition``).

        Returns their id (``None``: not a request). The tombstone is written whether or
        not a state is held: a copy may live in the changelog that this worker never read.
        """
        customer_id = erasure_customer(value)
        if customer_id is None:
            log.warning("not an erasure request, ignored %s", kv(partition=partition))
            return None
        existed = customer_id in store
        store.pop(customer_id, None)  # tombstone on this record's partition
        self.index.forget(customer_id)
        self.stats.record_erasure(existed)
        log.info("customer erased %s", kv(customer=customer_ref(customer_id),
                                          partition=partition, state_held=existed))
        return customer_id
