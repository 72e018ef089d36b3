"""``ANOMON_TOPICS=check``: existing topics are described, never created; each misfit is named.

On each broker of the run: a check creates nothing; a missing topic, a
changelog with another partition count than the input topic, and a changelog
that is not compacted each stop the start with one line naming the fix; topics
made to anomon's shape pass and give the input's partition count.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from anomon.kafka.topics import TopicSetupError, ensure_topics
from anomon.settings import Settings
from workerkit import Names, bootstrap_of, create_topic, url_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _settings(broker: Any, names: Names, **extra: Any) -> Settings:
    return Settings(broker=url_of(broker), app_id=names.app_id, input_topic=names.input,
                    dlq_topic=names.dlq, late_topic=names.late, alerts_topic=names.alerts,
                    erasure_topic=names.erasure, partitions=4, **extra)


def _topics(broker: Any) -> set[str]:
    async def run() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_of(broker))
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(run())


def _make(broker: Any, names: Names, changelog_partitions: int = 4,
          changelog_configs: dict[str, str] | None = None) -> None:
    for topic in (names.input, names.dlq, names.late, names.alerts, names.erasure):
        create_topic(broker, topic)
    create_topic(broker, names.changelog, changelog_partitions,
                 {"cleanup.policy": "compact"} if changelog_configs is None else changelog_configs)


def _error(settings: Settings) -> str:
    with pytest.raises(TopicSetupError) as err:
        asyncio.run(ensure_topics(settings))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_check_creates_nothing_and_names_the_missing_topic(broker: Any) -> None:
    names = Names()
    message = _error(_settings(broker, names, topics="check"))
    assert message.startswith(f"topic {names.input} does not exist")
    assert "create-topics.sh" in message and "ANOMON_TOPICS=create" in message
    assert not {names.input, names.changelog} & _topics(broker)


def test_topics_of_anomons_shape_pass_the_check(broker: Any) -> None:
    names = Names()
    _make(broker, names)
    assert asyncio.run(ensure_topics(_settings(broker, names, topics="check"))) == 4


def test_a_changelog_with_other_partitions_is_refused(broker: Any) -> None:
    names = Names()
    _make(broker, names, changelog_partitions=2)
    message = _error(_settings(broker, names, topics="check"))
    assert f"topic {names.changelog} has 2 partitions but the input topic" in message
    assert "recreate" in message


def test_a_changelog_that_is_not_compacted_is_refused(broker: Any) -> None:
    if getattr(broker, "name", "") != "kafka":
        pytest.skip("Apache Kafka only: Tansu does not report topic configurations")
    names = Names()
    _make(broker, names, changelog_configs={"cleanup.policy": "delete"})
    message = _error(_settings(broker, names, topics="check"))
    assert "cleanup.policy=delete" in message and "set cleanup.policy=compact" in message
