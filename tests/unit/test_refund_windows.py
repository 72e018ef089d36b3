"""Refund abuse over two windows: a frequent buyer's new habit is not diluted by older orders."""

from __future__ import annotations

from tests.unit.conftest import History

from anomon.core.detection_config import DetectionConfig, RefundAbuseConfig
from anomon.core.engine import Engine


def _frequent_buyer_who_starts_returning(h: History) -> History:
    """Orders every two days for 100 days, then four orders each returned the next day."""
    h.purchases("frequent", [2.0 * i for i in range(50)], amount=50.0)
    for day in (100.0, 103.0, 106.0, 118.0):
        h.add("frequent", day, "purchase", amount=50.0)
        h.add("frequent", day + 1.0, "refund", amount=50.0)
    return h


def _engine(**refund: float) -> Engine:
    return Engine(DetectionConfig(refund_abuse=RefundAbuseConfig(**refund)))


def test_the_short_window_catches_what_the_long_one_dilutes(history: History) -> None:
    alerts = _frequent_buyer_who_starts_returning(history).replay(until_day=125,
                                                                  engine=_engine())
    fired = [a for a in alerts if a.kind.value == "refund_abuse" and a.status == "firing"]
    assert len(fired) == 1
    assert "in 21 days" in fired[0].reasons[0].text
    assert fired[0].score >= fired[0].threshold
    # over 45 days the 50-day habit of orders hides it: 200 refunded of about 850 bought
    long_only = History()
    alerts = _frequent_buyer_who_starts_returning(long_only).replay(
        until_day=125, engine=_engine(short_window_days=45.0))
    assert not [a for a in alerts if a.kind.value == "refund_abuse"]


def test_the_short_window_must_clear_the_threshold_by_its_extra_surprise(
    history: History,
) -> None:
    """Four of four orders returned by a customer who never returned one is about 1e-8 here:
    an extra surprise of 20 asks for more than four refunds can show."""
    alerts = _frequent_buyer_who_starts_returning(history).replay(
        until_day=125, engine=_engine(short_window_extra_surprise=20.0))
    assert not [a for a in alerts if a.kind.value == "refund_abuse"]


def test_a_short_window_set_wider_than_the_long_one_is_still_judged(history: History) -> None:
    """The refunds are counted over the wider of the two windows before either is judged."""
    alerts = _frequent_buyer_who_starts_returning(history).replay(
        until_day=125, engine=_engine(window_days=2.0, short_window_days=21.0))
    fired = [a for a in alerts if a.kind.value == "refund_abuse" and a.status == "firing"]
    assert len(fired) == 1
    assert "in 21 days" in fired[0].reasons[0].text
