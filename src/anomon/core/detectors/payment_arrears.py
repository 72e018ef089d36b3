"""Payment arrears: overdue or failed payments, repeated.

Fires on a streak of at least ``min_streak`` consecutive overdue or failed
payments, or one payment ``severe_days_overdue`` days late; one late invoice now
and then is normal. Resolves on the next ``paid`` payment.
"""

from __future__ import annotations

from anomon.core.alerts import Reason
from anomon.core.detectors.base import DetectionContext, Verdict
from anomon.core.events import Event
from anomon.core.state import CustomerState


class PaymentArrearsDetector:
    """Repeated overdue or failed payments."""

    kind = "payment_arrears"
    event_types = frozenset({"payment"})
    name = "payment-streak"
    version = "1"

    def on_event(self, state: CustomerState, event: Event, ctx: DetectionContext) -> Verdict | None:
        if event.type != "payment":
            return None
        cfg = ctx.config.payment_arrears
        if event.status == "paid":
            state.evidence.pop(self.kind, None)
            return Verdict(self.kind, firing=False, events=[event.event_id])
        state.remember(self.kind, event.event_id)
        if state.pay_streak < cfg.min_streak and state.pay_max_overdue < cfg.severe_days_overdue:
            return None
        earlier_bad = state.n_bad_payments - state.pay_streak
        earlier_all = max(1, state.n_payments - state.pay_streak)
        return Verdict(
            self.kind,
            firing=True,
            score=float(state.pay_streak),
            threshold=float(cfg.min_streak),
            events=list(state.evidence.get(self.kind, [])),
            reasons=[
                Reason(feature="bad_payment_streak", value=float(state.pay_streak),
                       baseline=round(earlier_bad / earlier_all, 3),
                       text=(f"{state.pay_streak} overdue or failed payments in a row; before, "
                             f"{earlier_bad} of {earlier_all} payments were late")),
                Reason(feature="max_days_overdue", value=float(state.pay_max_overdue),
                       baseline=0.0, text=f"up to {state.pay_max_overdue} days overdue"),
            ],
        )

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        return None
