"""Consumer lag of the worker: input records not yet handled, per assigned partition.

Computed when ``/metrics`` is scraped: the partition's end offset minus the
next offset to handle (the one after the last record the worker handled, else
the group's committed offset). The end offset is the larger of the high
watermark in the last Fetch response and the one asked of the broker every
``REFRESH_S`` seconds (:func:`end_offsets`): while the consumer's buffer is
full it stops fetching, and the Fetch watermark alone would show the lag
shrinking as the backlog grows. A partition whose position is not known yet is
left out rather than guessed.

>>> records_behind(highwater=120, position=100), records_behind(5, 9), records_behind(None, 3)
(20, 0, None)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka.structs import TopicPartition

from anomon.worker import metrics

log = logging.getLogger("anomon.worker.lag")

REFRESH_S = 5.0


async def end_offsets(consumer: Any, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """End offsets of ``topic``'s ``partitions`` from the broker (ListOffsets); {} on failure."""
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    if not tps:
        return {}
    try:
        found = await consumer.end_offsets(tps)
    except Exception as err:  # a rebalance or a broker hiccup: keep the Fetch watermarks
        log.debug("end offsets unavailable: %s", err)
        return {}
    return {tp.partition: int(offset) for tp, offset in found.items() if offset is not None}


def newest(*offsets: int | None) -> int | None:
    """The largest known offset.

    >>> newest(None, 7, 3), newest(None, None)
    (7, None)
    """
    known = [o for o in offsets if o is not None]
    return max(known) if known else None


def records_behind(highwater: int | None, position: int | None) -> int | None:
    """Records between ``position`` and ``highwater`` (``None`` when either is unknown)."""
    if highwater is None or position is None:
        return None
    return max(0, highwater - position)


def update_lag_gauge(
    partitions: Iterable[int],
    highwater: Callable[[int], int | None],
    position: Callable[[int], int | None],
) -> dict[int, int]:
    """Set ``anomon_consumer_lag_records`` for ``partitions`` only; returns what was set."""
    lag: dict[int, int] = {}
    for p in sorted(partitions):
        behind = records_behind(highwater(p), position(p))
        if behind is not None:
            lag[p] = behind
    metrics.CONSUMER_LAG.clear()
    for p, behind in lag.items():
        metrics.CONSUMER_LAG.labels(str(p)).set(behind)
    return lag
