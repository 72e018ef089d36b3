"""Bookkeeping for the sweep: who is due when, and what time it is.

:class:`SweepIndex` remembers, per customer, the event time of the next check
(``CustomerState.next_check_ts``) and the input partition, so a sweep finds the
due customers of this worker's partitions without decoding every state. It is
rebuilt from the states held after every rebalance
(:class:`~anomon.worker.sweeper.Sweeper`).

:class:`SweepClock` says what "now" is for the customers of one partition:

* ``wall``: the wall clock, for live traffic;
* ``event``: the newest event time this worker has processed, for replayed or
  simulated traffic. A partition whose records have not all been consumed yet
  (its high watermark is ahead of the last record handled) is judged only as of
  its own newest event time, so a customer is never declared silent because
  their partition lags behind the others. A high watermark is as old as the
  last fetch that brought it: a partition counts as caught up only when two
  sweep rounds in a row find it so at the same offsets, so records still on
  their way do not make it look idle.

>>> clock = SweepClock("event")
>>> clock.observe(0, offset=9, event_ts=1000.0); clock.observe(1, offset=4, event_ts=5000.0)
>>> clock.now_for(0, highwater=10), clock.now_for(0, highwater=10)  # caught up twice: idle
(1000.0, 5000.0)
>>> clock.now_for(0, highwater=12), clock.now_for(2, highwater=0), clock.now_for(2, highwater=0)
(1000.0, None, 5000.0)
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

from anomon.core.state import CustomerState

Segment = tuple[str, str]
UNKNOWN: Segment = ("unknown", "unknown")
SLOT_S = 3600.0
"""Width of a slot of the due index, in event-time seconds: a round looks only at the slots
that have begun by its now."""
CHECK_EVERY = 16
"""Customers swept, indexed or re-segmented between looks at the clock."""


def _slot(due: float) -> int | None:
    """The slot of a due time; ``None`` for never (infinite or not a number).

    >>> _slot(7199.0), _slot(7200.0), _slot(float("inf")), _slot(-float("inf")) < -10**9
    (1, 2, None, True)
    """
    if -math.inf < due < math.inf:
        return int(due // SLOT_S)
    return -(2**62) if due == -math.inf else None


class SweepIndex:
    """Customer id -> (next check event time, input partition, (tier, stage)).

    The segment is the customer's value tier and lifecycle stage as of their
    last event or sweep (for the ``anomon_customers_tracked`` gauge). With a
    state TTL (``ttl_s``), a customer is also due when their TTL runs out, so
    the sweep can forget them.

    Nothing here costs time in proportion to all the customers held, so a
    worker with a million of them does not stall its records every round:

    * the customers are also filed by the hour their check falls due
      (:data:`SLOT_S`): :meth:`due` looks only at the hours that have begun;
    * counts per partition and segment are kept as entries change:
      :meth:`count` (``/stats``) and :meth:`segments` (the gauge) add up a few
      dozen numbers;
    * :meth:`resegment` works for a bounded time and resumes where it stopped; a
      pass takes the customers noted before it began, so it ends.

    >>> from types import SimpleNamespace as S
    >>> index = SweepIndex()
    >>> for i, due in enumerate((100.0, 5000.0, float("inf"))):
    ...     index.note(S(customer_id=f"c{i}", next_check_ts=due, last_ts=0.0, partition=i % 2),
    ...                ("low", "new"))
    >>> index.due({0: 4000.0, 1: 4000.0}), index.due({0: 9000.0, 1: 9000.0})
    (['c0'], ['c0', 'c1'])
    >>> index.count({0}), index.segments({0, 1})
    (2, Counter({('low', 'new'): 3}))
    """

    def __init__(self, ttl_s: float = 0.0) -> None:
        self.entries: dict[str, tuple[float, int, Segment]] = {}
        self.unsegmented: set[str] = set()
        #: the customers of the :meth:`resegment` pass under way (noted before it began)
        self._pass: set[str] = set()
        self.stale = True
        self.ttl_s = ttl_s
        #: slot of the due time (see :func:`_slot`) -> customers due in it
        self._slots: dict[int, set[str]] = {}
        #: (partition, segment) -> customers
        self._counts: dict[tuple[int, Segment], int] = {}

    def clear(self) -> None:
        """Forget every customer (before a rebuild)."""
        self.entries.clear()
        self.unsegmented.clear()
        self._pass.clear()
        self._slots.clear()
        self._counts.clear()

    def _due_of(self, state: CustomerState) -> float:
        due = state.next_check_ts
        if self.ttl_s > 0:
            due = min(due, state.last_ts + self.ttl_s)
        return due

    def _put(self, customer_id: str, entry: tuple[float, int, Segment],
             old: tuple[float, int, Segment] | None) -> None:
        """Set the entry of ``customer_id`` (``old``: the one it replaces) and keep the slots
        and counts in step."""
        self.entries[customer_id] = entry
        counts = self._counts
        if old is None:
            key = (entry[1], entry[2])
            counts[key] = counts.get(key, 0) + 1
            self._slot_in(customer_id, _slot(entry[0]))
            return
        if old[1] != entry[1] or old[2] != entry[2]:
            self._uncount(old[1], old[2])
            key = (entry[1], entry[2])
            counts[key] = counts.get(key, 0) + 1
        if old[0] != entry[0]:
            was, slot = _slot(old[0]), _slot(entry[0])
            if was != slot:
                self._unslot(customer_id, was)
                self._slot_in(customer_id, slot)

    def _slot_in(self, customer_id: str, slot: int | None) -> None:
        if slot is not None:
            members = self._slots.get(slot)
            if members is None:
                self._slots[slot] = {customer_id}
            else:
                members.add(customer_id)

    def _unslot(self, customer_id: str, slot: int | None) -> None:
        if slot is None:
            return
        members = self._slots.get(slot)
        if members is not None:
            members.discard(customer_id)
            if not members:
                del self._slots[slot]

    def _uncount(self, partition: int, segment: Segment) -> None:
        key = (partition, segment)
        n = self._counts[key] - 1
        if n > 0:
            self._counts[key] = n
        else:
            del self._counts[key]

    def note(self, state: CustomerState, segment: Segment) -> None:
        """Remember when ``state`` is next due (at the latest, when its TTL runs out)."""
        customer_id = state.customer_id
        self._put(customer_id, (self._due_of(state), state.partition, segment),
                  self.entries.get(customer_id))
        self.unsegmented.discard(customer_id)
        self._pass.discard(customer_id)

    def note_due(self, state: CustomerState) -> None:
        """Remember when ``state`` is next due; its segment is worked out later.

        The segment (tier, stage) only feeds a gauge: the loop notes every changed
        customer once per batch, and :meth:`resegment` computes the segments of the
        customers noted since, once each.
        """
        customer_id = state.customer_id
        due = self._due_of(state)
        old = self.entries.get(customer_id)
        if old is None:
            self._put(customer_id, (due, state.partition, UNKNOWN), None)
        elif old[0] != due or old[1] != state.partition:  # else: as it was
            self._put(customer_id, (due, state.partition, old[2]), old)
        self.unsegmented.add(customer_id)

    def resegment(self, segment_of: Callable[[str, int], Segment | None],
                  until: float = math.inf) -> bool:
        """Segments of the customers noted by :meth:`note_due` (``segment_of(id, partition)``)
        until ``time.perf_counter()`` passes ``until``; whether the pass is done.

        A pass takes the customers noted before it began; those noted meanwhile wait
        for the next one, so a pass ends however fast records change customers.
        """
        if not self._pass:
            self._pass, self.unsegmented = self.unsegmented, set()
        work = self._pass
        n = 0
        while work:
            n += 1
            if n % CHECK_EVERY == 0 and time.perf_counter() >= until:
                return False
            customer_id = work.pop()
            entry = self.entries.get(customer_id)
            if entry is None:
                continue
            segment = segment_of(customer_id, entry[1])
            if segment is not None and segment != entry[2]:
                self._put(customer_id, (entry[0], entry[1], segment), entry)
        return True

    def expired(self, state: CustomerState, now: float) -> bool:
        """Whether the customer has been silent longer than the state TTL."""
        return self.ttl_s > 0 and now - state.last_ts >= self.ttl_s

    def forget(self, customer_id: str) -> None:
        old = self.entries.pop(customer_id, None)
        self.unsegmented.discard(customer_id)
        self._pass.discard(customer_id)
        if old is not None:
            self._unslot(customer_id, _slot(old[0]))
            self._uncount(old[1], old[2])

    def due(self, now_by_partition: dict[int, float]) -> list[str]:
        """Customers whose next check is at or before their partition's now, earliest first
        (only the slots begun by the latest now are looked at)."""
        if not now_by_partition:
            return []
        last = _slot(max(now_by_partition.values()))
        out: list[tuple[float, str]] = []
        entries = self.entries
        for slot in sorted(s for s in self._slots if last is None or s <= last):
            for customer_id in self._slots[slot]:
                next_ts, partition, _ = entries[customer_id]
                now = now_by_partition.get(partition)
                if now is not None and next_ts <= now:
                    out.append((next_ts, customer_id))
        out.sort()
        return [customer_id for _, customer_id in out]

    def count(self, partitions: set[int]) -> int:
        """Customers indexed on ``partitions``."""
        return sum(n for (p, _), n in self._counts.items() if p in partitions)

    def segments(self, partitions: set[int]) -> Counter[Segment]:
        """Customers of ``partitions`` by (tier, stage)."""
        out: Counter[Segment] = Counter()
        for (p, segment), n in self._counts.items():
            if p in partitions:
                out[segment] += n
        return out


class SweepClock:
    """The sweep's notion of now, per input partition (see the module docstring)."""

    def __init__(self, mode: str = "wall") -> None:
        if mode not in ("wall", "event"):
            raise ValueError(f"unknown sweep clock {mode!r}")
        self.mode = mode
        self.newest: dict[int, float] = {}
        self.next_offset: dict[int, int] = {}
        #: partition -> (next offset, high watermark) when a round last found it caught up
        self._caught_up_at: dict[int, tuple[int | None, int | None]] = {}

    def observe(self, partition: int, offset: int, event_ts: float | None) -> None:
        """A record at ``offset`` was handled; ``event_ts`` is its event time if it had one."""
        self.next_offset[partition] = offset + 1
        if event_ts is not None and event_ts > self.newest.get(partition, float("-inf")):
            self.newest[partition] = event_ts

    def restore(self, newest_ts: dict[int, float]) -> None:
        """Newest event times found in restored states (after a rebalance)."""
        for partition, ts in newest_ts.items():
            if ts > self.newest.get(partition, float("-inf")):
                self.newest[partition] = ts

    def reset_offsets(self) -> None:
        """Forget consumed positions (partitions may have moved)."""
        self.next_offset.clear()

    @property
    def worker_newest(self) -> float | None:
        """The newest event time this worker has processed or restored."""
        return max(self.newest.values()) if self.newest else None

    def caught_up(self, partition: int, highwater: int | None) -> bool:
        """Whether every record of ``partition`` up to ``highwater`` has been handled."""
        if highwater is None:
            return False
        if highwater <= 0:
            return True
        consumed = self.next_offset.get(partition)
        return consumed is not None and consumed >= highwater

    def now_for(self, partition: int, highwater: int | None = None) -> float | None:
        """Now for the customers of ``partition``; ``None`` when it cannot be judged yet."""
        if self.mode == "wall":
            return time.time()
        if self.caught_up(partition, highwater):
            mark = (self.next_offset.get(partition), highwater)
            idle = self._caught_up_at.get(partition) == mark
            self._caught_up_at[partition] = mark
            if idle:
                return self.worker_newest
        else:
            self._caught_up_at.pop(partition, None)
        return self.newest.get(partition)
