"""Bytes -> validated :class:`~anomon.core.events.Event`, or a clear rejection.

Every way a record can be bad has its own reason code, used as the metric label
and in the dead-letter record:

=========================  ==================================================
reason                     meaning
=========================  ==================================================
``empty_value``            no bytes at all (a tombstone or an empty message)
``too_large``              more bytes than ``max_event_bytes``
``invalid_json``           not parseable as JSON (NaN and Infinity included)
``not_an_object``          JSON, but not an object (an array, a number...)
``unknown_type``           ``type`` missing or not one of the known types
``schema_error``           a field is missing, of the wrong type or out of range
``timestamp_out_of_range`` event time before ``min_event_ts`` or in the future
=========================  ==================================================

**Confluent framing.** Records written by a Schema Registry serializer (the
JSON Schema one) start with a 5-byte frame: magic byte ``0`` and the schema id
as a 4-byte big-endian integer. Plain JSON never starts with a zero byte, so a
framed record is told apart without configuration: the frame is stripped, the
JSON after it decoded as usual, and the schema id counted in
:attr:`EventDecoder.schema_ids` (and process-wide in :data:`SCHEMA_IDS`, which the
worker's ``/metrics`` exports). No registry is consulted: the event contract is
anomon's own JSON Schema either way.

>>> decoder = EventDecoder()
>>> plain = (b'{"event_id":"e1","customer_id":"c1","type":"survey",'
...          b'"ts":"2026-01-01T00:00:00Z","score":3}')
>>> decoder.decode(plain).score
3
>>> decoder.decode(bytes([0, 0, 0, 0, 42]) + plain).score, dict(decoder.schema_ids)
(3, {42: 1})
>>> split_frame(bytes([0, 0, 0, 1, 0]) + b"{}"), split_frame(b"{}")
((256, b'{}'), (None, b'{}'))
>>> try:
...     decoder.decode(b'[1, 2]')
... except EventRejected as err:
...     print(err.reason)
not_an_object
"""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from anomon.core.errors import EventRejected
from anomon.core.events import EVENT_ADAPTER, EVENT_TYPES, Event

DEFAULT_MIN_EVENT_TS = datetime(1990, 1, 1, tzinfo=UTC).timestamp()
_KNOWN_TYPES = frozenset(EVENT_TYPES)

MAGIC_BYTE = 0
FRAME_BYTES = 5  # magic byte + 4-byte big-endian schema id
#: Framed records decoded in this process, by schema id (all decoders together).
SCHEMA_IDS: Counter[int] = Counter()
_VALIDATE_JSON = EVENT_ADAPTER.validator.validate_json
"""``EVENT_ADAPTER.validate_json`` without the wrapper, which only checks options not used here."""


def split_frame(raw: bytes) -> tuple[int | None, bytes]:
    """(schema id, payload) of a Confluent-framed record; (``None``, ``raw``) if not framed."""
    if len(raw) >= FRAME_BYTES and raw[0] == MAGIC_BYTE:
        return int.from_bytes(raw[1:FRAME_BYTES], "big"), raw[FRAME_BYTES:]
    return None, raw


class EventDecoder:
    """Decodes and validates raw event records.

    Parameters
    ----------
    max_event_bytes
        Larger values are rejected as ``too_large`` before parsing.
    min_event_ts
        Earliest acceptable event time (epoch seconds).
    max_future_s
        How far ahead of the wall clock an event time may be.
    """

    def __init__(
        self,
        max_event_bytes: int = 64 * 1024,
        min_event_ts: float = DEFAULT_MIN_EVENT_TS,
        max_future_s: float = 86400.0,
    ) -> None:
        self.max_event_bytes = max_event_bytes
        self.min_event_ts = min_event_ts
        self.max_future_s = max_future_s
        #: Framed records this decoder took in, by schema id.
        self.schema_ids: Counter[int] = Counter()

    def decode(self, raw: bytes | None) -> Event:
        """Return the validated event or raise :class:`EventRejected`."""
        if not raw:
            raise EventRejected("empty_value", "the record has no value")
        if len(raw) > self.max_event_bytes:
            raise EventRejected(
                "too_large", f"{len(raw)} bytes is over the limit of {self.max_event_bytes}"
            )
        if raw[0] == MAGIC_BYTE:
            schema_id, raw = split_frame(raw)
            if schema_id is None:
                raise EventRejected("invalid_json", "a zero byte, but no 5-byte schema frame")
            self.schema_ids[schema_id] += 1
            SCHEMA_IDS[schema_id] += 1
            if not raw:
                raise EventRejected("empty_value", f"schema id {schema_id}, nothing after it")
        # fast path: pydantic parses and validates in one pass; any failure takes the slow
        # path below, which names the reason
        try:
            event: Event = _VALIDATE_JSON(raw)
        except ValidationError:
            pass
        else:
            if not _may_hold_non_finite(event) or (b"NaN" not in raw and b"Infinity" not in raw):
                return self._check_time(event)
            # the parser here takes NaN and Infinity, which JSON has not, where a value may be
            # anything (free-form attributes, unknown fields); the slow path rejects them
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise EventRejected("invalid_json", str(err)) from None
        return self.validate(data)

    def validate(self, data: Any) -> Event:
        """Validate an already parsed JSON value."""
        if not isinstance(data, dict):
            raise EventRejected("not_an_object", f"expected a JSON object, got {_json_kind(data)}")
        event_type = data.get("type")
        if event_type not in _KNOWN_TYPES:
            raise EventRejected(
                "unknown_type",
                f"type {event_type!r} is not one of {', '.join(EVENT_TYPES)}",
            )
        try:
            event: Event = EVENT_ADAPTER.validate_python(data)
        except ValidationError as err:
            raise EventRejected("schema_error", _describe(err)) from None
        return self._check_time(event)

    def _check_time(self, event: Event) -> Event:
        epoch = event.epoch
        if epoch < self.min_event_ts:
            raise EventRejected(
                "timestamp_out_of_range",
                f"ts {event.ts.isoformat()} is before the earliest accepted",
            )
        if self.max_future_s < math.inf and epoch > time.time() + self.max_future_s:
            raise EventRejected(
                "timestamp_out_of_range", f"ts {event.ts.isoformat()} is in the future"
            )
        return event


def _may_hold_non_finite(event: Event) -> bool:
    """Whether a value of ``event`` is free-form: only there could a NaN have been taken.

    Every typed number refuses NaN and Infinity (amounts are finite, the others integers).
    """
    return event.attributes is not None or bool(event.__pydantic_extra__)


def _describe(err: ValidationError) -> str:
    """One line naming each offending field, e.g. ``amount: Input should be >= 0``."""
    parts = []
    for item in err.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in item["loc"][1:] or item["loc"]) or "(root)"
        parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
