"""A secured Kafka: SASL (PLAIN, SCRAM-SHA-512) and TLS, and failing closed when refused.

Apache Kafka only, on a broker of this module's own
(:class:`~brokers.secured_kafka.SecuredKafkaBroker`: SASL_PLAINTEXT,
SASL_SSL and SSL listeners, a user known to PLAIN and SCRAM, a certificate
signed by a CA the fixture makes with ``openssl``). Tansu has no SASL or TLS
listener to test against.

The worker is pointed at one secured listener only, so everything it does
(topic creation, the group, the changelog, recovery, alerts) goes through it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from anomon.kafka.security import kafka_auth
from anomon.settings import Settings
from brokers import BrokerUnavailable
from brokers.secured_kafka import SecuredKafkaBroker
from workerkit import (
    ALLOW_MISSING_ENV,
    History,
    Names,
    WorkerProcess,
    broker_names,
    clean_env,
    days_ago,
    event_records,
    read_topic,
    send,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

USER = "anomon"
PASSWORD = secrets.token_hex(16)


@pytest.fixture(scope="module")
def secured() -> Iterator[SecuredKafkaBroker]:
    if "kafka" not in broker_names():
        pytest.skip("Apache Kafka is not among the brokers of this run; Tansu has no SASL or TLS")
    broker = SecuredKafkaBroker(users={USER: PASSWORD}, heap="384m")
    try:
        broker.start()
    except BrokerUnavailable as err:
        if os.environ.get(ALLOW_MISSING_ENV) == "1":
            pytest.skip(f"SKIPPED, NOT TESTED ON APACHE KAFKA: {err}")
        pytest.fail(f"secured Apache Kafka could not be had here: {err}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


def security(secured: SecuredKafkaBroker, protocol: str, mechanism: str = "SCRAM-SHA-512",
             password: str = PASSWORD, cafile: bool = True) -> dict[str, str]:
    """``ANOMON_*`` security settings for ``protocol``."""
    assert secured.tls is not None
    env = {"security_protocol": protocol, "sasl_mechanism": mechanism}
    if "SASL" in protocol:
        env.update(sasl_username=USER, sasl_password=password)
    if "SSL" in protocol and cafile:
        env["ssl_cafile"] = str(secured.tls.ca_pem)
    return env


def client_options(settings: dict[str, str]) -> dict[str, Any]:
    return kafka_auth(Settings(**settings))  # type: ignore[arg-type]


def listener(secured: SecuredKafkaBroker, protocol: str) -> SimpleNamespace:
    bootstrap = secured.bootstrap_for(protocol)
    return SimpleNamespace(bootstrap=bootstrap, url=f"kafka://{bootstrap}", name="kafka")


@pytest.mark.parametrize(("protocol", "mechanism"), [
    ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
    ("SASL_SSL", "PLAIN"),
    ("SSL", "PLAIN"),
])
def test_worker_runs_over_a_secured_listener(secured: SecuredKafkaBroker, tmp_path: Path,
                                             protocol: str, mechanism: str,
                                             figures: Any) -> None:
    names = Names()
    target = listener(secured, protocol)
    settings = security(secured, protocol, mechanism)
    (tmp_path / "models").mkdir()
    env = worker_env(target, names, tmp_path, sweep_interval_s=600, session_timeout_s=6,
                     **settings)
    worker = WorkerProcess(env, tmp_path / "worker.log", tmp_path)
    try:
        ready_s = worker.wait_ready(90)
        h = History(days_ago(40))
        for month in range(2):
            h.add("debtor", "payment", 10 * month, amount=50.0, status="paid")
        for i in range(3):
            h.add("debtor", "payment", 25 + 3 * i, amount=50.0, status="overdue",
                  days_overdue=10)
        h.add("bystander", "interaction", 30, kind="visit")
        options = client_options(settings)
        send(target, names.input, event_records(h.in_time_order()), **options)
        stats = worker.wait_for(lambda s: s["processed"] == len(h.events), timeout=60)
        alerts = [orjson.loads(r.value)
                  for r in read_topic(target, names.alerts, expect=1, **options)]
        assert [(a["customer_id"], a["kind"]) for a in alerts] == [("debtor", "payment_arrears")]
        assert stats["accounted"] and stats["dead_lettered"] == 0
        assert PASSWORD not in worker.log_text()
        figures(protocol=protocol, mechanism=mechanism if "SASL" in protocol else "-",
                events_in=stats["in"], processed=stats["processed"],
                dead_lettered=stats["dead_lettered"], ready_s=ready_s)
    finally:
        assert worker.stop() == 0, worker.log_tail()


def run_worker_cli(target: SimpleNamespace, tmp_path: Path, settings: dict[str, str]
                   ) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.update({f"ANOMON_{k.upper()}": v for k, v in settings.items()})
    env.update({"ANOMON_BROKER": target.url, "ANOMON_DATA_DIR": str(tmp_path / "data"),
                "ANOMON_WEB_PORT": "0", "ANOMON_APP_ID": f"refused-{secrets.token_hex(4)}"})
    return subprocess.run([sys.executable, "-m", "anomon", "worker"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.parametrize(("case", "protocol", "listening", "expect"), [
    ("wrong SCRAM password", "SASL_PLAINTEXT", "SASL_PLAINTEXT", "authentication failed"),
    ("wrong PLAIN password", "SASL_SSL", "SASL_SSL", "authentication failed"),
    ("SASL_SSL at a plaintext listener", "SASL_SSL", "PLAINTEXT", "before TLS was set up"),
    ("plaintext at a SASL listener", "PLAINTEXT", "SASL_PLAINTEXT", "closed the connection"),
    ("certificate of an unknown CA", "SSL", "SSL", "certificate is not trusted"),
])
def test_worker_fails_closed_and_says_why(secured: SecuredKafkaBroker, tmp_path: Path,
                                          case: str, protocol: str, listening: str,
                                          expect: str) -> None:
    if case.startswith("wrong"):
        mechanism = "PLAIN" if "PLAIN password" in case else "SCRAM-SHA-512"
        settings = security(secured, protocol, mechanism, password="not" + PASSWORD)
    else:
        settings = security(secured, protocol, cafile=case != "certificate of an unknown CA")
    done = run_worker_cli(listener(secured, listening), tmp_path, settings)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "cannot connect to Kafka" in done.stderr and expect in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stderr
    assert not (tmp_path / "data" / "models.pkl").exists()  # it never got as far as running
