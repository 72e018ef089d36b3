"""Recent event ids as one string: the duplicate check and the stored list form."""

from __future__ import annotations

import random

from anomon.core import seen
from anomon.core.engine import Engine
from anomon.core.events import EVENT_ADAPTER
from anomon.core.state import MAX_SEEN_IDS, CustomerState

AWKWARD = ["a", "a b", " ", "  ", "\x1e", "\x1e_", "_", "a\x1e", "\x1e\x1e", "b a", "\x1e ", "é 𝄞"]


def test_only_a_whole_id_matches_whatever_it_holds() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b", " ", "\x1e", "_"]
    for _ in range(2000):
        ids = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
               for _ in range(rng.randint(1, 6))]
        ids = list(dict.fromkeys(ids))
        held = ""
        for event_id in ids:
            held = seen.remember(held, seen.key(event_id), keep=len(ids))
        assert seen.listed(held) == ids
        assert seen.packed(ids) == held
        probe = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5)))
        assert seen.has(held, seen.key(probe)) == (probe in ids), (ids, probe)


def test_the_oldest_go_first_beyond_the_limit() -> None:
    held = ""
    for n in range(10):
        held = seen.remember(held, seen.key(f"e {n}"), keep=4)
    assert seen.listed(held) == ["e 6", "e 7", "e 8", "e 9"]
    assert not seen.has(held, seen.key("e 5"))


def test_awkward_ids_are_recognised_as_duplicates_and_stored_as_given() -> None:
    engine, state = Engine(), None
    for n, event_id in enumerate(AWKWARD):
        ev = EVENT_ADAPTER.validate_python({"event_id": event_id, "customer_id": "c1",
                                            "type": "interaction",
                                            "ts": f"2026-01-01T00:{n:02d}:00+00:00"})
        step = engine.process(state, ev)
        assert step.outcome == "processed", event_id
        state = step.state
        assert engine.process(state, ev).outcome == "duplicate", event_id
    assert state is not None
    restored = CustomerState.from_bytes(state.to_bytes())
    assert restored == state
    assert restored.to_dict()["seen_ids"] == AWKWARD[-MAX_SEEN_IDS:]
