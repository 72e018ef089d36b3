"""Event-time helpers. Internally time is float epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime

DAY = 86400.0
HOUR = 3600.0


def to_rfc3339(epoch: float) -> str:
    """Format epoch seconds as RFC 3339 in UTC.

    >>> to_rfc3339(0.0)
    '1970-01-01T00:00:00+00:00'
    """
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def from_rfc3339(text: str) -> float:
    """Parse RFC 3339 (``Z`` accepted) into epoch seconds.

    >>> from_rfc3339("1970-01-02T00:00:00Z")
    86400.0
    """
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
