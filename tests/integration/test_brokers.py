"""What a Faust app needs from its broker, checked over a real socket on each broker.

Each test runs once per broker of the ``broker`` fixture (Tansu and Apache Kafka)
and uses topics and groups of its own. Features a broker is known to lack are
listed in :data:`GAPS`: their tests are expected to fail there (xfail), and turn
into failures when the broker starts supporting them, so the list stays true.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from brokers import Broker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: Features a broker is known to lack, and how it shows.
GAPS: dict[str, dict[str, str]] = {
    "tansu": {
        "idempotence": "InitProducerId fails (UnknownError): no idempotent producer",
        "transactions": "InitProducerId fails (UnknownError): no transactional producer",
        "compaction": "cleanup.policy=compact is stored but superseded records are never removed",
        "create_partitions": "CreatePartitions is not in its ApiVersions",
        "alter_configs": "AlterConfigs is not in its ApiVersions",
        "delete_records": "DeleteRecords closes the connection",
        "end_offsets": "ListOffsets(latest) counts record batches, not records",
        "describe_config_names": "DescribeConfigs naming the configs wanted closes the connection",
        "leave_group": "a group's first generation is 0, for which aiokafka sends no LeaveGroup "
                       "on close: the next member waits until the old one's session expires",
    },
}

RECORDS = 1000
KEYS = 50


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def feature(broker: Broker, name: str) -> Iterator[None]:
    """Check feature ``name``; on a broker known to lack it, expect the check to fail."""
    gap = GAPS.get(broker.name, {}).get(name)
    try:
        yield
    except (KafkaError, AssertionError, TimeoutError) as err:
        if gap is None:
            raise
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        pytest.xfail(f"{broker.name} lacks {name}: {gap} [{type(err).__name__}: {first_line}]")
    if gap is not None:
        pytest.fail(f"{broker.name} now supports {name}; remove it from GAPS (was: {gap})")


@contextlib.asynccontextmanager
async def admin_client(broker: Broker) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topic(broker: Broker, topic: str, partitions: int,
                       configs: dict[str, str] | None = None) -> None:
    async with admin_client(broker) as admin:
        response = await admin.create_topics(
            [NewTopic(topic, partitions, 1, topic_configs=configs or {})])
        errors = [(name, code) for name, code, *_ in response.topic_errors if code]
        assert not errors, f"create_topics {topic}: {errors}"
        # Wait until every partition has a leader, so the first produce goes through.
        deadline = time.monotonic() + 15
        while True:
            (described,) = await admin.describe_topics([topic])
            leaders = [p["leader"] for p in described["partitions"] if p["error_code"] == 0]
            if len(leaders) == partitions and all(leader >= 0 for leader in leaders):
                return
            assert time.monotonic() < deadline, f"{topic}: partitions without leader"
            await asyncio.sleep(0.1)


async def produce(broker: Broker, topic: str, records: list[tuple[bytes | None, bytes]]
                  ) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        batch = [await producer.send(topic, value, key=key) for key, value in records]
        await producer.flush()
        for sent in batch:
            await sent
    finally:
        await producer.stop()


async def read(consumer: AIOKafkaConsumer, expect: int, timeout: float = 30.0,
               settle: float = 0.0) -> list[ConsumerRecord[bytes, bytes]]:
    """Read until ``expect`` records came (or ``timeout``), then ``settle`` s more."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(records) < expect and time.monotonic() < deadline:
        for batch in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(batch)
    settle_until = time.monotonic() + settle
    while time.monotonic() < settle_until:
        for batch in (await consumer.getmany(timeout_ms=200)).values():
            records.extend(batch)
    return records


async def topic_configs(broker: Broker, topic: str, names: list[str] | None = None
                        ) -> dict[str, str]:
    """The configs of ``topic`` (all of them, or those in ``names``)."""
    wanted = dict.fromkeys(names) if names else None
    async with admin_client(broker) as admin:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, wanted)])
    return {entry[0]: entry[1] for resource in response.resources for entry in resource[4]}


def group_options(broker: Broker) -> dict[str, int]:
    """Consumer-group timing that keeps the tests quick on each broker.

    Kafka refuses sessions under 6 s (its group.min.session.timeout.ms). Tansu holds
    every join for half the session timeout, and numbers a group's first generation
    0, for which aiokafka sends no LeaveGroup on close: the next member then waits
    out the old member's session. A short session keeps both waits short.
    """
    session = 2000 if broker.name == "tansu" else 6000
    return {"session_timeout_ms": session, "heartbeat_interval_ms": 300,
            "rebalance_timeout_ms": 10_000}


def keyed_records(count: int, keys: int, round_: int = 0) -> list[tuple[bytes | None, bytes]]:
    return [(f"k{i % keys}".encode(), f"r{round_}-{i}".encode()) for i in range(count)]


# -- topics, groups, offsets ---------------------------------------------------------------

async def test_topic_gets_four_partitions(broker: Broker) -> None:
    topic = _name("parts")
    await create_topic(broker, topic, 4)
    async with admin_client(broker) as admin:
        assert topic in await admin.list_topics()
        (described,) = await admin.describe_topics([topic])
    assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2, 3]


async def test_keyed_records_go_through_a_group_with_committed_offsets(broker: Broker) -> None:
    topic, group = _name("keyed"), _name("group")
    await create_topic(broker, topic, 4)
    sent = keyed_records(RECORDS, KEYS)
    await produce(broker, topic, sent)

    first = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             **group_options(broker))
    await first.start()
    try:
        got = await read(first, RECORDS)
        await first.commit()
        committed = {tp: await first.committed(tp) for tp in first.assignment()}
    finally:
        await first.stop()

    assert len(got) == RECORDS
    assert sorted(r.value for r in got) == sorted(value for _, value in sent)
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    values_of_key: dict[bytes, list[bytes]] = defaultdict(list)
    for record in got:
        assert record.key is not None and record.value is not None
        partitions_of_key[record.key].add(record.partition)
        values_of_key[record.key].append(record.value)
    assert all(len(parts) == 1 for parts in partitions_of_key.values()), "a key spans partitions"
    assert len({p for parts in partitions_of_key.values() for p in parts}) > 1
    for key, values in values_of_key.items():
        expected = [value for k, value in sent if k == key]
        assert values == expected, f"records of {key!r} out of order"
    assert len(committed) == 4
    assert sum(offset or 0 for offset in committed.values()) == RECORDS

    # One new record after the commit: the next member of the group reads it and nothing old.
    await produce(broker, topic, [(b"k0", b"after-commit")])
    second = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                              enable_auto_commit=False, auto_offset_reset="earliest",
                              **group_options(broker))
    await second.start()
    try:
        again = await read(second, 1, settle=1.0)
    finally:
        await second.stop()
    assert [r.value for r in again] == [b"after-commit"]


async def test_end_offsets_count_every_record(broker: Broker) -> None:
    topic = _name("ends")
    await create_topic(broker, topic, 4)
    await produce(broker, topic, keyed_records(RECORDS, KEYS))
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(4)]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
    finally:
        await consumer.stop()
    with feature(broker, "end_offsets"):
        counted = sum(ends[tp] - starts[tp] for tp in partitions)
        assert counted == RECORDS, f"end offsets count {counted} of {RECORDS} records"


async def test_two_members_share_the_partitions(broker: Broker) -> None:
    topic, group = _name("share"), _name("group")
    await create_topic(broker, topic, 4)
    members = [AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                                auto_offset_reset="earliest", **group_options(broker))
               for _ in range(2)]
    try:
        for member in members:
            await member.start()
        deadline = time.monotonic() + 30
        while True:
            # Polling keeps each member taking part in rebalances.
            await asyncio.gather(*(m.getmany(timeout_ms=200) for m in members))
            owned = [{tp.partition for tp in m.assignment()} for m in members]
            if all(owned) and not owned[0] & owned[1] and owned[0] | owned[1] == {0, 1, 2, 3}:
                break
            assert time.monotonic() < deadline, f"partitions never split: {owned}"
    finally:
        for member in members:
            await member.stop()


async def join(consumer: AIOKafkaConsumer, partitions: int, timeout: float) -> None:
    """Start ``consumer`` and poll it until it owns ``partitions`` partitions.

    Both steps can wait on a group join, so ``timeout`` bounds them together.
    """

    async def start_and_poll() -> None:
        await consumer.start()
        while len(consumer.assignment()) < partitions:
            await consumer.getmany(timeout_ms=100)

    try:
        await asyncio.wait_for(start_and_poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"{len(consumer.assignment())} of {partitions} partitions "
                             f"assigned after {timeout:.0f} s") from None


async def test_stopped_member_leaves_the_group_at_once(broker: Broker) -> None:
    topic, group = _name("leave"), _name("group")
    await create_topic(broker, topic, 4)
    options = group_options(broker)
    first = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                             **{**options, "session_timeout_ms": 6000})
    try:
        await join(first, 4, timeout=15.0)
    finally:
        await first.stop()
    second = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                              **options)
    try:
        with feature(broker, "leave_group"):
            # Well inside the 6 s session of the first member, had it not left.
            await join(second, 4, timeout=4.0)
    finally:
        await second.stop()


# -- compacted topics ----------------------------------------------------------------------

COMPACT = {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
           "delete.retention.ms": "100", "min.compaction.lag.ms": "0"}


async def _read_all(broker: Broker, topic: str, expect: int, settle: float = 0.5
                    ) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        return await read(consumer, expect, timeout=15.0, settle=settle)
    finally:
        await consumer.stop()


async def test_compacted_topic_is_created_and_reads_back(broker: Broker) -> None:
    topic = _name("compact")
    await create_topic(broker, topic, 2, {"cleanup.policy": "compact"})
    assert (await topic_configs(broker, topic)).get("cleanup.policy") == "compact"

    rounds = 3
    for round_ in range(rounds):
        await produce(broker, topic, keyed_records(KEYS, KEYS, round_))
    got = await _read_all(broker, topic, expect=KEYS * rounds)
    assert len(got) == KEYS * rounds
    latest = {record.key: record.value for record in got}
    assert latest == {f"k{i}".encode(): f"r{rounds - 1}-{i}".encode() for i in range(KEYS)}


async def test_compaction_removes_superseded_records(broker: Broker) -> None:
    topic = _name("compacted")
    await create_topic(broker, topic, 1, COMPACT)
    for round_ in range(3):
        await produce(broker, topic, keyed_records(KEYS, KEYS, round_))
        await asyncio.sleep(0.2)  # past segment.ms, so the next write rolls a segment
    await produce(broker, topic, [(b"roll", b"roll")])
    with feature(broker, "compaction"):
        wait = 3.0 if "compaction" in GAPS.get(broker.name, {}) else 30.0
        deadline = time.monotonic() + wait
        while True:
            got = await _read_all(broker, topic, expect=KEYS + 1, settle=0.2)
            stale = [r for r in got if r.value is not None and not r.value.startswith(b"r2-")
                     and r.key != b"roll"]
            if not stale:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(stale)} superseded records left after {wait:.0f} s")
            await asyncio.sleep(0.5)
    assert {r.key for r in got} >= {f"k{i}".encode() for i in range(KEYS)}


# -- producers -----------------------------------------------------------------------------

async def test_idempotent_producer(broker: Broker) -> None:
    topic = _name("idem")
    await create_topic(broker, topic, 1)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True,
                                request_timeout_ms=10_000)
    try:
        with feature(broker, "idempotence"):
            await asyncio.wait_for(producer.start(), 15)
            await producer.send_and_wait(topic, b"once", key=b"k")
    finally:
        await producer.stop()
    assert [r.value for r in await _read_all(broker, topic, expect=1)] == [b"once"]


async def test_transactions_hide_aborted_records(broker: Broker) -> None:
    topic = _name("tx")
    await create_topic(broker, topic, 1)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap,
                                transactional_id=_name("txid"), request_timeout_ms=10_000)
    try:
        with feature(broker, "transactions"):
            await asyncio.wait_for(producer.start(), 15)
            async with producer.transaction():
                await producer.send_and_wait(topic, b"committed", key=b"k")
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aborted", key=b"k")
            await producer.abort_transaction()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=None,
                                auto_offset_reset="earliest", isolation_level="read_committed")
    await consumer.start()
    try:
        got = await read(consumer, 1, timeout=10.0, settle=1.0)
    finally:
        await consumer.stop()
    assert [r.value for r in got] == [b"committed"]


# -- admin ---------------------------------------------------------------------------------

async def test_create_partitions(broker: Broker) -> None:
    topic = _name("grow")
    await create_topic(broker, topic, 2)
    async with admin_client(broker) as admin:
        with feature(broker, "create_partitions"):
            await admin.create_partitions({topic: NewPartitions(4)})
            # the new partitions reach the broker's metadata a moment after the answer
            deadline = time.monotonic() + 10.0
            while True:
                (described,) = await admin.describe_topics([topic])
                if len(described["partitions"]) == 4 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert len(described["partitions"]) == 4


async def test_alter_configs(broker: Broker) -> None:
    topic = _name("alter")
    await create_topic(broker, topic, 1)
    async with admin_client(broker) as admin:
        with feature(broker, "alter_configs"):
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "123456"})])
            assert (await topic_configs(broker, topic)).get("retention.ms") == "123456"


async def test_describe_named_configs(broker: Broker) -> None:
    topic = _name("named")
    await create_topic(broker, topic, 1, {"cleanup.policy": "compact"})
    with feature(broker, "describe_config_names"):
        configs = await topic_configs(broker, topic, ["cleanup.policy"])
        assert configs == {"cleanup.policy": "compact"}
    assert broker.running


async def test_delete_records(broker: Broker) -> None:
    topic = _name("trim")
    await create_topic(broker, topic, 1)
    await produce(broker, topic, [(None, b"r%d" % i) for i in range(5)])
    async with admin_client(broker) as admin:
        with feature(broker, "delete_records"):
            low = await asyncio.wait_for(
                admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(2)}), 10)
            assert low == {TopicPartition(topic, 0): 2}
    assert broker.running
    if "delete_records" not in GAPS.get(broker.name, {}):
        assert [r.value for r in await _read_all(broker, topic, expect=3)] == [b"r2", b"r3",
                                                                               b"r4"]


async def test_delete_topic(broker: Broker) -> None:
    topic = _name("gone")
    await create_topic(broker, topic, 1)
    async with admin_client(broker) as admin:
        await admin.delete_topics([topic])
        deadline = time.monotonic() + 15
        while topic in await admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} still listed"
            await asyncio.sleep(0.2)


# -- restart -------------------------------------------------------------------------------

async def test_restart_keeps_port_and_durable_data(broker: Broker) -> None:
    """On a broker of its own: records and committed offsets survive a restart if durable."""
    own = type(broker)()
    await asyncio.to_thread(own.start)
    try:
        topic, group = _name("restart"), _name("group")
        await create_topic(own, topic, 4)
        await produce(own, topic, keyed_records(100, 10))
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=own.bootstrap, group_id=group,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    **group_options(own))
        await consumer.start()
        try:
            assert len(await read(consumer, 100)) == 100
            await consumer.commit()
        finally:
            await consumer.stop()

        port = own.port
        await asyncio.to_thread(own.restart)
        assert own.running and own.port == port

        async with admin_client(own) as admin:
            topics = await admin.list_topics()
        if not own.durable:
            assert topic not in topics
            return
        assert topic in topics
        assert len(await _read_all(own, topic, expect=100)) == 100
        await produce(own, topic, [(b"k1", b"after-restart")])
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=own.bootstrap, group_id=group,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    **group_options(own))
        await consumer.start()
        try:
            assert [r.value for r in await read(consumer, 1, settle=1.0)] == [b"after-restart"]
        finally:
            await consumer.stop()
    finally:
        await asyncio.to_thread(own.stop)
