"""``/livez`` and ``/readyz``: alive while serving, ready only once the group is joined and
the customer table recovered, across a restart.

A worker is started, fed customers (so its changelog has state to recover), stopped
and started again on the same data. Each start is watched from the moment the
process is spawned: ``/readyz`` must answer 503 before it answers 200 (never 200
while ``/stats`` says not ready), ``/livez`` 200 throughout once it answers, and
the restarted worker must serve customers' state when it first says ready.

Needs the worker's health endpoints: on a worker without them (404) the test
is an expected failure that says so.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from workerkit import History, Names, WorkerProcess, days_ago, event_records, send

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CUSTOMERS = 400


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0  # not listening yet


def watch_start(worker: WorkerProcess, timeout: float = 90.0) -> list[tuple[int, int, bool]]:
    """(/livez, /readyz, /stats ready) from spawn until /readyz answers 200."""
    seen: list[tuple[int, int, bool]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail()
        # /readyz first: once it answers the server listens, so /livez answers too (asked
        # the other way round, a server that starts between the two looks not alive)
        ready = _status(worker.port, "/readyz")
        live = _status(worker.port, "/livez")
        if 404 in (live, ready):
            pytest.xfail("the worker serves no /livez or /readyz yet (the worker's endpoints)")
        stats_ready = False
        if ready == 200:
            stats_ready = bool(worker.stats().get("ready"))
        seen.append((live, ready, stats_ready))
        if ready == 200:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"/readyz never answered 200 in {timeout} s: {seen[-5:]}")


def check_start(seen: list[tuple[int, int, bool]]) -> None:
    answered = [s for s in seen if s[1] != 0]
    assert answered, "the web server never answered"
    assert any(ready == 503 for _, ready, _ in answered), f"no 503 before ready: {answered[:5]}"
    first_ok = next(i for i, s in enumerate(answered) if s[1] == 200)
    assert all(s[1] == 503 for s in answered[:first_ok])
    assert answered[first_ok][2], "/readyz said 200 while /stats said not ready"
    not_alive = [s for s in answered if s[0] != 200]
    assert not not_alive, f"alive from its first answer on: {not_alive[:5]}"


@pytest.mark.slow  # over 10 s: in `make test`, not the `make check` loop
def test_readyz_is_503_until_recovered_then_200_across_a_restart(
        broker: Any, workers: Any, figures: Any) -> None:
    names = Names()
    settings = {"session_timeout_s": 6, "sweep_interval_s": 600}
    first = workers(names, **settings)
    check_start(watch_start(first))
    h = History(days_ago(30))
    for i in range(CUSTOMERS):
        h.add(f"c-{i}", "purchase", i % 20, amount=10.0 + i % 7)
    send(broker, names.input, event_records(h.events))
    first.wait_for(lambda s: s["processed"] == CUSTOMERS, timeout=60)
    assert first.stop() == 0, first.log_tail()

    began = time.monotonic()
    second = workers(names, **settings)
    seen = watch_start(second)
    check_start(seen)
    ready_s = time.monotonic() - began
    # ready means recovered: customers from every partition are served at once
    for customer in ("c-0", "c-1", "c-2", "c-3", f"c-{CUSTOMERS - 1}"):
        assert _status(second.port, f"/customers/{customer}") == 200, customer
    figures(polls=len(seen), not_ready=sum(1 for s in seen if s[1] == 503), ready_s=ready_s)
