"""Real brokers for the integration tests, and the ``integration`` mark on every test here.

``broker`` is a session-wide fixture run once per broker named in
``ANOMON_TEST_BROKERS`` (comma list, default ``tansu,kafka``): each test that takes
it runs on every one of them, ids ``[tansu]`` and ``[kafka]``.

Apache Kafka needs Java 17+ and Maven (to fetch its jars from Maven Central once).
When it cannot be had, its tests fail and say why, unless
``ANOMON_ALLOW_MISSING_KAFKA=1``: then they are skipped, and the run's summary
says so in capitals.

``workers`` starts stream workers as subprocesses (see ``workerkit.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from brokers import Broker, BrokerUnavailable, broker_named
from brokers.kafka_libs import KAFKA_VERSION, fetch_kafka, is_fetched
from brokers.tansu import tansu_version
from workerkit import (
    ALLOW_MISSING_ENV,
    BROKERS_ENV,
    Names,
    WorkerProcess,
    broker_names,
    worker_env,
)

HERE = Path(__file__).resolve().parent

#: What the summary at the end of the run reports about the brokers.
_NOTES: list[str] = []
_MISSING: list[str] = []
#: Figures the tests report (events in/processed/dead-lettered, takeover times...).
_FIGURES: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under this directory ``integration``."""
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which brokers ran, how fast they started, and (loudly) which could not be had."""
    if _NOTES:
        terminalreporter.section("brokers")
        for note in _NOTES:
            terminalreporter.write_line(note)
    if _FIGURES:
        terminalreporter.section("figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
    for reason in _MISSING:
        terminalreporter.section("BROKER MISSING", sep="!", red=True, bold=True)
        terminalreporter.write_line(reason, red=True, bold=True)


def _start(name: str) -> Broker:
    """Start broker ``name``; fetching Kafka's jars first, timed apart from its start."""
    fetch_note = ""
    if name == "kafka":
        cached = is_fetched(KAFKA_VERSION)
        began = time.monotonic()
        fetch_kafka(KAFKA_VERSION)
        fetch_note = ("jars cached" if cached else
                      f"jars fetched in {time.monotonic() - began:.1f} s")
    broker = broker_named(name)
    broker.start()
    version = tansu_version() if name == "tansu" else KAFKA_VERSION
    details = ", ".join(filter(None, [f"ready in {broker.ready_after or 0:.2f} s", fetch_note]))
    _NOTES.append(f"{name} {version} on {broker.bootstrap}: {details}")
    return broker


@pytest.fixture(scope="session", params=broker_names())
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """A running broker on loopback, shared by the whole session (one per kind)."""
    name = str(request.param)
    try:
        started = _start(name)
    except BrokerUnavailable as err:
        missing = f"{name} broker could not be had here: {err}"
    else:
        missing = ""
    if missing:
        if name == "kafka" and os.environ.get(ALLOW_MISSING_ENV) == "1":
            reason = f"SKIPPED, NOT TESTED ON APACHE KAFKA ({ALLOW_MISSING_ENV}=1): {missing}"
            _MISSING.append(reason)
            pytest.skip(reason)
        _MISSING.append(missing)
        pytest.fail(f"{missing}\nInstall what is missing, or set {ALLOW_MISSING_ENV}=1 to skip "
                    f"the Apache Kafka tests, or {BROKERS_ENV}=tansu to run on Tansu only.",
                    pytrace=False)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def workers(broker: Any, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory of worker subprocesses; all are stopped at the end of the test.

    ``workers(names, **settings)``: settings are ``ANOMON_*`` overrides
    (``sweep_interval_s=1.0`` sets ``ANOMON_SWEEP_INTERVAL_S``); ``source``: a directory
    to run anomon from instead (``PYTHONPATH``, e.g. the compiled build).
    """
    started: list[WorkerProcess] = []
    (tmp_path / "models").mkdir(exist_ok=True)

    def start(names: Names, source: Path | None = None, **settings: Any) -> WorkerProcess:
        env = worker_env(broker, names, tmp_path, **settings)
        if source is not None:
            env["PYTHONPATH"] = str(source)
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log", tmp_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``figures(events_in=..., processed=...)``: report this test's figures in the summary."""

    def note(**values: Any) -> None:
        text = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in values.items())
        _FIGURES.append(f"{request.node.name}: {text}")

    return note
