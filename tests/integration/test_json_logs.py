"""``ANOMON_LOG_FORMAT=json``: every line a worker writes is a JSON object, the libraries' too.

A worker runs at DEBUG (so aiokafka, and Faust where the worker runs on it,
speak), takes a record and a rejected one, and stops; each line of its output
must parse as JSON with the documented keys, and lines from anomon and aiokafka
must be among them.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from workerkit import History, Names, days_ago, event_records, send

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_worker_logs_are_json_lines_from_every_library(broker: Any, workers: Any) -> None:
    names = Names()
    worker = workers(names, log_format="json", log_level="DEBUG", session_timeout_s=6,
                     sweep_interval_s=600)
    worker.wait_ready(90)
    h = History(days_ago(5))
    h.add("c-1", "purchase", 1, amount=10.0)
    send(broker, names.input, [*event_records(h.events), (b"c-2", b"{oops", [])])
    worker.wait_for(lambda s: s["processed"] == 1 and s["dead_lettered"] == 1)
    assert worker.stop() == 0
    lines = [line for line in worker.log_text().splitlines() if line.strip()]
    parsed, broken = [], []
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            broken.append(line)
    assert not broken, f"{len(broken)} of {len(lines)} lines are not JSON:\n" + "\n".join(
        broken[:10])
    assert all({"ts", "level", "logger", "message"} <= set(p) for p in parsed)
    loggers = {p["logger"].split(".")[0] for p in parsed}
    # the Kafka client's own lines (and Faust's or mode's, where the worker runs on Faust)
    assert {"anomon", "aiokafka"} <= loggers, loggers
    rejected = [p for p in parsed if p.get("fields", {}).get("reason") == "invalid_json"]
    assert rejected, "the dead-lettered record's line carries its fields"
