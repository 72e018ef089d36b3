"""Topic names, the broker URL, and creating the topics before a worker starts.

Creating the topics with the admin client before Faust starts saves the worker
its own metadata round trips and lets it learn the real partition count of the
input topic, which the changelog of the customer table must share (the table is
co-partitioned with the input: a customer's state lives in the changelog
partition numbered like the input partition its events arrive on).

>>> bootstrap_servers("kafka://a:9092;kafka://b:9093")
'a:9092,b:9093'
>>> changelog_topic("anomon")
'anomon-customers-changelog'
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from anomon.kafka.logs import kv
from anomon.kafka.security import kafka_auth
from anomon.settings import Settings

log = logging.getLogger("anomon.kafka.topics")

TABLE_NAME = "customers"
ERR_TOPIC_EXISTS = 36


class TopicSetupError(RuntimeError):
    """A topic could not be created or has the wrong shape."""


def bootstrap_servers(broker: str) -> str:
    """``kafka://h1:9092;kafka://h2:9092`` -> ``h1:9092,h2:9092`` (the aiokafka form)."""
    hosts = []
    for part in broker.replace(",", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        if "://" in part:
            part = part.split("://", 1)[1]
        hosts.append(part.rstrip("/"))
    return ",".join(hosts)


def changelog_topic(app_id: str) -> str:
    """Name of the changelog topic of the customer table (Faust's naming)."""
    return f"{app_id}-{TABLE_NAME}-changelog"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic anomon owns."""

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec], replication: int) -> None:
    if not specs:
        return
    response = await admin.create_topics(
        [NewTopic(s.name, s.partitions, replication, topic_configs=s.configs) for s in specs]
    )
    for topic, code, message in (tuple(e)[:3] for e in response.topic_errors):
        if code == 0:
            log.info("created topic %s", kv(topic=topic))
        elif code != ERR_TOPIC_EXISTS:
            raise TopicSetupError(f"cannot create topic {topic}: error {code} {message or ''}")


async def _partition_count(admin: AIOKafkaAdminClient, topic: str, wait_s: float = 15.0) -> int:
    """Partitions of ``topic``, waiting while a just-created topic propagates."""
    deadline = time.monotonic() + wait_s
    while True:
        described = await admin.describe_topics([topic])
        for item in described:
            if item["topic"] == topic and item["error_code"] == 0 and item["partitions"]:
                return len(item["partitions"])
        if time.monotonic() >= deadline:
            raise TopicSetupError(f"cannot describe topic {topic}: {described!r}")
        await asyncio.sleep(0.2)


async def ensure_topics(settings: Settings, with_changelog: bool = True) -> int:
    """Create every topic anomon uses (existing ones are left alone).

    Returns the partition count of the input topic. The changelog topic is
    created with that count and compaction; a changelog that exists with another
    count raises :class:`TopicSetupError` (the table would not be co-partitioned).
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers(settings.broker),
        client_id=f"{settings.app_id}-admin",
        request_timeout_ms=15000,
        **kafka_auth(settings),
    )
    await admin.start()
    try:
        await _create(admin, [TopicSpec(settings.input_topic, settings.partitions)],
                      settings.replication_factor)
        partitions = await _partition_count(admin, settings.input_topic)
        others = [
            TopicSpec(settings.dlq_topic, settings.partitions),
            TopicSpec(settings.late_topic, settings.partitions),
            TopicSpec(settings.alerts_topic, settings.partitions),
            # co-partitioned with the input: the owner of input partition p erases on p
            TopicSpec(settings.erasure_topic, partitions),
        ]
        changelog = changelog_topic(settings.app_id)
        if with_changelog:
            others.append(TopicSpec(changelog, partitions, {"cleanup.policy": "compact"}))
        await _create(admin, others, settings.replication_factor)
        erasure = await _partition_count(admin, settings.erasure_topic)
        if erasure != partitions:
            raise TopicSetupError(
                f"erasure topic {settings.erasure_topic} has {erasure} partitions but the input "
                f"topic {settings.input_topic} has {partitions}; they must match")
        if with_changelog:
            have = await _partition_count(admin, changelog)
            if have != partitions:
                raise TopicSetupError(
                    f"changelog topic {changelog} has {have} partitions but the input topic "
                    f"{settings.input_topic} has {partitions}; they must match"
                )
        return partitions
    finally:
        await admin.close()
