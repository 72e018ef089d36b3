"""When to retry a post, and whether a failure is worth retrying.

>>> backoff_delays(0.5, attempts=6)
[0.5, 1.0, 2.0, 4.0, 8.0]
>>> backoff_delays(10.0, attempts=4, cap=30.0)
[10.0, 20.0, 30.0]
>>> [retriable(s) for s in (200, 400, 404, 408, 429, 500, 503)]
[False, False, False, True, True, True, True]
"""

from __future__ import annotations

MAX_DELAY_S = 30.0


def backoff_delays(first_s: float, attempts: int, cap: float = MAX_DELAY_S) -> list[float]:
    """Waits between ``attempts`` tries: ``first_s``, doubled each time, at most ``cap``."""
    return [min(cap, first_s * 2**i) for i in range(max(0, attempts - 1))]


def retriable(status: int) -> bool:
    """A server error, a timeout or rate limiting; other 4xx answers will not change."""
    return status >= 500 or status in (408, 429)
