"""When to retry a post, and whether a failure is worth retrying.

The base schedule doubles from the first wait up to a cap; each wait actually
taken is drawn between half and all of it (:func:`jittered`), so forwarders
that failed together do not retry together. A server that says when to come
back (``Retry-After``, in seconds or as an HTTP date) is obeyed, up to
:data:`MAX_RETRY_AFTER_S`.

>>> backoff_delays(0.5, attempts=6)
[0.5, 1.0, 2.0, 4.0, 8.0]
>>> backoff_delays(10.0, attempts=4, cap=30.0)
[10.0, 20.0, 30.0]
>>> [retriable(s) for s in (200, 400, 404, 408, 429, 500, 503)]
[False, False, False, True, True, True, True]
>>> 2.0 <= jittered(4.0) <= 4.0
True
>>> retry_after("120"), retry_after("soon"), retry_after(None), retry_after("99999")
(120.0, None, None, 300.0)
>>> retry_after("Wed, 01 Jan 2020 00:00:00 GMT")  # a date in the past: now
0.0
>>> wait_before_retry(1.0, "7", rng=random.Random(1))
7.0
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

MAX_DELAY_S = 30.0
MAX_RETRY_AFTER_S = 300.0


def backoff_delays(first_s: float, attempts: int, cap: float = MAX_DELAY_S) -> list[float]:
    """Waits between ``attempts`` tries: ``first_s``, doubled each time, at most ``cap``."""
    return [min(cap, first_s * 2**i) for i in range(max(0, attempts - 1))]


def jittered(delay: float, rng: random.Random | None = None) -> float:
    """A wait drawn uniformly between half of ``delay`` and all of it."""
    return (rng or random).uniform(delay / 2, delay)


def retry_after(header: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (``None``: absent or unreadable), capped."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return min(MAX_RETRY_AFTER_S, float(header))
    try:
        when = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, when - (time.time() if now is None else now)))


def wait_before_retry(delay: float, header: str | None = None,
                      rng: random.Random | None = None) -> float:
    """The wait before the next try: the jittered ``delay``, or longer if the server asks."""
    asked = retry_after(header)
    wait = jittered(delay, rng)
    return max(wait, asked) if asked is not None else wait


def retriable(status: int) -> bool:
    """A server error, a timeout or rate limiting; other 4xx answers will not change."""
    return status >= 500 or status in (408, 429)
