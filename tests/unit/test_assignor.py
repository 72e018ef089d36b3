"""Group assignment: balance, stickiness and standby replicas."""

from __future__ import annotations

from anomon.worker.assignor import balance, standbys


def test_standby_never_the_owner_and_spread_evenly() -> None:
    plan = balance(list(range(8)), {"a": [], "b": [], "c": []})
    spare = standbys(plan, {}, replicas=1)
    owner = {p: m for m, ps in plan.items() for p in ps}
    kept = sorted(p for ps in spare.values() for p in ps)
    assert kept == list(range(8))  # every partition has one standby
    assert all(owner[p] != m for m, ps in spare.items() for p in ps)
    assert max(map(len, spare.values())) - min(map(len, spare.values())) <= 1


def test_standby_stays_where_it_is_warm() -> None:
    plan = {"a": [0, 1], "b": [2, 3], "c": [4, 5]}
    warm = {"c": [0, 1], "a": [2, 3], "b": [4, 5]}
    assert standbys(plan, warm, replicas=1) == {"a": [2, 3], "b": [4, 5], "c": [0, 1]}


def test_replicas_bounded_by_the_other_members_and_by_who_takes_standby_work() -> None:
    plan = {"a": [0, 1], "b": [2, 3]}
    assert standbys(plan, {}, replicas=3) == {"a": [2, 3], "b": [0, 1]}
    assert standbys(plan, {}, replicas=1, members=["a"]) == {"a": [2, 3], "b": []}
    assert standbys({"a": [0, 1]}, {}, replicas=1) == {"a": []}  # a lone worker keeps none
