"""Erasure: delete one customer's state when a deletion request must be honoured.

``anomon erase CUSTOMER_ID`` writes an erasure request to the erasure topic
(``ANOMON_ERASURE_TOPIC``), one record on *every* partition. The topic has as
many partitions as the input topic and the worker's agent on it is
co-partitioned with the input (Faust assigns partition *p* of both to the same
worker), so the worker owning each partition handles the request there: it
deletes the state from its table and writes a tombstone to the changelog
partition *p* (:meth:`~anomon.stream.customer_table.CustomerTable.delete`).
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

>>> request_value("c-42")[:20]
b'{"customer_id":"c-42'
>>> erasure_customer(request_value("c-42")), erasure_customer(b"[1]")
('c-42', None)
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TextIO

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from anomon.settings import Settings
from anomon.stream.customer_table import CustomerTable
from anomon.stream.logs import customer_ref, kv
from anomon.stream.security import SecurityConfigError, kafka_auth
from anomon.stream.stats import WorkerStats
from anomon.stream.sweep import SweepIndex
from anomon.stream.topics import TopicSetupError, bootstrap_servers, ensure_topics
from anomon.timeutil import to_rfc3339

log = logging.getLogger("anomon.stream.erasure")

EXIT_OK, EXIT_FAIL = 0, 1


def request_value(customer_id: str) -> bytes:
    """The value of an erasure request record."""
    return orjson.dumps({"customer_id": customer_id, "requested_at": to_rfc3339(time.time())})


def erasure_customer(value: bytes | None) -> str | None:
    """The customer id of an erasure request, or ``None`` if the record is not one."""
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    customer_id = data.get("customer_id") if isinstance(data, dict) else None
    return customer_id if isinstance(customer_id, str) and customer_id else None


class Eraser:
    """Handles erasure requests in the worker (called by its agent on the erasure topic)."""

    def __init__(self, customers: CustomerTable, index: SweepIndex, stats: WorkerStats) -> None:
        self.customers = customers
        self.index = index
        self.stats = stats

    def handle(self, value: bytes | None, partition: int) -> str | None:
        """Erase the customer named by ``value``; returns their id (``None``: not a request)."""
        customer_id = erasure_customer(value)
        if customer_id is None:
            log.warning("not an erasure request, ignored %s", kv(partition=partition))
            return None
        existed = self.customers.delete(customer_id)  # tombstone on this record's partition
        self.index.forget(customer_id)
        self.stats.record_erasure(existed)
        log.info("customer erased %s", kv(customer=customer_ref(customer_id),
                                          partition=partition, state_held=existed))
        return customer_id


async def send_request(settings: Settings, customer_id: str) -> int:
    """Write the request for ``customer_id`` to every erasure partition; returns how many."""
    await ensure_topics(settings, with_changelog=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(settings.broker),
                                client_id=f"{settings.app_id}-erase", acks="all",
                                **kafka_auth(settings))
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(settings.erasure_topic))
        value = request_value(customer_id)
        futures = [await producer.send(settings.erasure_topic, value=value,
                                       key=customer_id.encode(), partition=p)
                   for p in partitions]
        await asyncio.gather(*futures)
        return len(partitions)
    finally:
        await producer.stop()


def request_erasure(settings: Settings, customer_id: str, *, out: TextIO, err: TextIO) -> int:
    """The ``anomon erase`` command; returns the exit code."""
    try:
        sent = asyncio.run(send_request(settings, customer_id))
    except (KafkaError, OSError, TopicSetupError, SecurityConfigError) as failure:
        print(f"anomon erase: {type(failure).__name__}: {failure}", file=err)
        return EXIT_FAIL
    print(f"erasure of customer {customer_ref(customer_id)} requested on {sent} partition(s) "
          f"of {settings.erasure_topic}; workers delete the state as they reach it", file=out)
    return EXIT_OK
