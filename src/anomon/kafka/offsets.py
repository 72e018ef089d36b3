"""Where each partition of a topic starts and really ends.

Some Kafka-compatible brokers (Tansu 0.6 among them) answer ListOffsets with an
end short of the last record once records were written in batches; the high
watermark carried by every Fetch response is right on every broker we run on, so
:func:`log_offsets` takes the larger of the two.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from anomon.kafka.logs import kv

log = logging.getLogger("anomon.kafka.offsets")


async def log_offsets(bootstrap: str, partitions: Iterable[TopicPartition],
                      timeout_s: float = 5.0, **client: Any
                      ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(first offset, offset after the last record) of each partition.

    The end comes from Fetch responses: seek to the ListOffsets answer (never
    past the end) and fetch once per partition; the response's high watermark
    is the real end. A partition that does not answer in ``timeout_s`` keeps
    the ListOffsets answer. ``client``: security options (see
    :func:`anomon.kafka.security.kafka_auth`).
    """
    tps = list(partitions)
    if not tps:
        return {}, {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=50,
                                max_partition_fetch_bytes=1024, client_id="anomon-end-offsets",
                                **client)
    await consumer.start()
    try:
        consumer.assign(tps)
        earliest = await consumer.beginning_offsets(tps)
        listed = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(0, listed[tp] - 1))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(consumer.highwater(tp) is None for tp in tps):
            await consumer.getmany(timeout_ms=50, max_records=len(tps))
        out = {}
        for tp in tps:
            fetched = consumer.highwater(tp)
            out[tp] = max(listed[tp], fetched) if fetched is not None else listed[tp]
            if fetched is not None and fetched != listed[tp]:
                log.debug("end offset differs %s", kv(topic=tp.topic, partition=tp.partition,
                                                      list_offsets=listed[tp], fetch=fetched))
        return dict(earliest), out
    finally:
        await consumer.stop()
