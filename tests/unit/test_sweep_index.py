"""The sweep index: who is due, counted by partition and segment, without a scan of everyone."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from anomon.core.engine import Engine
from anomon.core.features import add_purchase
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY
from anomon.worker.stats import WorkerStats
from anomon.worker.sweep import CHECK_EVERY, SLOT_S, UNKNOWN, SweepClock, SweepIndex
from anomon.worker.sweeper import Sweeper

SEGMENTS = [("low", "new"), ("mid", "active"), ("high", "at_risk")]


@dataclass
class Held:
    """What the index reads of a customer state."""

    customer_id: str
    next_check_ts: float
    last_ts: float
    partition: int


def _brute_due(index: SweepIndex, now: dict[int, float]) -> set[str]:
    return {c for c, (due, p, _) in index.entries.items() if p in now and due <= now[p]}


def test_due_counts_and_segments_agree_with_a_full_scan_through_any_sequence_of_changes() -> None:
    rng = random.Random(7)
    index = SweepIndex(ttl_s=40 * DAY)
    ids = [f"c{i}" for i in range(300)]
    for step in range(6000):
        cid = rng.choice(ids)
        action = rng.random()
        due = rng.choice([rng.uniform(0, 60 * DAY), float("inf"), -float("inf")])
        held = Held(cid, due, rng.uniform(0, 30 * DAY), rng.randrange(4))
        if action < 0.45:
            index.note_due(held)  # type: ignore[arg-type]
        elif action < 0.8:
            index.note(held, rng.choice(SEGMENTS))  # type: ignore[arg-type]
        elif action < 0.9:
            index.forget(cid)
        elif action < 0.99:
            index.resegment(lambda c, p: rng.choice([*SEGMENTS, None]))
        else:
            index.clear()
        if step % 50 == 0:
            now = {p: rng.uniform(0, 70 * DAY) for p in rng.sample(range(4), 3)}
            assert set(index.due(now)) == _brute_due(index, now)
            parts = set(rng.sample(range(4), 2))
            by_segment = Counter(s for _, p, s in index.entries.values() if p in parts)
            assert index.segments(parts) == by_segment
            assert index.count(parts) == sum(by_segment.values())


def test_the_ttl_makes_a_customer_due_when_it_runs_out() -> None:
    index = SweepIndex(ttl_s=10 * DAY)
    index.note_due(Held("c1", float("inf"), 5 * DAY, 0))  # type: ignore[arg-type]
    assert index.due({0: 14 * DAY}) == []
    assert index.due({0: 15 * DAY}) == ["c1"]


def test_due_comes_earliest_hour_first() -> None:
    index = SweepIndex()
    for i, hours in enumerate((30, 2, 11)):
        index.note_due(Held(f"c{i}", hours * SLOT_S, 0.0, 0))  # type: ignore[arg-type]
    assert index.due({0: 40 * SLOT_S}) == ["c1", "c2", "c0"]


class _CountingDict(dict[str, Any]):
    """A dict that counts the entries read from it, by key or by iteration."""

    reads = 0

    def __getitem__(self, key: str) -> Any:
        self.reads += 1
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        return super().get(key, default)

    def items(self) -> Any:
        for item in super().items():
            self.reads += 1
            yield item

    def values(self) -> Any:
        for value in super().values():
            self.reads += 1
            yield value


def test_a_round_and_the_counts_read_only_the_customers_whose_hour_has_begun() -> None:
    index = SweepIndex()
    index.entries = _CountingDict()
    index.note_due(Held("soon", 10.0, 0.0, 0))  # type: ignore[arg-type]
    for i in range(5000):  # due in a year
        index.note(Held(f"later{i}", 365 * DAY + i, 0.0, i % 8), ("low", "new"))  # type: ignore[arg-type]
    index.entries.reads = 0
    assert index.due(dict.fromkeys(range(8), 100.0)) == ["soon"]
    assert index.count(set(range(8))) == 5001
    assert index.segments({0})[("low", "new")] == 625
    assert index.entries.reads <= 2


def test_resegmenting_stops_at_its_deadline_and_resumes_where_it_stopped() -> None:
    index = SweepIndex()
    for i in range(200):
        index.note_due(Held(f"c{i}", 1.0, 0.0, i % 2))  # type: ignore[arg-type]
    assert index.segments({0, 1}) == Counter({UNKNOWN: 200})
    seen: list[str] = []

    def segment_of(customer_id: str, partition: int) -> tuple[str, str]:
        seen.append(customer_id)
        return ("mid", "active")

    assert index.resegment(segment_of, until=time.perf_counter() - 1.0) is False
    assert 0 < len(seen) < CHECK_EVERY
    assert index.resegment(segment_of) is True
    assert sorted(seen) == sorted(f"c{i}" for i in range(200))  # each once
    assert index.segments({0, 1}) == Counter({("mid", "active"): 200})
    assert not index.unsegmented


def test_a_customer_noted_with_a_segment_is_not_resegmented() -> None:
    index = SweepIndex()
    held = Held("c1", 1.0, 0.0, 0)
    index.note_due(held)  # type: ignore[arg-type]
    index.note(held, ("high", "loyal"))  # type: ignore[arg-type]
    assert index.resegment(lambda c, p: ("low", "new")) is True
    assert index.segments({0}) == Counter({("high", "loyal"): 1})


def test_a_pass_ends_however_fast_customers_are_noted_meanwhile() -> None:
    index = SweepIndex()
    for i in range(100):
        index.note_due(Held(f"c{i}", 1.0, 0.0, 0))  # type: ignore[arg-type]
    calls, noted = 0, 100
    while not index.resegment(lambda c, p: ("mid", "active"), until=time.perf_counter() - 1.0):
        calls += 1
        assert calls < 100, "the pass never ended"
        for _ in range(50):  # a batch changes more customers than a chunk segments
            index.note_due(Held(f"c{noted}", 1.0, 0.0, 0))  # type: ignore[arg-type]
            noted += 1
    assert calls <= 100 // (CHECK_EVERY - 1) + 1
    assert index.segments({0})[("mid", "active")] == 100  # the pass: those noted before it
    assert len(index.unsegmented) == noted - 100  # the rest wait for the next pass


class _Store:
    """What the sweeper reads of a partition store when no customer is due."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.live: dict[str, CustomerState] = {}

    def take_fresh(self) -> set[str]:
        return set()

    def get(self, customer_id: str) -> CustomerState | None:
        return self.live.get(customer_id)


def test_a_sweep_round_ends_while_every_batch_changes_a_thousand_customers() -> None:
    store = _Store(0)
    clock = SweepClock("event")
    clock.observe(0, offset=0, event_ts=400 * DAY)
    sweeper = Sweeper(Engine(), None, SweepIndex(), clock, WorkerStats(),  # type: ignore[arg-type]
                      {0: store}, lambda p: None)  # type: ignore[dict-item]
    sweeper.begin()
    n = 0
    for _ in range(20):  # the loop: a batch of records of different customers, then a chunk
        for _ in range(1000):
            state = CustomerState.new(f"c{n}", 0.0, 0)
            for day in (0, 10, 20, 30):
                add_purchase(state, day * DAY, 40.0)
            state.next_check_ts = 1000 * DAY
            store.live[state.customer_id] = state
            sweeper.index.note_due(state)
            n += 1
        sweeper.step()
        if not sweeper.in_round:
            break
    assert not sweeper.in_round and sweeper.stats.sweeps == 1
