"""The decoded-state cache of a partition store is bounded; what it drops reads back equal."""

from __future__ import annotations

import pytest

from anomon.core.state import CustomerState
from anomon.worker.store import MemoryBackend, PartitionStore


def _store(keep_encoded: bool) -> PartitionStore:
    return PartitionStore(0, MemoryBackend(), on_unreadable=lambda cid, err: None,
                          keep_encoded=keep_encoded)


@pytest.mark.parametrize("keep_encoded", [False, True])
def test_shrink_drops_the_least_recently_changed_clean_states(keep_encoded: bool) -> None:
    store = _store(keep_encoded)
    for i in range(10):
        store[f"c{i}"] = CustomerState.new(f"c{i}", now=float(i))
    changes = store.take_changes()  # committed ...
    store.persist(changes, changelog_end=10)  # ... and, for a local store, persisted
    store["c0"] = store.get("c0") or CustomerState.new("c0", now=0.0)  # changed again: newest
    before = {f"c{i}": store.get(f"c{i}") for i in range(10)}
    snapshot = {k: v.to_bytes() for k, v in before.items() if v is not None}

    assert store.shrink(4) == 6
    assert set(store.live) == {"c7", "c8", "c9", "c0"}  # c0 was changed last; c1-c6 dropped
    assert "c0" in store.dirty  # a dirty state is never dropped before it is written
    for key, raw in snapshot.items():  # dropped states read back equal
        state = store.get(key)
        assert state is not None and state.to_bytes() == raw
    assert store.shrink(100) == 0


def test_shrink_keeps_dirty_states_even_over_the_limit() -> None:
    store = _store(keep_encoded=False)
    for i in range(5):
        store[f"c{i}"] = CustomerState.new(f"c{i}", now=float(i))
    assert store.shrink(2) == 0 and len(store.live) == 5


def test_a_state_erased_while_its_changes_were_written_stays_erased_locally() -> None:
    store = _store(keep_encoded=True)
    store["c1"] = CustomerState.new("c1", now=1.0)
    changes = store.take_changes()  # the commit encoded c1 ...
    store.pop("c1")  # ... an erasure was handled while the changelog write was in flight ...
    store.persist(changes, changelog_end=1)  # ... and then the write was acknowledged
    assert store.get("c1") is None and "c1" not in store
    assert store.take_changes() == {b"c1": None}  # the tombstone goes with the next commit
