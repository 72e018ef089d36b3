"""``anomon_framed_records_total{schema_id}``: Confluent-framed records decoded, by schema id.

The decoder (:mod:`anomon.core.decoding`) strips the Schema Registry frame and
counts schema ids in :data:`~anomon.core.decoding.SCHEMA_IDS`; this collector
exports those counts at each scrape of the default registry, so a dashboard
shows which producers send framed records and which schema versions are live.
Schema ids are few (one per registered schema version), never customer data.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from anomon.core.decoding import SCHEMA_IDS
>>> SCHEMA_IDS[4242] += 1
>>> registry = CollectorRegistry()
>>> register(registry)
>>> 'anomon_framed_records_total{schema_id="4242"} 1.0' in generate_latest(registry).decode()
True
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from anomon.core.decoding import SCHEMA_IDS


class FramedRecords(Collector):
    """The schema-id counts of framed records, read at scrape time."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "anomon_framed_records",
            "Records in the Confluent wire format (magic byte, schema id) decoded, by schema id.",
            labels=["schema_id"])
        for schema_id, count in sorted(SCHEMA_IDS.items()):
            family.add_metric([str(schema_id)], count)
        yield family


_registered: set[int] = set()


def register(registry: CollectorRegistry = REGISTRY) -> None:
    """Add the collector to ``registry`` (once; later calls do nothing)."""
    if id(registry) not in _registered:
        registry.register(FramedRecords())
        _registered.add(id(registry))
