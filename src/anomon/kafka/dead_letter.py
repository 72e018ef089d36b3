"""Dead-letter records: the rejected input, why it was rejected, and where it came from.

The value is a JSON object::

    {"reason": "invalid_json", "detail": "...", "stage": "decode",
     "raw": "<the original value>", "raw_base64": false, "raw_bytes": 17,
     "raw_truncated": false, "key": "<the original key>",
     "topic": "customer-events", "partition": 3, "offset": 1042,
     "ts": "2026-01-01T00:00:00+00:00", "dead_lettered_at": "..."}

``raw`` is the original value as UTF-8 text when it decodes, otherwise base64
with ``raw_base64`` true; ``null`` for a record without a value. Values over
:data:`MAX_RAW_BYTES` are cut (``raw_truncated``), so that a dead-letter record
always fits in a Kafka message. ``ts`` is the record's Kafka timestamp.

Headers follow Kafka Connect's dead-letter convention under an ``anomon.dlq.``
prefix: ``topic``, ``partition``, ``offset``, ``stage``, ``error.class``,
``error.message``, plus ``reason``. The original headers are kept after them.
The record key is the original key, so a fixed record can be re-sent as is.

>>> rec = build_dead_letter(b'{"oops', key=b"c1", topic="t", partition=0, offset=7,
...     timestamp_ms=0, reason="invalid_json", detail="unexpected end", stage="decode",
...     error_class="EventRejected")
>>> value = orjson.loads(rec.value)
>>> value["reason"], value["raw"], value["raw_base64"], value["offset"]
('invalid_json', '{"oops', False, 7)
>>> dict(rec.headers)["anomon.dlq.offset"]
b'7'
>>> orjson.loads(build_dead_letter(b"\\xff\\xfe", key=None, topic="t", partition=0, offset=8,
...     timestamp_ms=None, reason="invalid_json", detail="", stage="decode",
...     error_class="EventRejected").value)["raw"]
'//4='
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from anomon.core.timeutil import to_rfc3339

MAX_RAW_BYTES = 256 * 1024
MAX_MESSAGE_CHARS = 1000
HEADER_PREFIX = "anomon.dlq."

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record ready to send to the dead-letter topic."""

    key: bytes | None
    value: bytes
    headers: Headers


def _text_or_base64(raw: bytes) -> tuple[str, bool]:
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), True


def build_dead_letter(
    raw: bytes | None,
    *,
    key: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    reason: str,
    detail: str,
    stage: str,
    error_class: str,
    headers: Iterable[tuple[str, bytes]] | None = None,
) -> DeadLetter:
    """The dead-letter record for one rejected input record (see the module docstring)."""
    size = len(raw) if raw is not None else 0
    truncated = raw is not None and size > MAX_RAW_BYTES
    body = raw[:MAX_RAW_BYTES] if raw is not None and truncated else raw
    raw_text: str | None = None
    is_b64 = False
    if body is not None:
        raw_text, is_b64 = _text_or_base64(body)
    key_text: str | None = None
    key_b64 = False
    if key is not None:
        key_text, key_b64 = _text_or_base64(key[:1024])
    value = {
        "reason": reason,
        "detail": detail,
        "stage": stage,
        "raw": raw_text,
        "raw_base64": is_b64,
        "raw_bytes": size,
        "raw_truncated": truncated,
        "key": key_text,
        "key_base64": key_b64,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "ts": to_rfc3339(timestamp_ms / 1000.0) if timestamp_ms is not None else None,
        "dead_lettered_at": to_rfc3339(time.time()),
    }
    message = f"{reason}: {detail}"[:MAX_MESSAGE_CHARS]
    out: Headers = [
        (HEADER_PREFIX + "topic", topic.encode()),
        (HEADER_PREFIX + "partition", str(partition).encode()),
        (HEADER_PREFIX + "offset", str(offset).encode()),
        (HEADER_PREFIX + "stage", stage.encode()),
        (HEADER_PREFIX + "reason", reason.encode()),
        (HEADER_PREFIX + "error.class", error_class.encode()),
        (HEADER_PREFIX + "error.message", message.encode("utf-8", "replace")),
    ]
    for name, hvalue in headers or ():
        if not name.startswith(HEADER_PREFIX):
            out.append((name, hvalue if isinstance(hvalue, bytes) else bytes(hvalue or b"")))
    return DeadLetter(key=key, value=orjson.dumps(value), headers=out)
