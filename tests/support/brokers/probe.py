"""Whether a broker answers a Kafka metadata request, asked from plain synchronous code."""

from __future__ import annotations

import asyncio
import concurrent.futures

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError


async def broker_count(bootstrap: str, timeout: float = 5.0) -> int:
    """How many brokers the cluster behind ``bootstrap`` lists in its metadata."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap,
                            request_timeout_ms=max(1, int(timeout * 1000)))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return len(client.cluster.brokers())
    finally:
        await client.close()


def answers_metadata(bootstrap: str, timeout: float = 5.0) -> bool:
    """Whether a metadata request to ``bootstrap`` succeeds and lists at least one broker.

    Runs on a short-lived thread with its own event loop, so it may be called from
    inside a running loop as well.
    """

    def ask() -> int:
        return asyncio.run(broker_count(bootstrap, timeout))

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="broker-probe") as pool:
        try:
            return pool.submit(ask).result(timeout + 5.0) > 0
        except (KafkaError, OSError, TimeoutError, concurrent.futures.TimeoutError):
            return False
