"""Input in every compression codec Kafka producers use, and in the Confluent wire format.

Producers compress batches with gzip, lz4, snappy or zstd (several client
libraries default to one of them) and Schema Registry serializers frame each
value with a magic byte and a schema id. One worker reads batches of each
codec, plain and framed records mixed: every record is processed (none is
dead-lettered), the alerts are those of plain input, and ``/metrics`` counts the
framed records by schema id.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from workerkit import History, Names, alerts_of, bootstrap_of, days_ago, metric_samples, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CODECS = ("gzip", "lz4", "snappy", "zstd")
SCHEMA_ID = 100_017


def framed(schema_id: int, value: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + value


def produce(broker: Any, topic: str, codec: str, records: list[tuple[bytes, bytes]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_of(broker),
                                    compression_type=codec, linger_ms=20)
        await producer.start()
        try:
            futures = [await producer.send(topic, value=v, key=k) for k, v in records]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def test_every_codec_and_framed_records_are_processed(broker: Any, workers: Any,
                                                      figures: Any) -> None:
    names = Names()
    worker = workers(names, session_timeout_s=6, sweep_interval_s=600)
    worker.wait_ready(90)
    origin = days_ago(60)
    total = n_framed = 0
    for n, codec in enumerate(CODECS):
        h = History(origin)
        debtor = f"debtor-{codec}"
        for month in range(2):
            h.add(debtor, "payment", 10 * month, amount=50.0, status="paid")
        for i in range(3):
            h.add(debtor, "payment", 25 + 3 * i, amount=50.0, status="overdue", days_overdue=10)
        for day in range(40):
            h.add(f"shopper-{codec}", "purchase", day, amount=20.0)
        records = [(e["customer_id"].encode(),
                    framed(SCHEMA_ID + n % 2, orjson.dumps(e)) if i % 2 else orjson.dumps(e))
                   for i, e in enumerate(h.in_time_order())]
        produce(broker, names.input, codec, records)
        total += len(records)
        n_framed += sum(1 for _, value in records if value[0] == 0)
    stats = worker.wait_for(lambda s: s["in"] >= total, timeout=90)
    assert stats["processed"] == total and stats["dead_lettered"] == 0, stats
    alerts = alerts_of(read_topic(broker, names.alerts, expect=len(CODECS)))
    assert sorted((a["customer_id"], a["kind"]) for a in alerts) == sorted(
        (f"debtor-{c}", "payment_arrears") for c in CODECS)
    samples = metric_samples(worker.metrics())
    framed_counts = {dict(labels)["schema_id"]: value for (name, labels), value in samples.items()
                     if name == "anomon_framed_records_total"}
    assert sum(framed_counts.values()) == n_framed > 0
    assert set(framed_counts) == {str(SCHEMA_ID), str(SCHEMA_ID + 1)}
    figures(codecs=",".join(CODECS), records=total, framed=n_framed,
            processed=stats["processed"])
