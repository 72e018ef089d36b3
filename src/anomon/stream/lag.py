"""Consumer lag of the worker: input records not yet handled, per assigned partition.

Computed when ``/metrics`` is scraped, from what the consumer already knows (no
request to the broker): the partition's high watermark from the last Fetch
response, minus the next offset to handle (the one after the last record the
worker handled, else the group's committed offset). A partition whose position
is not known yet is left out rather than guessed.

>>> records_behind(highwater=120, position=100), records_behind(5, 9), records_behind(None, 3)
(20, 0, None)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from anomon import metrics


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
