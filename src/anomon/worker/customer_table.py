"""The customer table: customer id -> :class:`CustomerState` bytes, backed by a changelog.

The table is co-partitioned with the input topic: a state is written to the
changelog partition numbered like the input partition of the event that
changed it, so the worker that owns input partition *p* recovers exactly the
states of the customers whose events arrive on *p*.

Inside the agent Faust picks that partition from the event being processed.
The sweep runs in a timer, outside any event, where Faust refuses table writes
(unless ``use_partitioner=True``, which would let the producer's partitioner
choose the changelog partition from the key: co-partitioned only if every
producer of the input topic hashes keys exactly like Faust's producer does).
Instead the sweep writes in the context of the customer's own input partition,
stored in the state by the engine (:meth:`CustomerTable.put_encoded`),
which keeps the changelog co-partitioned whoever produced the events and works
with every Faust store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import faust

from anomon.core.errors import StateVersionError
from anomon.core.state import CustomerState
from anomon.kafka.logs import customer_ref, kv
from anomon.kafka.topics import TABLE_NAME
from anomon.worker.faust_private import partition_context
from anomon.worker.stats import WorkerStats

log = logging.getLogger("anomon.worker.table")


class CustomerTable:
    """Typed access to the Faust table of customer states (UTF-8 customer id keys)."""

    def __init__(self, app: faust.App, input_topic: str, partitions: int,
                 stats: WorkerStats) -> None:
        self.app = app
        self.input_topic = input_topic
        self.stats = stats
        self.table: Any = app.Table(
            TABLE_NAME,
            key_type=bytes,  # bytes keys and values: Faust uses the raw codec for both
            value_type=bytes,
            partitions=partitions,
            help="Customer states (anomon.core.state.CustomerState bytes) by customer id.",
        )

    def load(self, customer_id: str) -> CustomerState | None:
        """The stored state, or ``None`` for a new customer or an unreadable state."""
        raw = self.table.get(customer_id.encode())
        if raw is None:
            return None
        return self.decode(customer_id, raw)

    def get(self, customer_id: str, /) -> CustomerState | None:
        """The stored state (:class:`~anomon.worker.records.StateStore`), as :meth:`load`."""
        return self.load(customer_id)

    def __setitem__(self, customer_id: str, state: CustomerState, /) -> None:
        """Store ``state`` (inside an agent: on the current event's changelog partition)."""
        self.put_encoded(customer_id, state.to_bytes())

    def decode(self, customer_id: str, raw: bytes) -> CustomerState | None:
        """Decode stored bytes; an unreadable state is logged, counted and dropped."""
        try:
            return CustomerState.from_bytes(raw)
        except (StateVersionError, TypeError, ValueError, KeyError) as err:
            self.stats.record_state_reset()
            log.warning("unreadable customer state, starting fresh %s",
                        kv(customer=customer_ref(customer_id), error=str(err)[:200]))
            return None

    def put_encoded(self, customer_id: str, value: bytes, partition: int | None = None) -> None:
        """Store encoded state bytes.

        Inside the agent (``partition`` None) the current event picks the
        changelog partition; outside it (the sweep), pass the customer's input
        partition, stored in the state by the engine.
        """
        if partition is None:
            self.table[customer_id.encode()] = value
            return
        with partition_context(self.app, self.input_topic, partition):
            self.table[customer_id.encode()] = value

    def delete(self, customer_id: str, partition: int | None = None) -> bool:
        """Delete a state here and in the changelog (a tombstone); whether one was held here.

        The tombstone is written whether or not a state is held locally: it goes
        to the changelog partition of the current event (inside an agent) or of
        ``partition``, where a copy may live that this worker does not hold.
        """
        key = customer_id.encode()
        existed = key in self.table.data
        if partition is None:
            self._delete(key)
        else:
            with partition_context(self.app, self.input_topic, partition):
                self._delete(key)
        return existed

    def _delete(self, key: bytes) -> None:
        self.table.on_key_del(key)
        self.table.data.pop(key, None)

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Every (customer id, state bytes) held locally: active and standby partitions.

        Consume it without awaiting in between: the agent may change the table.
        """
        for key, value in self.table.data.items():
            yield (key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)), value

    def __len__(self) -> int:
        return len(self.table.data)
