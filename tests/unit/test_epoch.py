"""Event time as epoch seconds: the fast path gives exactly ``datetime.timestamp()``."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from anomon.core.events import EVENT_ADAPTER
from anomon.core.timeutil import epoch_seconds


def test_the_same_number_as_timestamp_for_any_offset_and_instant() -> None:
    rng = random.Random(3)
    for _ in range(20000):
        instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            microseconds=rng.randrange(-10**16, 4 * 10**16))
        ts = instant.astimezone(timezone(timedelta(minutes=rng.choice([0, 1, -5, 330, -570]))))
        assert epoch_seconds(ts) == ts.timestamp(), ts
    summer = datetime(2026, 7, 1, 12, tzinfo=ZoneInfo("Europe/Berlin"))  # not a fixed offset
    winter = datetime(2026, 1, 1, 12, tzinfo=ZoneInfo("Europe/Berlin"))
    assert (epoch_seconds(summer), epoch_seconds(winter)) == (summer.timestamp(),
                                                              winter.timestamp())


def test_decoded_events_carry_the_exact_epoch() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        ts = (f"2025-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T0{rng.randrange(10)}:"
              f"1{rng.randrange(10)}:3{rng.randrange(10)}.{rng.randrange(10**6):06d}"
              f"{rng.choice('+-')}0{rng.randrange(10)}:{rng.choice(['00', '30', '45'])}")
        event = EVENT_ADAPTER.validate_python({"event_id": "e", "customer_id": "c",
                                               "type": "survey", "score": 5, "ts": ts})
        assert event.epoch == event.ts.timestamp(), ts
