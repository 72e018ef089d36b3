"""Group assignment: co-partitioned topics, sticky, and who owns which partition.

The worker subscribes to the input topic and the erasure topic; partition *p*
of both, and so the changelog partition *p*, must go to the same member (the
erasure request for a customer is handled where their state lives). The
assignor hands out partition *numbers*: every subscribed topic's partition *p*
goes to the member that gets *p*.

It is sticky: a member keeps the partitions it had (reported in its
subscription) as long as the balance allows, so a worker joining or leaving
moves only the partitions that must move, and the others keep their warm
state.

Each member also puts the address of its web server (where it answers
``/customers/{id}``) in its subscription; the leader sends every member the
whole map partition -> address in its assignment, so any worker can forward a
profile request to the owner of the customer's partition
(:mod:`anomon.worker.profile_route`), as Kafka Streams' ``application.server``
does.

With standby replicas (``ANOMON_STANDBY_REPLICAS``, :mod:`anomon.worker.standby`)
the leader also names, per member, the partitions it keeps warm for another
owner: each partition gets that many members besides its owner, those that
hold it warm already first, then the least loaded.

>>> plan = balance([0, 1, 2, 3], {"a": [0, 1, 2, 3], "b": []})
>>> plan["a"], plan["b"]
([0, 1], [2, 3])
>>> balance([0, 1, 2, 3], {"a": [0, 1], "b": [2, 3], "c": []})["c"]
[3]
>>> standbys({"a": [0, 1], "b": [2, 3]}, {"b": [1]}, replicas=1)
{'a': [2, 3], 'b': [0, 1]}
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

log = logging.getLogger("anomon.worker.assignor")

VERSION = 0


def balance(partitions: list[int], held: Mapping[str, list[int]]) -> dict[str, list[int]]:
    """Partition numbers per member: even counts, each member keeping what it held if it can."""
    members = sorted(held)
    n, k = len(partitions), len(members)
    if k == 0:
        return {}
    base, extra = divmod(n, k)
    # members holding the most keep the extra partitions
    order = sorted(members, key=lambda m: (-len(held[m]), m))
    quota = {m: base + (1 if i < extra else 0) for i, m in enumerate(order)}
    plan: dict[str, list[int]] = {m: [] for m in members}
    taken: set[int] = set()
    valid = set(partitions)
    for m in order:
        for p in sorted(held[m]):
            if len(plan[m]) < quota[m] and p in valid and p not in taken:
                plan[m].append(p)
                taken.add(p)
    free = [p for p in partitions if p not in taken]
    for m in order:
        while len(plan[m]) < quota[m] and free:
            plan[m].append(free.pop(0))
    return {m: sorted(ps) for m, ps in plan.items()}


def standbys(plan: Mapping[str, list[int]], warm: Mapping[str, list[int]],
             replicas: int, members: Iterable[str] | None = None) -> dict[str, list[int]]:
    """Standby partitions per member: ``replicas`` members per partition besides its owner.

    ``warm``: partitions each member holds already (owned or standby), preferred;
    ``members``: those that take standby work (default: every member of ``plan``).
    """
    takers = sorted(plan if members is None else members)
    out: dict[str, list[int]] = {m: [] for m in plan}
    owner = {p: m for m, ps in plan.items() for p in ps}
    for p in sorted(owner):
        for _ in range(replicas):
            candidates = [m for m in takers if m != owner[p] and p not in out[m]]
            if not candidates:
                break
            best = min(candidates, key=lambda m: (p not in warm.get(m, ()), len(out[m]), m))
            out[best].append(p)
    return {m: sorted(ps) for m, ps in out.items()}


class CopartitionedAssignor(AbstractPartitionAssignor):
    """See the module docstring. Subclassed per worker by :func:`assignor_for`."""

    name = "anomon-copartitioned"
    version = VERSION
    #: this member's web address, sent in its subscription
    address = ""
    #: this member's partitions (sent so the assignment can be sticky)
    held: list[int] = []
    #: partition -> address of its owner, from the last assignment
    owners: dict[int, str] = {}
    #: standby replicas per partition this member asks for (0: it takes no standby work)
    replicas = 0
    #: partitions this member keeps warm for another owner, from the last assignment
    standby: list[int] = []

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        user_data = orjson.dumps({"address": cls.address, "held": sorted(cls.held),
                                  "standby": sorted(cls.standby), "replicas": cls.replicas})
        return ConsumerProtocolMemberMetadata(cls.version, sorted(topics), user_data)

    @classmethod
    def assign(cls, cluster: ClusterMetadata,
               members: Mapping[str, ConsumerProtocolMemberMetadata]
               ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = sorted({t for meta in members.values() for t in meta.subscription})
        counts = {}
        for topic in topics:
            parts = cluster.partitions_for_topic(topic)
            if parts is None:
                log.warning("no partition metadata for topic %s", topic)
                continue
            counts[topic] = len(parts)
        numbers = list(range(min(counts.values()))) if counts else []
        if len(set(counts.values())) > 1:
            log.warning("subscribed topics have different partition counts: %s", counts)
        info = {m: _user_data(meta.user_data) for m, meta in members.items()}
        plan = balance(numbers, {m: list(info[m].get("held", [])) for m in members})
        owners = {p: str(info[m].get("address", "")) for m, ps in plan.items() for p in ps}
        wanted = {m: _int(info[m].get("replicas")) for m in members}
        warm = {m: [*info[m].get("held", []), *info[m].get("standby", [])] for m in members}
        spare = standbys(plan, warm, max(wanted.values(), default=0),
                         [m for m, n in wanted.items() if n > 0])
        shared = {"owners": {str(p): a for p, a in owners.items()}}
        out = {}
        for member, meta in members.items():
            mine = plan.get(member, [])
            out[member] = ConsumerProtocolMemberAssignment(
                cls.version, [(t, list(mine)) for t in sorted(meta.subscription) if t in counts],
                orjson.dumps({**shared, "standby": spare.get(member, [])}))
        return out

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        data = _user_data(assignment.user_data)
        cls.owners = {int(p): str(a) for p, a in dict(data.get("owners", {})).items()}
        cls.held = sorted({tp.partition for tp in assignment.partitions()})
        cls.standby = sorted(_int(p) for p in data.get("standby", []))


def _user_data(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def assignor_for(address: str, replicas: int = 0) -> type[CopartitionedAssignor]:
    """An assignor class of this worker's own (aiokafka uses assignors as classes)."""
    return type("WorkerAssignor", (CopartitionedAssignor,),
                {"address": address, "held": [], "owners": {}, "replicas": replicas,
                 "standby": []})
