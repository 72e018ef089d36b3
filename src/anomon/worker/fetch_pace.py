"""Fetch slowly while idle: a worker with nothing to read asks its broker twice a second.

While records flow, a fetch waits at most ``fetch_wait_ms`` (5 ms) for
``fetch_min_bytes`` (64 KB): batches of a useful size for a few milliseconds of
latency. Idle, the same settings make a fetch every 5 ms, and on Apache Kafka
an idle worker cost its broker 0.09-0.31 of a core (and itself 0.085-0.12). Once no
record has come for ``IDLE_AFTER_S``, :class:`FetchPace` makes the fetches wait
up to ``fetch_idle_wait_ms`` for a single byte instead. The broker answers a
waiting fetch as soon as a record is appended (Apache Kafka and Tansu alike),
so the first record after a quiet spell is not held back, and the idle
worker's broker is back near its own idle cost. The first records fetched
switch back.

The consumer's fetcher builds each request from its wait and minimum, so a
change applies from the next fetch (aiokafka 0.11-0.14; on another client
without those fields the pace is left alone).

>>> class Fetcher:
...     _fetch_max_wait_ms, _fetch_min_bytes = 5, 65536
>>> class Consumer:
...     _fetcher = Fetcher()
>>> now = [0.0]
>>> pace = FetchPace(Consumer(), 5, 65536, idle_wait_ms=500, clock=lambda: now[0])
>>> now[0] = 0.5; pace.observe(False); pace.idle
False
>>> now[0] = 1.5; pace.observe(False); pace.idle, Consumer._fetcher._fetch_max_wait_ms
(True, 500)
>>> pace.observe(True); pace.idle, Consumer._fetcher._fetch_min_bytes, pace.wakes
(False, 65536, 1)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

IDLE_AFTER_S = 1.0
"""Seconds without a record after which the fetches wait long for a single byte."""


class FetchPace:
    """Switches the consumer's fetches between their busy and idle wait.

    Parameters
    ----------
    consumer
        The started ``AIOKafkaConsumer`` (its fetcher is read on each switch).
    wait_ms, min_bytes
        The fetches while records flow (``fetch_wait_ms``, ``fetch_min_bytes``).
    idle_wait_ms
        The longest wait of a fetch while idle, for one byte; 0: never idle.
    clock
        Monotonic seconds.
    """

    def __init__(self, consumer: Any, wait_ms: int, min_bytes: int, idle_wait_ms: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.consumer = consumer
        self.busy = (wait_ms, min_bytes)
        self.idle_wait_ms = idle_wait_ms
        self.clock = clock
        self.idle = False
        #: quiet spells ended by records (each switched the fetches back)
        self.wakes = 0
        self.last_records = clock()

    def observe(self, got_records: bool) -> None:
        """After each fetch from the buffer: whether it returned records."""
        if got_records:
            self.last_records = self.clock()
            if self.idle:
                self._set(*self.busy)
                self.idle = False
                self.wakes += 1
        elif (not self.idle and self.idle_wait_ms > 0
              and self.clock() - self.last_records >= IDLE_AFTER_S):
            self.idle = self._set(self.idle_wait_ms, 1)

    def _set(self, wait_ms: int, min_bytes: int) -> bool:
        fetcher = getattr(self.consumer, "_fetcher", None)
        if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
            return False  # not started, or a client without these fields: left alone
        fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes = wait_ms, min_bytes
        return True
