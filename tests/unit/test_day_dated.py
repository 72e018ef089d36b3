"""Orders dated to the day (stamped at midnight UTC): two on one day are a short gap.

Exports without times stamp every order of a day alike. Orders stamped a few
seconds apart are one order sent in parts, but two orders dated to one day may
have been hours apart: read as parts of one order, a bursty buyer's short gaps
vanish and their rhythm looks regular (`docs/quality.md`, *Orders dated to the
day*).
"""

from __future__ import annotations

from anomon.core.features import add_purchase, basket_gaps, merged_orders, silence_days
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY


def _window(times: list[float]) -> CustomerState:
    state = CustomerState.new("c1", times[0])
    for ts in times:
        add_purchase(state, ts, 20.0)
    return state


def test_two_orders_dated_to_one_day_are_a_short_gap() -> None:
    dated = _window([0.0, 10 * DAY, 10 * DAY, 20 * DAY, 20 * DAY, 30 * DAY])
    assert merged_orders(dated)[0] == 2
    assert basket_gaps(dated) == (3, 30.0)


def test_orders_stamped_seconds_apart_are_still_one_order_in_parts() -> None:
    timed = _window([0.5 * DAY, 10.5 * DAY, 10.5 * DAY + 60.0, 20.5 * DAY, 20.5 * DAY, 30.5 * DAY])
    assert merged_orders(timed)[0] == 0
    assert basket_gaps(timed)[0] == 3


def test_a_recount_agrees() -> None:
    """An order arriving late (before the newest) makes the window be counted afresh."""
    dated = _window([0.0, 10 * DAY, 20 * DAY, 20 * DAY, 30 * DAY])
    add_purchase(dated, 10 * DAY, 20.0)  # late: the same day as an earlier one
    assert dated.basket_n == -1
    assert merged_orders(dated)[0] == 2
    assert basket_gaps(dated) == (3, 30.0)


def test_a_silence_since_a_dated_order_is_measured_from_the_middle_of_its_day() -> None:
    """A date without a time read as its first second would make every silence half a day
    too long, and a regular buyer's silence judged too soon."""
    assert silence_days(_window([0.0, 10 * DAY, 20 * DAY]), 30 * DAY) == 9.5
    assert silence_days(_window([0.3 * DAY, 10.3 * DAY, 20.3 * DAY]), 30.3 * DAY) == 10.0
