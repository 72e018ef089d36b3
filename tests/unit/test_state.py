"""Customer state: serialisable, versioned, bounded."""

from __future__ import annotations

from dataclasses import fields

import orjson
import pytest

from anomon.core.engine import Engine
from anomon.core.errors import StateVersionError
from anomon.core.events import EVENT_ADAPTER
from anomon.core.features import basket_gaps
from anomon.core.state import MAX_COMPLAINTS, MAX_PURCHASES, MAX_SEEN_IDS, CustomerState
from anomon.core.timeutil import to_rfc3339


def event(n: int, type_: str, day: float, **fields: object):
    return EVENT_ADAPTER.validate_python({"event_id": f"e{n}", "customer_id": "c1",
                                          "type": type_, "ts": to_rfc3339(1.7e9 + day * 86400),
                                          **fields})


def test_round_trip_after_history() -> None:
    engine, state = Engine(), None
    for n in range(30):
        state = engine.process(state, event(n, "purchase", n * 3.0, amount=10.0 + n)).state
    state = engine.process(state, event(99, "complaint", 91.0, severity=4)).state
    assert state is not None
    restored = CustomerState.from_bytes(state.to_bytes())
    assert restored == state


def test_unknown_version_and_garbage_are_reported() -> None:
    values = orjson.loads(CustomerState.new("c1", now=0.0).to_bytes())
    values[1] = 99  # the version, second in field order
    with pytest.raises(StateVersionError, match="99"):
        CustomerState.from_bytes(orjson.dumps(values))
    with pytest.raises(StateVersionError, match="newer"):
        CustomerState.from_bytes(orjson.dumps([*values[:1], 1, *values[2:], 0, 0]))
    old_form = orjson.dumps(CustomerState.new("c1", now=0.0)).replace(b'"version":1',
                                                                      b'"version":99')
    with pytest.raises(StateVersionError, match="99"):
        CustomerState.from_bytes(old_form)
    with pytest.raises(StateVersionError):
        CustomerState.from_bytes(b"\x00garbage")


def test_compact_form_is_smaller_and_reads_the_earlier_object_form() -> None:
    engine, state = Engine(), None
    for n in range(12):
        state = engine.process(state, event(n, "purchase", n * 5.0, amount=20.0)).state
    assert state is not None
    state.episode("drop_off").open = True
    compact, earlier = state.to_bytes(), orjson.dumps(state.to_dict())
    assert len(compact) < 0.65 * len(earlier)
    assert CustomerState.from_bytes(compact) == state == CustomerState.from_bytes(earlier)
    assert state.bound_from_ts is not None
    names = [f.name for f in fields(CustomerState)]
    shorter = orjson.loads(compact)[:names.index("bound_from_ts")]  # written before it existed
    older = CustomerState.from_bytes(orjson.dumps(shorter))
    assert older.bound_from_ts is None
    assert older.basket_n == -1  # counted on first read
    assert basket_gaps(older) == basket_gaps(state) == (11, 55.0)


def test_state_is_bounded_whatever_the_customer_does() -> None:
    engine, state = Engine(), None
    n = 0
    for day in range(2000):
        for type_, extra in (("purchase", {"amount": 20.0}), ("complaint", {"severity": 1}),
                             ("interaction", {})):
            n += 1
            state = engine.process(state, event(n, type_, day * 0.2, **extra)).state
    assert state is not None
    assert len(state.purchases) <= MAX_PURCHASES
    assert len(state.complaints) <= MAX_COMPLAINTS
    assert len(state.to_dict()["seen_ids"]) == MAX_SEEN_IDS
    assert len(state.to_bytes()) < 4096


def test_duplicates_and_late_events() -> None:
    engine = Engine(lateness_bound_s=3600.0)
    state = engine.process(None, event(1, "purchase", 10.0, amount=5.0)).state
    assert engine.process(state, event(1, "purchase", 10.0, amount=5.0)).outcome == "duplicate"
    assert engine.process(state, event(2, "purchase", 9.0, amount=5.0)).outcome == "late"
    in_bound = engine.process(state, event(3, "purchase", 9.99, amount=5.0))
    assert in_bound.outcome == "processed" and in_bound.state.n_purchases == 2


def test_the_purchase_window_kept_encoded_is_encoded_anew_after_each_order() -> None:
    engine, state = Engine(), None
    for n in range(6):
        state = engine.process(state, event(n, "purchase", n * 5.0, amount=10.0 + n)).state
    assert state is not None
    state.to_bytes()
    state = engine.process(state, event(50, "interaction", 26.0)).state
    assert CustomerState.from_bytes(state.to_bytes()).purchases == state.purchases
    for n in range(6, 60):  # past the window's cap: orders leave it from the front too
        state = engine.process(state, event(n, "purchase", n * 5.0, amount=10.0 + n)).state
        restored = CustomerState.from_bytes(state.to_bytes())
        assert restored.purchases == state.purchases
        assert restored == state
    assert len(state.purchases) == MAX_PURCHASES
    assert "encoded_window" not in state.to_dict()
