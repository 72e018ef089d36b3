"""The worker's life: health and readiness endpoints, stopping with the broker gone, a parent.

Supervisors rely on these: ``/livez`` while the loop runs, ``/readyz`` only once
the group is joined and the state restored, ``/stats`` naming the process, a
SIGTERM honoured within seconds whatever the broker does, and a worker that does
not outlive the process named by ``ANOMON_PARENT_PID``.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from brokers import broker_named
from workerkit import (
    History,
    Names,
    WorkerFactory,
    WorkerProcess,
    days_ago,
    free_port,
    send_events,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def status(port: int, path: str) -> int | None:
    """The HTTP status of ``GET path`` (None: no answer yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return None


def test_readyz_turns_ready_after_the_group_is_joined_and_livez_answers_meanwhile(
        broker: Any, workers: WorkerFactory) -> None:
    worker = workers(Names(), sweep_interval_s=600)
    seen: list[tuple[int | None, bool | None]] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ready = status(worker.port, "/readyz")
        stats = worker.stats() if ready is not None else None
        seen.append((ready, stats["ready"] if stats else None))
        if ready == 200:
            break
        time.sleep(0.05)
    answered = [s for s in seen if s[0] is not None]
    assert answered and answered[-1] == (200, True), seen[-5:]
    # every answer before ready said so: 503, and /stats agreed, except that
    # readiness may turn between the two requests of the poll just before the last
    before = answered[:-1]
    assert all(code == 503 for code, _ in before), before
    turned = [i for i, (_, ready) in enumerate(before) if ready]
    assert turned in ([], [len(before) - 1]), before
    assert status(worker.port, "/livez") == 200
    stats = worker.stats()
    assert stats["pid"] == worker.pid and stats["ready"]
    assert worker.stop() == 0


@pytest.mark.slow  # over 10 s: in `make test`, not the `make check` loop
def test_sigterm_is_honoured_within_seconds_with_the_broker_gone(
        tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    with broker_named("tansu") as own:
        worker = WorkerProcess(worker_env(own, Names(), tmp_path, sweep_interval_s=600),
                               tmp_path / "worker.log", tmp_path)
        try:
            worker.wait_ready(60)
            own.stop()
            time.sleep(1.0)
            began = time.monotonic()
            code = worker.stop(timeout=30)
            took = time.monotonic() - began
        finally:
            worker.stop()
    assert code == 0, worker.log_tail()
    assert took < 10, f"SIGTERM took {took:.1f} s with the broker gone"


def test_the_worker_stops_when_its_parent_is_gone(broker: Any, workers: WorkerFactory) -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        worker = workers(Names(), sweep_interval_s=600, parent_pid=parent.pid)
        worker.wait_ready(90)
    finally:
        parent.kill()
        parent.wait(10)
    try:
        worker.proc.wait(15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker outlived its parent:\n{worker.log_tail()}")
    assert worker.proc.returncode == 0
    assert "parent process gone" in worker.log_text()


def test_profile_endpoint_on_an_address_of_its_own(broker: Any, workers: WorkerFactory) -> None:
    names = Names()
    profile_port = free_port()
    worker = workers(names, sweep_interval_s=600, profile_port=profile_port)
    worker.wait_ready(90)
    h = History(days_ago(20))
    for day in (1, 5, 9):
        h.add("someone", "purchase", day, amount=20.0)
    send_events(broker, names.input, h.events)
    worker.wait_for(lambda s: s["processed"] == 3)
    assert status(profile_port, "/customers/someone") == 200
    assert status(profile_port, "/customers/nobody") == 404
    assert status(worker.port, "/customers/someone") == 404  # not served with /metrics
    assert status(profile_port, "/metrics") == 404
    assert status(worker.port, "/metrics") == 200

