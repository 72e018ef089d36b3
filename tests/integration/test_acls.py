"""A locked-down cluster: Apache Kafka with an authorizer, anomon granted exactly its ACL list.

The broker (:class:`~brokers.authorized_kafka.AuthorizedKafkaBroker`) runs
KRaft's ``StandardAuthorizer`` and denies whatever no ACL allows. Its
PLAINTEXT listener is the super user's: the test creates the topics and the
ACLs there, as a cluster's owner would. The worker connects over
SASL_PLAINTEXT as ``anomon``, which holds exactly
:func:`anomon.kafka.acls.worker_acls` (the list ``config/README.md`` shows):
no CREATE anywhere, no right on any other topic or group.

Apache Kafka only: Tansu has no authorizer.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import TopicAuthorizationFailedError

from anomon.kafka.acls import (
    OPERATION_CODES,
    PATTERN_CODES,
    RESOURCE_CODES,
    Acl,
    forward_acls,
    worker_acls,
)
from anomon.kafka.security import kafka_auth
from anomon.kafka.topics import TopicSetupError, check_topics, ensure_topics
from anomon.ops.forward import forward_async
from anomon.settings import Settings
from brokers import BrokerUnavailable
from brokers.authorized_kafka import AuthorizedKafkaBroker, grant
from workerkit import (
    ALLOW_MISSING_ENV,
    History,
    Names,
    WorkerProcess,
    broker_names,
    days_ago,
    event_records,
    read_topic,
    send,
    worker_env,
)

# a secured Apache Kafka with an authorizer of its own: in `make test`, not `make check`
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

USER = "anomon"
PRINCIPAL = f"User:{USER}"
PASSWORD = secrets.token_hex(16)
PAGER = "pager"  # the forwarder's principal
PAGER_PASSWORD = secrets.token_hex(16)
#: the demo's and tests' session timeout: quick group joins (Kafka's default is 45 s)
SESSION_TIMEOUT_S = "6"


@pytest.fixture(scope="module")
def cluster() -> Iterator[AuthorizedKafkaBroker]:
    if "kafka" not in broker_names():
        pytest.skip("Apache Kafka is not among the brokers of this run; Tansu has no authorizer")
    broker = AuthorizedKafkaBroker(users={USER: PASSWORD, PAGER: PAGER_PASSWORD}, heap="384m")
    try:
        broker.start()
    except BrokerUnavailable as err:
        if os.environ.get(ALLOW_MISSING_ENV) == "1":
            pytest.skip(f"SKIPPED, NOT TESTED ON APACHE KAFKA: {err}")
        pytest.fail(f"Apache Kafka with an authorizer could not be had here: {err}",
                    pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


def sasl(cluster: AuthorizedKafkaBroker) -> dict[str, str]:
    """``anomon``'s security settings (SCRAM over the SASL_PLAINTEXT listener)."""
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": USER, "sasl_password": PASSWORD}


def settings_for(names: Names, broker: str, **extra: Any) -> Settings:
    return Settings(broker=broker, app_id=names.app_id, input_topic=names.input,
                    dlq_topic=names.dlq, late_topic=names.late, alerts_topic=names.alerts,
                    erasure_topic=names.erasure, partitions=4, **extra)


def bindings(acls: list[Acl]) -> list[tuple[int, str, int, int]]:
    return [(RESOURCE_CODES[a.resource], a.name, PATTERN_CODES[a.pattern], OPERATION_CODES[op])
            for a in acls for op in a.operations]


def prepared(cluster: AuthorizedKafkaBroker,
             edit: Callable[[list[Acl], Names], list[Acl]] = lambda acls, names: acls,
             **extra: Any) -> tuple[Names, Settings]:
    """Topics created by the super user; ``anomon`` granted its list (changed by ``edit``)."""
    names = Names()
    owner = settings_for(names, cluster.url, **extra)
    asyncio.run(ensure_topics(owner))
    grant(cluster.bootstrap, PRINCIPAL, bindings(edit(worker_acls(owner), names)))
    locked = settings_for(names, f"kafka://{cluster.bootstrap_for('SASL_PLAINTEXT')}",
                          topics="check", **sasl(cluster), **extra)
    return names, locked


def check_outcome(locked: Settings, settle_s: float = 15.0) -> str:
    """``ok`` or the one-line error of :func:`check_topics`, once the new ACLs are in force.

    A broker applies new ACLs a moment after CreateAcls answers: the answer that
    first mentions neither the input topic nor the group (granted in every case) wins.
    """
    deadline = time.monotonic() + settle_s
    while True:
        try:
            asyncio.run(check_topics(locked))
            return "ok"
        except TopicSetupError as err:
            message = str(err)
        if locked.input_topic + ":" not in message or time.monotonic() > deadline:
            return message
        time.sleep(0.3)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_worker_starts_and_processes_with_only_the_listed_acls(
        cluster: AuthorizedKafkaBroker, tmp_path: Path, figures: Any, guarantee: str) -> None:
    names, locked = prepared(cluster, processing_guarantee=guarantee)
    assert check_outcome(locked) == "ok"
    target = SimpleNamespace(url=locked.broker, name="kafka")
    (tmp_path / "models").mkdir()

    # anomon may not create topics: with ANOMON_TOPICS=create it stops and names the fix
    env = worker_env(target, names, tmp_path, session_timeout_s=SESSION_TIMEOUT_S,
                     processing_guarantee=guarantee, **sasl(cluster))
    done = subprocess.run([sys.executable, "-m", "anomon.worker.worker"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    refusal = [line for line in done.stderr.splitlines() if "not allowed to create" in line]
    assert len(refusal) == 1 and "ANOMON_TOPICS=check" in refusal[0], done.stderr[-2000:]

    # with ANOMON_TOPICS=check it starts and processes
    env["ANOMON_TOPICS"] = "check"
    worker = WorkerProcess(env, tmp_path / "worker.log", tmp_path)
    try:
        ready_s = worker.wait_ready(120)
        h = History(days_ago(40))
        for month in range(2):
            h.add("debtor", "payment", 10 * month, amount=50.0, status="paid")
        for i in range(3):
            h.add("debtor", "payment", 25 + 3 * i, amount=50.0, status="overdue",
                  days_overdue=10)
        h.add("bystander", "interaction", 30, kind="visit")
        records = [*event_records(h.in_time_order()), (b"junk", b"{not json", [])]
        send(cluster, names.input, records)  # a producer with its own rights
        stats = worker.wait_for(lambda s: s["processed"] == len(h.events)
                                and s["dead_lettered"] == 1, timeout=60)
        alerts = [orjson.loads(r.value) for r in read_topic(
            cluster, names.alerts, expect=1, isolation_level="read_committed")]
        assert [(a["customer_id"], a["kind"]) for a in alerts] == [("debtor", "payment_arrears")]
        assert len(read_topic(cluster, names.dlq, expect=1,
                              isolation_level="read_committed")) == 1
        assert stats["accounted"]
        log = worker.log_text()
        assert "TopicAuthorizationFailed" not in log and "GroupAuthorizationFailed" not in log
        figures(guarantee=guarantee, acls=len(bindings(worker_acls(locked))), ready_s=ready_s,
                processed=stats["processed"], dead_lettered=stats["dead_lettered"])
    finally:
        assert worker.stop() == 0, worker.log_tail()

    # and the authorizer does deny: the same principal cannot read a topic not on its list
    other = Names()
    asyncio.run(ensure_topics(settings_for(other, cluster.url)))

    async def read_other() -> None:
        consumer = AIOKafkaConsumer(other.input, bootstrap_servers=locked.broker[8:],
                                    group_id=None, auto_offset_reset="earliest",
                                    **kafka_auth(locked))
        await consumer.start()
        try:
            await consumer.getmany(timeout_ms=3000)
        finally:
            await consumer.stop()

    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(read_other())


def _without_late(acls: list[Acl], names: Names) -> list[Acl]:
    return [a for a in acls if a.name != names.late]


def _without_describe_configs(acls: list[Acl], names: Names) -> list[Acl]:
    return [Acl(a.resource, a.name, tuple(o for o in a.operations if o != "DESCRIBE_CONFIGS"))
            if a.name == names.changelog else a for a in acls]


@pytest.mark.parametrize(("edit", "expect"), [
    (_without_late, "not allowed to describe topic events-late-"),
    (_without_describe_configs, "grant DESCRIBE_CONFIGS on it"),
], ids=["no right on the late topic", "no DESCRIBE_CONFIGS on the changelog"])
def test_each_missing_acl_is_named_in_one_line(cluster: AuthorizedKafkaBroker,
                                               edit: Callable[[list[Acl], Names], list[Acl]],
                                               expect: str) -> None:
    _, locked = prepared(cluster, edit)
    message = check_outcome(locked)
    assert expect in message and "config/README.md" in message and "\n" not in message


def test_forwarder_runs_with_only_its_listed_acls(cluster: AuthorizedKafkaBroker) -> None:
    from anomon.core.alerts import Alert, alert_id, fingerprint

    names = Names()
    owner = settings_for(names, cluster.url)
    asyncio.run(ensure_topics(owner, with_changelog=False))
    grant(cluster.bootstrap, f"User:{PAGER}", bindings(forward_acls(owner)))
    fp = fingerprint("c-1", "drop_off")
    alert = Alert.model_validate({
        "alert_id": alert_id(fp, 1, "firing"), "fingerprint": fp, "customer_id": "c-1",
        "kind": "drop_off", "status": "firing", "severity": "critical", "score": 0.9995,
        "threshold": 0.998, "ts": "2026-02-01T00:00:00+00:00", "episode": 1,
        "segment": {"tier": "high", "stage": "loyal"}, "reasons": [], "action": "Call.",
        "model": {"name": "rhythm-gamma", "version": "1.1"}, "events": []})
    send(cluster, names.alerts, [(b"c-1", alert.to_bytes(), [])])
    received: list[Any] = []

    async def scenario() -> None:
        async def handle(request: web.Request) -> web.Response:
            received.append(await request.json())
            return web.json_response({}, status=202)

        app = web.Application()
        app.router.add_post("/v2/enqueue", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            settings = settings_for(
                names, f"kafka://{cluster.bootstrap_for('SASL_PLAINTEXT')}", topics="check",
                security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                sasl_username=PAGER, sasl_password=PAGER_PASSWORD, forward_format="pagerduty",
                forward_routing_key="k", forward_metrics_port=0,
                forward_url=f"http://127.0.0.1:{port}/v2/enqueue")
            deadline = time.monotonic() + 15
            while True:  # until the new ACLs are in force
                try:
                    report = await forward_async(settings, from_beginning=True, limit=1)
                    break
                except TopicSetupError:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.3)
            assert report.delivered == 1
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    assert [e["dedup_key"] for e in received] == [fp]
