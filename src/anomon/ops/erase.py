"""``anomon erase CUSTOMER_ID``: request that workers delete one customer's state.

The request goes to every partition of the erasure topic; see
:mod:`anomon.worker.erasure` for what the worker deletes and what stays.
"""

from __future__ import annotations

import asyncio
from typing import TextIO

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from anomon.exits import EXIT_FAIL, EXIT_OK, error_text, report
from anomon.kafka.erasure_requests import request_value
from anomon.kafka.logs import customer_ref
from anomon.kafka.security import SecurityConfigError, kafka_auth
from anomon.kafka.topics import TopicSetupError, bootstrap_servers, ensure_topics
from anomon.settings import Settings


async def send_request(settings: Settings, customer_id: str) -> int:
    """Write the request for ``customer_id`` to every erasure partition; returns how many."""
    await ensure_topics(settings, with_changelog=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(settings.broker),
                                client_id=f"{settings.app_id}-erase", acks="all",
                                **kafka_auth(settings))
    try:
        await producer.start()
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
        return report("erase", f"{error_text(failure)} (broker "
                      f"{bootstrap_servers(settings.broker)})", fix="is it running? pass --broker",
                      code=EXIT_FAIL, err=err)
    print(f"erasure of customer {customer_ref(customer_id)} requested on {sent} partition(s) "
          f"of {settings.erasure_topic}; workers delete the state as they reach it", file=out)
    return EXIT_OK
