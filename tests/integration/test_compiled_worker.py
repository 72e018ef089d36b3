"""The worker of the compiled build (``ANOMON_COMPILE=1``, as the image installs it) on a
real broker.

``tests/unit/test_compiled_build.py`` holds the compiled core to the Python one in a
replay; this holds the worker around it. A worker of the compiled build handles the
first half of a history and stops; a second one takes the partitions over from the
changelog (states written by compiled code, read back by it) and handles the rest.
The alerts read back are the Python engine's over the whole history, each once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from workerkit import (
    Names,
    WorkerFactory,
    alert_records_by_id,
    days_ago,
    offline_alerts,
    order_free_history,
    read_topic,
    send_events,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_compiled_worker_alerts_as_the_python_engine(broker: Any, workers: WorkerFactory,
                                                     compiled_build: Path) -> None:
    names = Names()
    events = order_free_history(days_ago(60)).in_time_order()
    expected = offline_alerts(events)  # the Python core, in this process
    half = len(events) // 2

    first = workers(names, source=compiled_build)
    first.wait_ready()
    assert first.stats()["core"] == "compiled"
    send_events(broker, names.input, events[:half])
    first.wait_for(lambda s: s["processed"] == half)
    assert first.stop() == 0

    second = workers(names, source=compiled_build)
    second.wait_ready()
    send_events(broker, names.input, events[half:])
    stats = second.wait_for(lambda s: s["processed"] == len(events) - half, timeout=60)
    assert stats["core"] == "compiled" and stats["restored_records"] > 0

    by_id = alert_records_by_id(read_topic(broker, names.alerts, expect=len(expected),
                                           settle=1.0))
    assert len(expected) > 30 and set(by_id) == set(expected)
    assert all(len(values) == 1 for values in by_id.values())
    assert {alert_id: orjson.loads(values[0]) for alert_id, values in by_id.items()} == expected
