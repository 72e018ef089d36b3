"""Detectors on hand-built histories: each change is caught, a steady customer is not."""

from __future__ import annotations

from tests.unit.conftest import History, weekly


def kinds(alerts, status: str = "firing") -> list[str]:
    return [a.kind.value for a in alerts if a.status == status]


def steady(h: History, customer: str = "steady") -> History:
    """A year of natural variation: weekly orders, a long gap, one complaint, one late invoice."""
    days = weekly(20) + [133.5 + 18] + [151.5 + 7 * i for i in range(1, 31)]
    h.purchases(customer, days, amount=lambda i: 40.0 + (i * 7) % 25)
    for month in range(12):
        status = "overdue" if month == 5 else "paid"
        h.add(customer, 30 * month + 3, "payment", amount=99.0, status=status,
              days_overdue=6 if status == "overdue" else None)
    h.add(customer, 100, "complaint", severity=2, category="delivery")
    h.add(customer, 120, "survey", score=8)
    h.add(customer, 200, "refund", amount=20.0)
    for d in range(0, 360, 3):
        h.add(customer, d + 0.3, "interaction", kind="visit")
    return h


def test_steady_customer_raises_nothing(history: History) -> None:
    alerts = steady(history).replay(until_day=365)
    assert alerts == []


def test_full_stop_raises_drop_off_and_a_return_resolves_it(history: History) -> None:
    history.purchases("gone", weekly(30))
    alerts = history.replay(until_day=260)
    assert kinds(alerts) == ["drop_off"]
    fired = alerts[0]
    assert fired.reasons[0].feature == "purchase_silence_days"
    assert fired.reasons[0].baseline < 10  # their own rhythm, about a week
    silent_days = (fired.reasons[0].value)
    assert 14 <= silent_days <= 45
    history.add("gone", 262, "purchase", amount=50.0)
    alerts = history.replay(until_day=270)
    assert kinds(alerts, "resolved") == ["drop_off"]


def test_decline_to_a_fifth_raises_drop_off(history: History) -> None:
    days = weekly(30) + [203 + 35 * i for i in range(1, 5)]
    history.purchases("slower", days)
    alerts = history.replay(until_day=360)
    assert "drop_off" in kinds(alerts)


def test_complaint_burst_raises_complaint_spike_then_resolves(history: History) -> None:
    history.purchases("angry", weekly(10))
    for i, sev in enumerate((4, 5, 3, 4)):
        history.add("angry", 70 + i * 0.8, "complaint", severity=sev, category="delivery")
    history.add("angry", 73.5, "survey", score=2)
    history.purchases("angry", [80 + 7 * i for i in range(10)])
    alerts = history.replay(until_day=150)
    assert kinds(alerts) == ["complaint_spike"]
    spike = next(a for a in alerts if a.status == "firing")
    assert spike.reasons[0].feature == "complaints_14d"
    assert spike.reasons[0].value >= 2
    assert len(spike.events) >= 2
    assert kinds(alerts, "resolved") == ["complaint_spike"]


def test_outsized_order_raises_spend_anomaly(history: History) -> None:
    history.purchases("big", weekly(12), amount=lambda i: 50.0 + (i % 3) * 5)
    history.add("big", 86, "purchase", amount=900.0)
    alerts = history.replay(until_day=90)
    assert kinds(alerts) == ["spend_anomaly"]
    assert alerts[0].reasons[0].baseline < 70
    assert alerts[0].events == [history.events[-1]["event_id"]]


def test_refund_spree_raises_refund_abuse(history: History) -> None:
    history.purchases("refunder", weekly(20), amount=60.0)
    for i in range(5):
        day = 140 + 7 * i
        history.add("refunder", day, "purchase", amount=80.0)
        history.add("refunder", day + 2, "refund", amount=75.0)
    alerts = history.replay(until_day=180)
    assert kinds(alerts) == ["refund_abuse"]


def test_repeated_overdue_invoices_raise_payment_arrears_and_payment_resolves(
    history: History,
) -> None:
    for month in range(8):
        history.add("debtor", 30 * month, "payment", amount=120.0, status="paid")
    for i, days_late in enumerate((10, 25, 40)):
        history.add("debtor", 240 + 30 * i, "payment", amount=120.0, status="overdue",
                    days_overdue=days_late)
    history.add("debtor", 335, "payment", amount=360.0, status="paid")
    alerts = history.replay(until_day=340)
    assert [(a.kind.value, a.status) for a in alerts] == [
        ("payment_arrears", "firing"), ("payment_arrears", "resolved")]
    assert alerts[0].reasons[0].value == 2


def test_two_failed_payments_with_a_paid_invoice_between_are_arrears(history: History) -> None:
    for month in range(6):
        history.add("owes", 30 * month, "payment", amount=100.0 + month, status="paid",
                    invoice_id=f"i{month}")
    history.add("owes", 182, "payment", amount=107.0, status="failed", invoice_id="i6")
    history.add("owes", 190, "payment", amount=108.0, status="paid", invoice_id="i7")
    history.add("owes", 200, "payment", amount=109.0, status="failed", invoice_id="i8")
    alerts = history.replay(until_day=201)
    assert [(a.kind.value, a.status) for a in alerts] == [("payment_arrears", "firing")]
    assert alerts[0].ts.startswith("2025-07-25")  # at the second failure, day 200
    assert alerts[0].reasons[0].value == 2 and "216.00 owed" in alerts[0].reasons[0].text
    assert alerts[0].score >= alerts[0].threshold
    history.add("owes", 220, "payment", amount=107.0, status="paid", invoice_id="i6")
    alerts = history.replay(until_day=221)
    assert [a.status for a in alerts] == ["firing"]  # one invoice still owed
    history.add("owes", 225, "payment", amount=109.0, status="paid", invoice_id="i8")
    alerts = history.replay(until_day=226)
    assert [a.status for a in alerts] == ["firing", "resolved"]


def test_one_failed_payment_left_unpaid_becomes_arrears_and_is_settled_by_amount(
        history: History) -> None:
    for month in range(6):
        history.add("late", 30 * month, "payment", amount=80.0, status="paid")
    history.add("late", 182, "payment", amount=95.5, status="failed")
    history.add("late", 190, "payment", amount=80.0, status="paid")  # another invoice
    alerts = history.replay(until_day=205)
    assert alerts == []  # owed 23 days: not yet
    alerts = history.replay(until_day=215)
    assert [(a.kind.value, a.status) for a in alerts] == [("payment_arrears", "firing")]
    history.add("late", 216, "payment", amount=95.5, status="paid")
    alerts = history.replay(until_day=217)
    assert [a.status for a in alerts] == ["firing", "resolved"]


def test_a_failed_attempt_retried_within_days_is_no_arrears(history: History) -> None:
    for month in range(8):
        history.add("retry", 30 * month, "payment", amount=60.0, status="failed",
                    invoice_id=f"r{month}")
        history.add("retry", 30 * month + 3, "payment", amount=60.0, status="paid",
                    invoice_id=f"r{month}")
    assert history.replay(until_day=260) == []


def test_churn_labels_resolve_late_and_a_return_resolves_as_zero(history: History) -> None:
    from anomon.core.engine import Engine

    history.purchases("back", weekly(10))  # each purchase resolves the previous snapshot as 0
    history.purchases("gone", weekly(5))  # silent after day 28: its snapshots wait 90 days
    early = Engine()
    history.replay(until_day=100, engine=early)
    assert early.churn.labels == {0: 13, 1: 0}
    assert history.replayer.states["gone"].pending  # label not known yet
    late = Engine()
    history.replay(until_day=200, engine=late)
    assert late.churn.labels[0] == 13
    assert late.churn.labels[1] >= 1
    horizon = 90 * 86400
    end = history.replayer.states["gone"].last_ts + 172 * 86400
    assert all(end - ts <= horizon for ts, _ in history.replayer.states["gone"].pending)
