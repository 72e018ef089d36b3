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

import time
from collections import Counter
from collections.abc import Callable

from anomon.core.state import CustomerState

Segment = tuple[str, str]
UNKNOWN: Segment = ("unknown", "unknown")


class SweepIndex:
    """Customer id -> (next check event time, input partition, (tier, stage)).

    The segment is the customer's value tier and lifecycle stage as of their
    last event or sweep (for the ``anomon_customers_tracked`` gauge). With a
    state TTL (``ttl_s``), a customer is also due when their TTL runs out, so
    the sweep can forget them.
    """

    def __init__(self, ttl_s: float = 0.0) -> None:
        self.entries: dict[str, tuple[float, int, Segment]] = {}
        self.unsegmented: set[str] = set()
        self.stale = True
        self.ttl_s = ttl_s

    def note(self, state: CustomerState, segment: Segment) -> None:
        """Remember when ``state`` is next due (at the latest, when its TTL runs out)."""
        due = state.next_check_ts
        if self.ttl_s > 0:
            due = min(due, state.last_ts + self.ttl_s)
        self.entries[state.customer_id] = (due, state.partition, segment)

    def note_due(self, state: CustomerState) -> None:
        """Remember when ``state`` is next due; its segment is worked out later.

        The segment (tier, stage) only feeds a gauge: the loop notes every changed
        customer once per batch, and :meth:`resegment` computes the segments of the
        customers noted since the last gauge update, once each.
        """
        due = state.next_check_ts
        if self.ttl_s > 0:
            due = min(due, state.last_ts + self.ttl_s)
        old = self.entries.get(state.customer_id)
        self.entries[state.customer_id] = (due, state.partition, old[2] if old else UNKNOWN)
        self.unsegmented.add(state.customer_id)

    def resegment(self, segment_of: Callable[[str, int], Segment | None]) -> None:
        """Segments of the customers noted by :meth:`note_due` (``segment_of(id, partition)``)."""
        for customer_id in self.unsegmented:
            entry = self.entries.get(customer_id)
            if entry is None:
                continue
            segment = segment_of(customer_id, entry[1])
            if segment is not None:
                self.entries[customer_id] = (entry[0], entry[1], segment)
        self.unsegmented.clear()

    def expired(self, state: CustomerState, now: float) -> bool:
        """Whether the customer has been silent longer than the state TTL."""
        return self.ttl_s > 0 and now - state.last_ts >= self.ttl_s

    def forget(self, customer_id: str) -> None:
        self.entries.pop(customer_id, None)
        self.unsegmented.discard(customer_id)

    def due(self, now_by_partition: dict[int, float]) -> list[str]:
        """Customers whose next check is at or before their partition's now."""
        out = []
        for customer_id, (next_ts, partition, _) in self.entries.items():
            now = now_by_partition.get(partition)
            if now is not None and next_ts <= now:
                out.append(customer_id)
        return out

    def count(self, partitions: set[int]) -> int:
        """Customers indexed on ``partitions``."""
        return sum(1 for _, p, _ in self.entries.values() if p in partitions)

    def segments(self, partitions: set[int]) -> Counter[Segment]:
        """Customers of ``partitions`` by (tier, stage)."""
        return Counter(seg for _, p, seg in self.entries.values() if p in partitions)


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
