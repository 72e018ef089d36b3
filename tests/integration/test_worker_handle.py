"""The worker's record handling without a broker: outcomes, failures and accounting.

These run the real :class:`~anomon.worker.worker.StreamWorker` (its Faust app is
built but never started) on hand-made records, for the paths a broker test
cannot easily provoke: an engine that raises, and a stored state that cannot be
read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from anomon.core.engine import Engine
from anomon.settings import Settings
from anomon.worker.worker import StreamWorker


@dataclass
class Msg:
    """The fields of a Faust message the worker reads."""

    value: bytes | None
    key: bytes | None = b"c1"
    topic: str = "events"
    partition: int = 0
    offset: int = 0
    timestamp: float | None = 1_700_000_000.0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def _event(**fields: Any) -> bytes:
    return orjson.dumps({"event_id": "e1", "customer_id": "c1", "type": "purchase",
                         "ts": "2026-01-05T10:00:00+00:00", "amount": 10.0, **fields})


class BrokenEngine(Engine):
    def process(self, state: Any, event: Any, partition: int = -1) -> Any:
        raise ZeroDivisionError("boom")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", web_port=0)


def test_an_engine_failure_dead_letters_the_record(settings: Settings) -> None:
    worker = StreamWorker(settings, partitions=4, engine=BrokenEngine())
    out = worker.handle(Msg(_event(), offset=5))
    assert len(out) == 1 and out[0].topic is worker.dlq_topic
    value = orjson.loads(out[0].value)
    assert value["reason"] == "processing_error" and value["stage"] == "process"
    assert value["offset"] == 5 and "ZeroDivisionError" in value["detail"]
    headers = dict(out[0].headers or [])
    assert headers["anomon.dlq.error.class"] == b"ZeroDivisionError"
    stats = worker.stats.as_dict()
    assert stats["in"] == 1 and stats["dead_lettered_by_reason"] == {"processing_error": 1}
    assert stats["accounted"] and stats["processed"] == 0


def test_an_unreadable_state_is_counted_and_the_customer_starts_fresh(
        settings: Settings) -> None:
    worker = StreamWorker(settings, partitions=4)
    worker.customers.table.data[b"c1"] = b"not a state"
    with worker.customers._partition_context(0):
        out = worker.handle(Msg(_event(), key=None))
    assert out == []
    stats = worker.stats.as_dict()
    assert stats["processed"] == 1 and stats["state_resets"] == 1
    assert stats["key_mismatch"] == 1  # a record without a key is mis-keyed too
    state = worker.customers.load("c1")
    assert state is not None and state.n_purchases == 1 and state.partition == 0
    with worker.customers._partition_context(0):
        assert worker.handle(Msg(_event(), offset=1)) == []
    assert worker.stats.as_dict()["duplicate"] == 1
