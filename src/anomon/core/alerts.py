"""The output contract: alerts on-call staff and their tools rely on.

``alert_id`` is derived from the fingerprint, the episode number and the status,
so the same change always yields the same id (a consumer can de-duplicate
re-deliveries), and the firing and resolved messages of one episode differ.

>>> fp = fingerprint("c1", "drop_off")
>>> alert_id(fp, 1, "firing") == alert_id(fp, 1, "firing") != alert_id(fp, 1, "resolved")
True
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

ALERT_SCHEMA_VERSION = "1.0.0"


class AlertKind(StrEnum):
    """What changed."""

    DROP_OFF = "drop_off"
    CHURN_RISK = "churn_risk"
    COMPLAINT_SPIKE = "complaint_spike"
    SPEND_ANOMALY = "spend_anomaly"
    REFUND_ABUSE = "refund_abuse"
    PAYMENT_ARREARS = "payment_arrears"


ALERT_KINDS: tuple[str, ...] = tuple(k.value for k in AlertKind)


class Reason(BaseModel):
    """One number that drove the score, against the customer's own baseline."""

    model_config = ConfigDict(frozen=True)

    feature: str = Field(description="Feature name, e.g. silence_days.")
    value: float = Field(description="The customer's value now.")
    baseline: float = Field(description="What is normal for this customer (or their segment).")
    text: str = Field("", description="The same in plain words.")


class Segment(BaseModel):
    """Value tier and lifecycle stage at detection time."""

    tier: Literal["high", "mid", "low"]
    stage: Literal["new", "active", "loyal", "at_risk", "lapsed", "churned"]


class ModelRef(BaseModel):
    """Which detector, at which version, produced the alert."""

    name: str
    version: str


class Alert(BaseModel):
    """One alert message on the ``customer-alerts`` topic."""

    model_config = ConfigDict(frozen=True)

    alert_id: str = Field(description="Deterministic from fingerprint, episode and status.")
    fingerprint: str = Field(description="Hash of customer id and kind: one per customer and kind.")
    customer_id: str
    kind: AlertKind
    status: Literal["firing", "resolved"]
    severity: Literal["info", "warning", "critical"]
    score: float
    threshold: float
    ts: str = Field(description="Event time of detection, RFC 3339.")
    episode: int = Field(description="1 for the first episode of this fingerprint, then 2...")
    segment: Segment
    reasons: list[Reason]
    action: str = Field(description="Recommended response for this kind and segment.")
    model: ModelRef
    events: list[str] = Field(description="Ids of the events that triggered the alert.")
    schema_version: str = ALERT_SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        """The JSON value published to Kafka."""
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Alert:
        return cls.model_validate_json(raw)


def fingerprint(customer_id: str, kind: str) -> str:
    """Stable id of (customer, kind), safe to hand to paging tools."""
    return hashlib.blake2b(f"{customer_id}\x1f{kind}".encode(), digest_size=10).hexdigest()


def alert_id(fp: str, episode: int, status: str) -> str:
    """Deterministic alert id from fingerprint, episode number and status."""
    return hashlib.blake2b(f"{fp}:{episode}:{status}".encode(), digest_size=12).hexdigest()


def alert_json_schema() -> dict[str, Any]:
    """The JSON Schema of the output contract, as published under ``streams/``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://anomon.dev/schemas/customer-alert.schema.json",
        "description": f"anomon alert, contract version {ALERT_SCHEMA_VERSION}.",
        **Alert.model_json_schema(),
    }


def dumps_compact(alert: Alert) -> str:
    """One JSON line (for files)."""
    return orjson.dumps(alert.model_dump(mode="json")).decode()
