"""Record handling without a broker: outcomes, failures and accounting.

:class:`~anomon.worker.handler.RecordHandler` runs on hand-made records against a
plain ``dict`` store, and against the worker's own
:class:`~anomon.worker.store.PartitionStore`, for the paths a broker test cannot
easily provoke: an engine that raises, and a stored state that cannot be read.
"""

from __future__ import annotations

from typing import Any

import orjson

from anomon.core.decoding import EventDecoder
from anomon.core.engine import Engine
from anomon.core.state import CustomerState
from anomon.worker.handler import InputRecord, OutputTopics, RecordHandler
from anomon.worker.stats import WorkerStats
from anomon.worker.store import MemoryBackend, PartitionStore
from anomon.worker.sweep import SweepClock

TOPICS = OutputTopics(alerts="alerts", dlq="dlq", late="late")


def _event(**fields: Any) -> bytes:
    return orjson.dumps({"event_id": "e1", "customer_id": "c1", "type": "purchase",
                         "ts": "2026-01-05T10:00:00+00:00", "amount": 10.0, **fields})


def _record(value: bytes | None, key: bytes | None = b"c1", offset: int = 0,
            partition: int = 0) -> InputRecord:
    return InputRecord("events", partition, offset, key, value, 1_700_000_000_000,
                       [("origin", b"test")])


def _handler(engine: Engine | None = None) -> RecordHandler:
    return RecordHandler(engine or Engine(), EventDecoder(), WorkerStats(), TOPICS,
                         SweepClock("wall"))


class BrokenEngine(Engine):
    def process(self, state: Any, event: Any, partition: int = -1) -> Any:
        raise ZeroDivisionError("boom")


def test_an_engine_failure_dead_letters_the_record() -> None:
    handler = _handler(BrokenEngine())
    out = handler.handle(_record(_event(), offset=5), {})
    assert len(out) == 1 and out[0].topic == "dlq" and out[0].partition == 0
    value = orjson.loads(out[0].value)
    assert value["reason"] == "processing_error" and value["stage"] == "process"
    assert value["offset"] == 5 and "ZeroDivisionError" in value["detail"]
    assert value["ts"].startswith("2023-11-14")
    headers = dict(out[0].headers or [])
    assert headers["anomon.dlq.error.class"] == b"ZeroDivisionError"
    assert headers["origin"] == b"test"
    stats = handler.stats.as_dict()
    assert stats["in"] == 1 and stats["dead_lettered_by_reason"] == {"processing_error": 1}
    assert stats["accounted"] and stats["processed"] == 0


def test_outcomes_on_a_plain_dict_store() -> None:
    handler = _handler()
    store: dict[str, CustomerState] = {}
    assert handler.handle(_record(_event()), store) == []
    assert store["c1"].n_purchases == 1 and store["c1"].partition == 0
    assert handler.handle(_record(_event(), offset=1), store) == []  # the same event id
    late = _event(event_id="e0", ts="2025-12-01T10:00:00+00:00")
    out = handler.handle(_record(late, offset=2), store)
    assert [(o.topic, o.key, o.value) for o in out] == [("late", b"c1", late)]
    bad = handler.handle(_record(b"[1]", offset=3), store)
    assert [o.topic for o in bad] == ["dlq"]
    stats = handler.stats.as_dict()
    assert (stats["processed"], stats["duplicate"], stats["late"], stats["dead_lettered"]) == (
        1, 1, 1, 1)
    assert stats["accounted"] and stats["key_mismatch"] == 0
    assert handler.clock.next_offset == {0: 4}


def test_a_batch_gives_what_its_records_give_one_at_a_time() -> None:
    values = [_event(), b"[1]", _event(), _event(event_id="e0", ts="2025-12-01T10:00:00+00:00"),
              b"", _event(event_id="e2", type="complaint", severity=5), _event(event_id="e3")]
    records = [_record(v, offset=i) for i, v in enumerate(values)]
    one, batch = _handler(), _handler()
    one_store: dict[str, CustomerState] = {}
    batch_store: dict[str, CustomerState] = {}
    one_out = [o for r in records for o in one.handle(r, one_store)]
    batch_out: list[Any] = []
    batch.handle_batch(records, batch_store, batch_out)
    assert [(o.topic, o.key, o.partition) for o in batch_out] == [
        (o.topic, o.key, o.partition) for o in one_out] == [
        ("dlq", b"c1", 0), ("late", b"c1", 0), ("dlq", b"c1", 0)]
    assert [orjson.loads(o.value)["reason"] for o in batch_out if o.topic == "dlq"] == [
        "not_an_object", "empty_value"]
    assert batch_store == one_store and batch_store["c1"].n_purchases == 2
    counts = [{k: v for k, v in h.stats.as_dict().items() if not k.endswith("_at")}
              for h in (batch, one)]
    assert counts[0] == counts[1] and counts[0]["accounted"]
    assert batch.clock.next_offset == one.clock.next_offset == {0: 7}


def test_an_unreadable_state_is_counted_and_the_customer_starts_fresh() -> None:
    handler = _handler()
    resets: list[str] = []

    def unreadable(customer_id: str, err: Exception) -> None:
        resets.append(customer_id)
        handler.stats.record_state_reset()

    store = PartitionStore(0, MemoryBackend(), unreadable)
    store.restore(b"c1", b"not a state")
    assert handler.handle(_record(_event(), key=None), store) == []
    stats = handler.stats.as_dict()
    assert stats["processed"] == 1 and stats["state_resets"] == 1 and resets == ["c1"]
    assert stats["key_mismatch"] == 1  # a record without a key is mis-keyed too
    changes = store.take_changes()
    assert list(changes) == [b"c1"]
    state = CustomerState.from_bytes(changes[b"c1"] or b"")
    assert state.n_purchases == 1 and state.partition == 0
    assert handler.handle(_record(_event(), offset=1), store) == []
    assert handler.stats.as_dict()["duplicate"] == 1
    assert store.take_changes() == {}  # a duplicate changes nothing


def test_a_restored_state_is_decoded_on_first_touch_and_written_once_per_batch() -> None:
    handler = _handler()
    source: dict[str, CustomerState] = {}
    handler.handle(_record(_event()), source)
    store = PartitionStore(2, MemoryBackend(), lambda c, e: None)
    store.restore(b"c1", source["c1"].to_bytes())
    assert store.live == {} and len(store) == 1  # restored as bytes
    for n in range(3):
        handler.handle(_record(_event(event_id=f"x{n}"), offset=n, partition=2), store)
    assert set(store.live) == {"c1"} and len(store) == 1
    changes = store.take_changes()
    assert list(changes) == [b"c1"]  # three events, one write
    assert CustomerState.from_bytes(changes[b"c1"] or b"").n_purchases == 4
    store.pop("c1")
    assert store.take_changes() == {b"c1": None} and "c1" not in store
