"""The erasure request record: what ``anomon erase`` writes and the worker reads.

>>> request_value("c-42")[:20]
b'{"customer_id":"c-42'
>>> erasure_customer(request_value("c-42")), erasure_customer(b"[1]")
('c-42', None)
"""

from __future__ import annotations

import time

import orjson

from anomon.core.timeutil import to_rfc3339


def request_value(customer_id: str) -> bytes:
    """The value of an erasure request record."""
    return orjson.dumps({"customer_id": customer_id, "requested_at": to_rfc3339(time.time())})


def erasure_customer(value: bytes | None) -> str | None:
    """The customer id of an erasure request, or ``None`` if the record is not one."""
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    customer_id = data.get("customer_id") if isinstance(data, dict) else None
    return customer_id if isinstance(customer_id, str) and customer_id else None
