"""Topic names, the broker URL, and creating the topics before a worker starts.

Creating the topics with the admin client before the worker's clients start
saves them their own metadata round trips and lets the worker learn the real
partition count of the input topic, which the changelog of the customer states
must share (it is co-partitioned with the input: a customer's state lives in
the changelog partition numbered like the input partition its events arrive on).

On a cluster where anomon may not create topics (``ANOMON_TOPICS=check``), the
topics are only described: each must exist and be visible to anomon, the
erasure and changelog topics must have the input topic's partition count, and
the changelog must be compacted. Each problem is one line naming the fix.

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
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import IncompatibleBrokerVersion, KafkaConnectionError
from aiokafka.protocol.metadata import MetadataRequest

from anomon.kafka.logs import kv
from anomon.kafka.security import kafka_auth
from anomon.settings import Settings

log = logging.getLogger("anomon.kafka.topics")

TABLE_NAME = "customers"
ERR_UNKNOWN_TOPIC = 3
ERR_TOPIC_AUTHORIZATION = 29
ERR_TOPIC_EXISTS = 36
FIX_ACLS = "see config/README.md, ACLs"
#: how long a check waits for a topic to appear (one just created by its owner propagates)
CHECK_WAIT_S = 3.0


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
    """Name of the changelog topic of the customer states (in the form Faust gives a table's)."""
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
        elif code == ERR_TOPIC_AUTHORIZATION:
            raise TopicSetupError(
                f"not allowed to create topic {topic}: create the topics beforehand "
                "(config/kafka/create-topics.sh) and set ANOMON_TOPICS=check, or grant CREATE")
        elif code != ERR_TOPIC_EXISTS:
            raise TopicSetupError(f"cannot create topic {topic}: error {code} {message or ''}")


def _describe_problem(topic: str, code: int) -> str:
    if code == ERR_UNKNOWN_TOPIC:
        return (f"topic {topic} does not exist: create it (config/kafka/create-topics.sh), or "
                "let anomon create the topics (ANOMON_TOPICS=create, needs the CREATE right)")
    if code == ERR_TOPIC_AUTHORIZATION:
        return f"not allowed to describe topic {topic}: grant anomon's ACLs ({FIX_ACLS})"
    return f"cannot describe topic {topic}: error {code}"


async def _partition_count(admin: AIOKafkaAdminClient, topic: str, wait_s: float = 15.0) -> int:
    """Partitions of ``topic``, waiting while a just-created topic propagates."""
    deadline = time.monotonic() + wait_s
    while True:
        # never auto-create: describing is all a check may do
        response = await admin._send_request(
            MetadataRequest([topic], allow_auto_topic_creation=False))
        described = response.to_object()["topics"]
        code = -1
        for item in described:
            if item["topic"] == topic:
                code = item["error_code"]
                if code == 0 and item["partitions"]:
                    return len(item["partitions"])
        if time.monotonic() >= deadline or code == ERR_TOPIC_AUTHORIZATION:
            raise TopicSetupError(_describe_problem(topic, code))
        await asyncio.sleep(0.2)


async def _cleanup_policy(admin: AIOKafkaAdminClient, topic: str) -> str | None:
    """``cleanup.policy`` of ``topic`` (needs DESCRIBE_CONFIGS on it); ``None``: not told.

    Brokers without topic configurations (Tansu) answer nothing: ``None``.
    """
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})])
    except (KafkaConnectionError, IncompatibleBrokerVersion) as err:
        log.warning("cannot read topic configurations, compaction not checked %s",
                    kv(topic=topic, error=type(err).__name__))
        return None
    for code, _message, _type, _name, entries, *_ in response.resources:
        if code == ERR_TOPIC_AUTHORIZATION:
            raise TopicSetupError(
                f"not allowed to read the configuration of topic {topic}: grant "
                f"DESCRIBE_CONFIGS on it ({FIX_ACLS})")
        if code != 0:
            raise TopicSetupError(f"cannot read the configuration of topic {topic}: error {code}")
        for name, value, *_ in entries:
            if name == "cleanup.policy":
                return str(value)
    return "delete"


def _admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers(settings.broker),
        client_id=f"{settings.app_id}-admin",
        request_timeout_ms=15000,
        **kafka_auth(settings),
    )


def _mismatch(topic: str, have: int, settings: Settings, partitions: int) -> TopicSetupError:
    return TopicSetupError(
        f"topic {topic} has {have} partitions but the input topic {settings.input_topic} has "
        f"{partitions}; they must match (recreate {topic} with {partitions})")


async def check_topics(settings: Settings, with_changelog: bool = True,
                       only: list[str] | None = None) -> int:
    """Check that anomon's topics exist and fit, creating nothing (``ANOMON_TOPICS=check``).

    Returns the partition count of the input topic (``0`` when ``only`` names
    the topics to check and the input topic is not among them). Needs DESCRIBE
    on each topic and DESCRIBE_CONFIGS on the changelog.
    """
    admin = _admin(settings)
    await admin.start()
    try:
        if only is not None:
            for topic in only:
                await _partition_count(admin, topic, wait_s=CHECK_WAIT_S)
            return 0
        partitions = await _partition_count(admin, settings.input_topic, wait_s=CHECK_WAIT_S)
        for topic in (settings.dlq_topic, settings.late_topic, settings.alerts_topic):
            await _partition_count(admin, topic, wait_s=CHECK_WAIT_S)
        erasure = await _partition_count(admin, settings.erasure_topic, wait_s=CHECK_WAIT_S)
        if erasure != partitions:
            raise _mismatch(settings.erasure_topic, erasure, settings, partitions)
        if with_changelog:
            changelog = changelog_topic(settings.app_id)
            have = await _partition_count(admin, changelog, wait_s=CHECK_WAIT_S)
            if have != partitions:
                raise _mismatch(changelog, have, settings, partitions)
            policy = await _cleanup_policy(admin, changelog)
            if policy is not None and "compact" not in policy.split(","):
                raise TopicSetupError(
                    f"changelog topic {changelog} has cleanup.policy={policy}: customer state "
                    "would be deleted by retention; set cleanup.policy=compact on it")
        log.info("topics checked %s", kv(input=settings.input_topic, partitions=partitions))
        return partitions
    finally:
        await admin.close()


async def ensure_topics(settings: Settings, with_changelog: bool = True) -> int:
    """Create every topic anomon uses (existing ones are left alone).

    Returns the partition count of the input topic. The changelog topic is
    created with that count and compaction; a changelog that exists with another
    count raises :class:`TopicSetupError` (the table would not be co-partitioned).
    With ``ANOMON_TOPICS=check`` nothing is created: :func:`check_topics`.
    """
    if settings.topics == "check":
        return await check_topics(settings, with_changelog)
    admin = _admin(settings)
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
            raise _mismatch(settings.erasure_topic, erasure, settings, partitions)
        if with_changelog:
            have = await _partition_count(admin, changelog)
            if have != partitions:
                raise _mismatch(changelog, have, settings, partitions)
        return partitions
    finally:
        await admin.close()
