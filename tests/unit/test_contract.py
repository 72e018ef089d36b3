"""The input contract: valid and invalid events of each type, and the published schemas."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from anomon import contracts
from anomon.core.decoding import EventDecoder
from anomon.core.errors import EventRejected

STREAMS = Path(__file__).resolve().parents[2] / "streams"
BASE = {"event_id": "e1", "customer_id": "c1", "ts": "2026-01-01T10:00:00+01:00"}

VALID = [
    {"type": "purchase", "amount": 10.5, "currency": "EUR", "channel": "web"},
    {"type": "purchase", "amount": 0},
    {"type": "refund", "amount": 3},
    {"type": "payment", "amount": 99, "status": "overdue", "days_overdue": 12},
    {"type": "payment", "amount": 99, "status": "paid"},
    {"type": "complaint", "category": "delivery", "severity": 5},
    {"type": "complaint"},
    {"type": "survey", "score": 0},
    {"type": "survey", "score": 10},
    {"type": "interaction", "kind": "login", "attributes": {"app": "ios"}},
    {"type": "interaction", "brand_new_field": [1, 2, 3]},
]

INVALID = [
    ({"type": "purchase"}, "schema_error", "amount"),
    ({"type": "purchase", "amount": -1}, "schema_error", "amount"),
    ({"type": "purchase", "amount": "ten"}, "schema_error", "amount"),
    ({"type": "purchase", "amount": 1e400}, "schema_error", "amount"),
    ({"type": "refund", "amount": None}, "schema_error", "amount"),
    ({"type": "payment", "amount": 5, "status": "maybe"}, "schema_error", "status"),
    ({"type": "payment", "amount": 5}, "schema_error", "status"),
    ({"type": "complaint", "severity": 9}, "schema_error", "severity"),
    ({"type": "survey", "score": 11}, "schema_error", "score"),
    ({"type": "survey"}, "schema_error", "score"),
    ({"type": "interaction", "customer_id": ""}, "schema_error", "customer_id"),
    ({"type": "interaction", "customer_id": "x" * 10_000}, "schema_error", "customer_id"),
    ({"type": "interaction", "event_id": 7}, "schema_error", "event_id"),
    ({"type": "interaction", "ts": "2026-01-01T10:00:00"}, "schema_error", "ts"),
    ({"type": "interaction", "ts": "yesterday"}, "schema_error", "ts"),
    ({"type": "interaction", "ts": "1970-01-01T00:00:00Z"}, "timestamp_out_of_range", "before"),
    ({"type": "interaction", "ts": "2999-01-01T00:00:00Z"}, "timestamp_out_of_range", "future"),
    ({"type": "teleport"}, "unknown_type", "teleport"),
    ({"type": None}, "unknown_type", "None"),
]


@pytest.mark.parametrize("fields", VALID, ids=lambda f: f["type"])
def test_valid_events_decode(fields: dict) -> None:
    event = EventDecoder().decode(orjson.dumps({**BASE, **fields}))
    assert event.type == fields["type"]
    assert event.customer_id == "c1"


def test_nan_and_infinity_as_text_are_no_numbers() -> None:
    raw = orjson.dumps({**BASE, "type": "survey", "score": 3, "channel": "NaN-Infinity",
                        "attributes": {"note": "NaN"}})
    event = EventDecoder().decode(raw)
    assert (event.channel, event.attributes) == ("NaN-Infinity", {"note": "NaN"})


def test_unknown_fields_are_kept() -> None:
    event = EventDecoder().decode(orjson.dumps({**BASE, **VALID[-1]}))
    assert event.model_extra == {"brand_new_field": [1, 2, 3]}


@pytest.mark.parametrize(("fields", "reason", "mention"), INVALID,
                         ids=[f"{r}-{m}" for _, r, m in INVALID])
def test_invalid_events_are_rejected_with_the_field(fields: dict, reason: str, mention: str
                                                    ) -> None:
    raw = orjson.dumps({**BASE, **fields}) if "1e400" not in str(fields) else (
        orjson.dumps(BASE)[:-1] + b',"type":"purchase","amount":1e400}')
    with pytest.raises(EventRejected) as err:
        EventDecoder().decode(raw)
    assert err.value.reason == reason
    assert mention in err.value.detail


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "empty_value"),
    (None, "empty_value"),
    (b"{not json", "invalid_json"),
    (b'{"amount": NaN}', "invalid_json"),
    (b'{"event_id":"e","customer_id":"c","type":"survey","ts":"2026-01-01T00:00:00Z",'
     b'"score":3,"attributes":{"x":NaN}}', "invalid_json"),
    (b'{"event_id":"e","customer_id":"c","type":"survey","ts":"2026-01-01T00:00:00Z",'
     b'"score":3,"unknown":-Infinity}', "invalid_json"),
    (b'{"event_id":"e","customer_id":"c","type":"purchase","ts":"2026-01-01T00:00:00Z",'
     b'"amount":Infinity}', "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'"text"', "not_an_object"),
    (b"x" * 70_000, "too_large"),
])
def test_undecodable_records(raw: bytes | None, reason: str) -> None:
    with pytest.raises(EventRejected) as err:
        EventDecoder().decode(raw)
    assert err.value.reason == reason


def test_published_contracts_match_the_code() -> None:
    assert contracts.drifted(STREAMS) == [], "run `anomon schema` and commit streams/"


def test_drift_is_detected(tmp_path: Path) -> None:
    contracts.write(tmp_path)
    assert contracts.drifted(tmp_path) == []
    schema = tmp_path / "schemas/customer-event.schema.json"
    schema.write_text(schema.read_text().replace('"amount"', '"amount_eur"', 1))
    assert contracts.drifted(tmp_path) == ["schemas/customer-event.schema.json"]


def test_event_schema_names_every_type() -> None:
    schema = orjson.loads((STREAMS / "schemas/customer-event.schema.json").read_bytes())
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == {"purchase", "interaction", "complaint", "refund", "payment", "survey"}


# -- Confluent framing (Schema Registry wire format: magic byte 0, 4-byte schema id) --------

def _framed(schema_id: int, payload: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def test_a_framed_record_decodes_like_plain_json_and_counts_its_schema_id() -> None:
    from anomon.core.decoding import SCHEMA_IDS

    raw = orjson.dumps({**BASE, **VALID[0]})
    decoder = EventDecoder()
    before = SCHEMA_IDS[70000]
    framed = [decoder.decode(_framed(70000, raw)), decoder.decode(_framed(7, raw))]
    plain = decoder.decode(raw)
    assert all(e == plain for e in framed)
    assert decoder.schema_ids == {70000: 1, 7: 1}
    assert SCHEMA_IDS[70000] == before + 1


@pytest.mark.parametrize(("raw", "reason", "mention"), [
    (_framed(3, b"{not json"), "invalid_json", ""),
    (_framed(3, b"[1]"), "not_an_object", "an array"),
    (_framed(3, b""), "empty_value", "schema id 3"),
    (b"\x00\x00\x01", "invalid_json", "5-byte schema frame"),
    (_framed(3, orjson.dumps({**BASE, "type": "purchase"})), "schema_error", "amount"),
])
def test_a_bad_framed_record_is_rejected_with_its_reason(raw: bytes, reason: str,
                                                         mention: str) -> None:
    decoder = EventDecoder()
    with pytest.raises(EventRejected) as err:
        decoder.decode(raw)
    assert err.value.reason == reason and mention in err.value.detail


def test_the_frame_counts_toward_the_size_limit() -> None:
    raw = orjson.dumps({**BASE, **VALID[0]})
    with pytest.raises(EventRejected) as err:
        EventDecoder(max_event_bytes=len(raw) + 4).decode(_framed(1, raw))
    assert err.value.reason == "too_large"
    assert EventDecoder(max_event_bytes=len(raw) + 5).decode(_framed(1, raw))
