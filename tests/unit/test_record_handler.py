"""The worker's per-record path without Faust or a broker: outcomes, failures and accounting.

:class:`~anomon.worker.records.RecordHandler` runs on hand-made records with a
plain ``dict`` as the state store, for the paths a broker test cannot easily
provoke: an engine that raises, and a stored state that cannot be read.
"""

from __future__ import annotations

from typing import Any

import orjson

from anomon.core.engine import Engine
from anomon.core.state import CustomerState
from anomon.worker.records import InputRecord, OutputTopics, RecordHandler
from anomon.worker.stats import WorkerStats

TOPICS = OutputTopics(alerts="alerts", dlq="dlq", late="late")


def _event(**fields: Any) -> bytes:
    return orjson.dumps({"event_id": "e1", "customer_id": "c1", "type": "purchase",
                         "ts": "2026-01-05T10:00:00+00:00", "amount": 10.0, **fields})


def _record(value: bytes | None, *, key: bytes | None = b"c1", offset: int = 0) -> InputRecord:
    return InputRecord("events", 0, offset, key, value, 1_700_000_000.0, [("trace", b"t1")])


class BrokenEngine(Engine):
    def process(self, state: Any, event: Any, partition: int = -1) -> Any:
        raise ZeroDivisionError("boom")


def _handler(store: Any, engine: Engine | None = None) -> RecordHandler:
    return RecordHandler(engine or Engine(), store, WorkerStats(), TOPICS)


def test_an_engine_failure_dead_letters_the_record() -> None:
    handler = _handler({}, BrokenEngine())
    out = handler.handle(_record(_event(), offset=5))
    assert len(out) == 1 and out[0].topic == "dlq"
    value = orjson.loads(out[0].value)
    assert value["reason"] == "processing_error" and value["stage"] == "process"
    assert value["offset"] == 5 and "ZeroDivisionError" in value["detail"]
    headers = dict(out[0].headers or [])
    assert headers["anomon.dlq.error.class"] == b"ZeroDivisionError"
    stats = handler.stats.as_dict()
    assert stats["in"] == 1 and stats["dead_lettered_by_reason"] == {"processing_error": 1}
    assert stats["accounted"] and stats["processed"] == 0


def test_a_processed_event_is_stored_and_a_replayed_one_is_a_duplicate() -> None:
    store: dict[str, CustomerState] = {}
    seen: list[float] = []
    handler = _handler(store)
    handler.on_processed = lambda state, ts: seen.append(ts)
    assert handler.handle(_record(_event(), key=None)) == []
    assert store["c1"].n_purchases == 1 and store["c1"].partition == 0
    assert handler.stats.as_dict()["key_mismatch"] == 1  # no key is mis-keyed too
    assert handler.handle(_record(_event(), offset=1)) == []
    stats = handler.stats.as_dict()
    assert stats["processed"] == 1 and stats["duplicate"] == 1 and stats["accounted"]
    assert len(seen) == 1 and handler.last_event_ts == seen[0]


class UnreadableStore(dict[str, CustomerState]):
    """A store whose stored state could not be decoded: it counts a reset and answers None."""

    def __init__(self, stats: WorkerStats) -> None:
        super().__init__()
        self.stats = stats

    def get(self, customer_id: str, default: Any = None) -> CustomerState | None:
        if customer_id not in self:
            self.stats.record_state_reset()
        return super().get(customer_id, default)


def test_an_unreadable_state_is_counted_and_the_customer_starts_fresh() -> None:
    stats = WorkerStats()
    handler = RecordHandler(Engine(), UnreadableStore(stats), stats, TOPICS)
    assert handler.handle(_record(_event())) == []
    counters = stats.as_dict()
    assert counters["processed"] == 1 and counters["state_resets"] == 1


def test_a_late_event_goes_to_the_late_topic_unchanged() -> None:
    store: dict[str, CustomerState] = {}
    handler = _handler(store)
    handler.handle(_record(_event(event_id="e1", ts="2026-03-01T10:00:00+00:00")))
    late = _event(event_id="e0", ts="2026-01-01T10:00:00+00:00")
    out = handler.handle(_record(late, offset=1))
    assert [(o.topic, o.value, o.headers) for o in out] == [("late", late, [("trace", b"t1")])]
    assert handler.stats.as_dict()["late"] == 1 and store["c1"].n_purchases == 1


def test_an_undecodable_record_is_dead_lettered_with_its_reason() -> None:
    handler = _handler({})
    out = handler.handle(_record(b"{not json", offset=3))
    assert [o.topic for o in out] == ["dlq"] and handler.last_event_ts is None
    assert orjson.loads(out[0].value)["reason"] == "invalid_json"
    assert handler.stats.as_dict()["dead_lettered_by_reason"] == {"invalid_json": 1}
