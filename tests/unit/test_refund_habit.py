"""Refund abuse judged against the customer's usual share of orders refunded.

A customer who habitually returns something from half of their orders does
nothing unusual when four of five come back in a month; one who never returns
anything does. A newcomer, with no habit of their own yet, is judged by the
population's.
"""

from __future__ import annotations

from tests.unit.conftest import History

from anomon.core.engine import Engine


def _four_of_five_returned(h: History, customer: str, start: float) -> History:
    """Five orders of 50 two days apart from ``start``, four returned whole the next day."""
    for i in range(5):
        day = start + 2.0 * i
        h.add(customer, day, "purchase", amount=50.0)
        if i < 4:
            h.add(customer, day + 1.0, "refund", amount=50.0)
    return h


def _fired(alerts: list) -> list:
    return [a for a in alerts if a.kind.value == "refund_abuse" and a.status == "firing"]


def _engine_in(refunds_per_100_orders: int) -> Engine:
    """An engine whose population has seen 10,000 orders of 50, this share of them returned."""
    engine = Engine()
    pop = engine.population
    pop.n_orders_seen, pop.purchase_value = 10_000, 500_000.0
    pop.n_refunds_seen = 100 * refunds_per_100_orders
    pop.refund_value = 50.0 * pop.n_refunds_seen
    return engine


def test_a_habitual_returner_s_usual_refunds_are_not_abuse() -> None:
    habit = History()
    for i in range(30):  # 150 days: one item of every other order sent back
        day = 5.0 * i
        habit.add("habit", day, "purchase", amount=50.0)
        if i % 2 == 0:
            habit.add("habit", day + 3.0, "refund", amount=10.0)
    habit = _four_of_five_returned(habit, "habit", 160.0)
    assert _fired(habit.replay(until_day=180, engine=_engine_in(3))) == []

    never = History()
    never.purchases("never", [5.0 * i for i in range(30)], amount=50.0)
    fired = _fired(_four_of_five_returned(never, "never", 160.0).replay(
        until_day=180, engine=_engine_in(3)))
    assert len(fired) == 1
    assert fired[0].score >= fired[0].threshold >= 3.0


def test_a_newcomer_is_judged_by_the_population_s_share() -> None:
    def newcomer_in(refunds_per_100_orders: int) -> list:
        return _fired(_four_of_five_returned(History(), "new", 0.0).replay(
            until_day=20, engine=_engine_in(refunds_per_100_orders)))

    assert len(newcomer_in(3)) == 1
    assert newcomer_in(45) == []
