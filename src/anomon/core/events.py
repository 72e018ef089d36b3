"""The input contract: customer events, one pydantic model per ``type``.

``Event`` is a discriminated union on ``type``. Unknown fields are kept (in
``model_extra``) and never rejected, so producers can add fields without
breaking anyone. ``streams/schemas/customer-event.schema.json`` is generated
from these models (``anomon schema``) and a test keeps the two in step.

>>> from anomon.core.events import EVENT_ADAPTER
>>> ev = EVENT_ADAPTER.validate_python({"event_id": "e1", "customer_id": "c1",
...     "type": "purchase", "ts": "2026-01-05T10:00:00+00:00", "amount": 42.5})
>>> type(ev).__name__, ev.amount, ev.epoch
('Purchase', 42.5, 1767607200.0)

A date without a time is midnight UTC of that date, in whatever offset it was written:

>>> def at(ts):
...     return EVENT_ADAPTER.validate_python({"event_id": "e", "customer_id": "c",
...         "type": "interaction", "ts": ts}).epoch
>>> at("2026-01-05T00:00:00+02:00") == at("2026-01-05T00:00:00Z") == 1767571200.0
True
>>> at("2026-01-05T00:00:01+02:00") == 1767571200.0 - 7200 + 1
True
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, overload

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
)

from anomon.core.timeutil import epoch_seconds

SCHEMA_VERSION = "1.1.0"  # 1.1: optional invoice_id on payments

CustomerId = Annotated[str, Field(min_length=1, max_length=256, pattern=r"\S")]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class EventType(StrEnum):
    """The kinds of customer event anomon understands."""

    PURCHASE = "purchase"
    INTERACTION = "interaction"
    COMPLAINT = "complaint"
    REFUND = "refund"
    PAYMENT = "payment"
    SURVEY = "survey"


class PaymentStatus(StrEnum):
    """Outcome of an invoice or payment attempt."""

    PAID = "paid"
    OVERDUE = "overdue"
    FAILED = "failed"


class _EpochSeconds:
    """``ts`` as epoch seconds, computed on the first read and then kept on the instance.

    A time of exactly midnight in its own offset is read as a date without a time:
    the epoch of midnight UTC of that date (which ``features.day_dated`` recognises),
    whatever offset the export wrote it in.

    ``functools.cached_property`` does the same but takes a lock on every first read
    (Python 3.11), which shows on the hot path.
    """

    name = "epoch"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _EpochSeconds: ...

    @overload
    def __get__(self, obj: BaseEvent, owner: type | None = None) -> float: ...

    def __get__(self, obj: BaseEvent | None, owner: type | None = None) -> float | _EpochSeconds:
        if obj is None:
            return self
        ts = obj.ts
        value = epoch_seconds(ts)
        if not (ts.hour or ts.minute or ts.second or ts.microsecond):  # a date, perhaps local
            offset = ts.utcoffset()
            if offset:
                value += offset.total_seconds()
        obj.__dict__[self.name] = value
        return value


class BaseEvent(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="Unique id of the event; the idempotency key."
    )
    customer_id: CustomerId = Field(description="Who the event is about (also the Kafka key).")
    ts: AwareDatetime = Field(description="Event time, RFC 3339 with an offset. Exactly "
                              "midnight (in its own offset) reads as a date without a time: "
                              "silences count from the middle of that day, and two orders of "
                              "one day are two orders, not one sent in parts.")
    channel: str | None = Field(
        None, max_length=128, description="Where it happened (web, store...)."
    )
    attributes: dict[str, Any] | None = Field(None, description="Free-form producer attributes.")

    epoch: ClassVar[_EpochSeconds] = _EpochSeconds()
    """Event time as seconds since the Unix epoch (computed once, then a plain read)."""


class Purchase(BaseEvent):
    """An order placed by the customer."""

    type: Literal["purchase"]
    amount: Amount = Field(description="Order value, >= 0.")
    currency: str | None = Field(None, min_length=3, max_length=3)


class Refund(BaseEvent):
    """Money returned to the customer (a refund or a return)."""

    type: Literal["refund"]
    amount: Amount = Field(description="Refunded value, >= 0.")
    currency: str | None = Field(None, min_length=3, max_length=3)


class Payment(BaseEvent):
    """An invoice payment, on time or not."""

    type: Literal["payment"]
    amount: Amount = Field(description="Invoice amount, >= 0.")
    currency: str | None = Field(None, min_length=3, max_length=3)
    status: PaymentStatus = Field(description="paid, overdue or failed.")
    days_overdue: Annotated[int, Field(ge=0, le=3650)] | None = None
    invoice_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="The invoice this payment (or failed attempt) is for. A later paid "
        "payment with the same id settles it; without ids, settlement goes by amount.")


class Complaint(BaseEvent):
    """A complaint raised with support."""

    type: Literal["complaint"]
    category: str | None = Field(None, max_length=128)
    severity: Annotated[int, Field(ge=1, le=5)] | None = Field(None, description="1 (low) to 5.")


class Survey(BaseEvent):
    """A satisfaction survey answer on the NPS scale."""

    type: Literal["survey"]
    score: Annotated[int, Field(ge=0, le=10)] = Field(description="0-10; 0-6 is a detractor.")


class Interaction(BaseEvent):
    """A visit, login, e-mail open, call or chat."""

    type: Literal["interaction"]
    kind: str | None = Field(None, max_length=64, description="visit, login, email_open, call...")


Event = Annotated[
    Purchase | Refund | Payment | Complaint | Survey | Interaction,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of the input contract, as published under ``streams/``."""
    schema = EVENT_ADAPTER.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://anomon.dev/schemas/customer-event.schema.json",
        "title": "CustomerEvent",
        "description": f"anomon customer event, contract version {SCHEMA_VERSION}.",
        **schema,
    }


def parse_ts(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (used by tools that read alert and truth files)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
