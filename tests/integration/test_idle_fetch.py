"""An idle worker fetches slowly, and the first records after a quiet spell wake it at once.

With nothing to read, the worker's fetches wait up to ``fetch_idle_wait_ms`` for
one byte instead of ``fetch_wait_ms`` for ``fetch_min_bytes`` (see
``anomon.worker.fetch_pace``): ``/stats`` says so. Records sent then are
handled without waiting out the idle fetch, and the fetches go back to their
busy pace until the next quiet second.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from workerkit import History, Names, WorkerFactory, days_ago, send_events

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_an_idle_worker_wakes_on_the_first_records(broker: Any, workers: WorkerFactory) -> None:
    names = Names()
    worker = workers(names, fetch_idle_wait_ms=5000)
    worker.wait_ready()
    quiet = worker.wait_for(lambda s: s["fetch_idle"], timeout=15)
    assert quiet["fetch_wakes"] == 0
    h = History(days_ago(10))
    for day in range(3):
        h.add("woken", "purchase", day, amount=20.0)
    sent = time.monotonic()
    send_events(broker, names.input, h.in_time_order())
    woke = worker.wait_for(lambda s: s["processed"] == 3, timeout=15)
    took = time.monotonic() - sent
    # an idle fetch is answered when a record arrives, not at its 5 s deadline
    assert took < 3.0, f"{took:.1f} s to handle the first records after a quiet spell"
    assert woke["fetch_wakes"] == 1
    again = worker.wait_for(lambda s: s["fetch_idle"], timeout=15)
    assert again["fetch_wakes"] == 1 and again["processed"] == 3
