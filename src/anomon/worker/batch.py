"""One batch of work: the outputs, state changes and input offsets of records handled together.

The loop (:mod:`anomon.worker.loop`) fills a :class:`Batch` from one ``getmany``
(or one chunk of a sweep) without awaiting anything, then hands it to the
committer (:mod:`anomon.worker.committer`), which publishes it while the loop
handles the next one. The states a batch changed are named by partition
(``touched``) and encoded by the committer when it takes the batch, so a
customer changed by several batches of one commit is encoded and written once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiokafka.structs import TopicPartition

from anomon.worker.handler import Outgoing

Changes = dict[bytes, bytes | None]  # customer id -> encoded state (None: delete)


@dataclass
class Batch:
    """What one batch publishes, writes and commits."""

    outputs: list[Outgoing] = field(default_factory=list)
    #: input partitions whose stores hold states this batch changed (encoded at commit)
    touched: set[int] = field(default_factory=set)
    #: input partition -> changed states, written to the changelog partition of that number
    changes: dict[int, Changes] = field(default_factory=dict)
    #: input and erasure partitions -> the offset after the last record handled
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    records: int = 0
    created: float = field(default_factory=time.monotonic)

    def partitions(self) -> set[int]:
        """Input partitions this batch touches (outputs, states or offsets)."""
        parts = {o.partition for o in self.outputs}
        parts.update(p for p, c in self.changes.items() if c)
        parts.update(self.touched)
        parts.update(tp.partition for tp in self.offsets)
        return parts

    def empty(self) -> bool:
        return (not self.outputs and not any(self.changes.values()) and not self.offsets
                and not self.touched)

    def absorb(self, later: Batch) -> None:
        """Add ``later`` (handled after this one) to this batch: its states and offsets win."""
        self.outputs.extend(later.outputs)
        for p, changes in later.changes.items():
            mine = self.changes.get(p)
            if mine is None:
                self.changes[p] = dict(changes)
            else:
                mine.update(changes)
        self.offsets.update(later.offsets)
        self.touched |= later.touched
        self.records += later.records

    def without(self, partitions: set[int]) -> Batch:
        """This batch minus everything of ``partitions``."""
        return Batch(
            outputs=[o for o in self.outputs if o.partition not in partitions],
            changes={p: c for p, c in self.changes.items() if p not in partitions},
            offsets={tp: o for tp, o in self.offsets.items() if tp.partition not in partitions},
            touched=self.touched - partitions,
            records=self.records, created=self.created)

    def only(self, partition: int) -> Batch:
        """The part of this batch that belongs to input ``partition``."""
        return Batch(
            outputs=[o for o in self.outputs if o.partition == partition],
            changes={partition: self.changes[partition]} if partition in self.changes else {},
            offsets={tp: o for tp, o in self.offsets.items() if tp.partition == partition},
            touched=self.touched & {partition}, records=self.records, created=self.created)
