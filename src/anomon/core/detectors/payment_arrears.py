"""Payment arrears: money owed and not settled.

Each ``failed`` or ``overdue`` payment is an amount owed until a ``paid``
payment settles it: the one with the same ``invoice_id`` where producers give
ids, otherwise the oldest owed amount equal to the paid one (to the cent).
Other invoices may be paid meanwhile: that settles nothing else. Fires when

* ``min_owed`` amounts are owed that fell due within ``span_days`` of each
  other (two failed payments a month apart are arrears even with a paid
  invoice between them), or
* one amount has been owed for ``max_age_days``, or is ``severe_days_overdue``
  late.

Resolves once nothing is owed. The score is a surprise: each owed amount is
as unlikely as the customer's own share of late or failed payments (with one
pseudo-late payment in four), the owed amounts together as the product; the
threshold is the surprise of ``min_owed`` owed amounts at that share, and an
alert on age or days overdue reports the same threshold.

>>> from anomon.core.detection_config import DetectionConfig
>>> from anomon.core.population import PopulationBaseline
>>> from anomon.core.state import CustomerState
>>> ctx = DetectionContext(DetectionConfig(), PopulationBaseline())
>>> s, d = CustomerState.new("c1", 0.0), PaymentArrearsDetector()
>>> owe(s, 0.0, 50.0, "i1", "failed", 0)
>>> owe(s, 10 * DAY, 70.0, "i2", "paid", 0)  # another invoice paid between
>>> owe(s, 30 * DAY, 55.0, "i3", "failed", 0)
>>> d.judge(s, 30 * DAY, ctx).firing
True
>>> owe(s, 31 * DAY, 50.0, "i1", "paid", 0); owe(s, 32 * DAY, 55.0, None, "paid", 0)
>>> s.owed
[]
"""

from __future__ import annotations

from typing import Literal

from anomon.core.alerts import Reason
from anomon.core.detectors.base import NEVER, DetectionContext, Score, Verdict, surprise
from anomon.core.events import Event
from anomon.core.state import MAX_OWED, CustomerState
from anomon.core.timeutil import DAY


def owe(state: CustomerState, ts: float, amount: float, invoice: str | None, status: str,
        days_overdue: int) -> None:
    """Book a payment outcome into what the customer owes (``state.owed``)."""
    owed = state.owed
    if status == "paid":
        for i, item in enumerate(owed):
            if (item[2] == invoice) if invoice else (abs(item[1] - amount) < 0.005):
                del owed[i]
                return
        if not invoice:  # one payment for several: the oldest amounts adding up to it
            total = 0.0
            for k, item in enumerate(owed):
                total += item[1]
                if abs(total - amount) < 0.005:
                    del owed[: k + 1]
                    return
                if total > amount:
                    return
        return
    for item in owed:
        if invoice and item[2] == invoice:  # the same invoice again: it stays owed
            item[3] = max(item[3], days_overdue)
            return
    owed.append([ts, round(amount, 2), invoice or "", days_overdue])
    if len(owed) > MAX_OWED:
        del owed[0]


class PaymentArrearsDetector:
    """Unsettled failed or overdue amounts."""

    kind = "payment_arrears"
    event_types = frozenset({"payment"})
    judges: Literal["before", "after"] = "after"
    name = "money-owed"
    version = "2"

    def on_event(self, state: CustomerState, event: Event, ctx: DetectionContext) -> Verdict | None:
        if event.type != "payment":
            return None
        owe(state, event.epoch, float(event.amount), event.invoice_id, event.status.value,
            event.days_overdue or 0)
        if event.status != "paid":
            state.remember(self.kind, event.event_id)
        elif not state.owed:
            state.evidence.pop(self.kind, None)
            return Verdict(self.kind, firing=False, events=[event.event_id])
        return self.judge(state, event.epoch, ctx)

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        if not state.owed or state.is_open(self.kind):
            return None
        return self.judge(state, now, ctx)

    def next_check(self, state: CustomerState, now: float, ctx: DetectionContext) -> float:
        if not state.owed or state.is_open(self.kind):
            return NEVER
        return state.owed[0][0] + ctx.config.payment_arrears.max_age_days * DAY

    def score(self, state: CustomerState, now: float, ctx: DetectionContext) -> Score:
        share = self._late_share(state)
        cfg = ctx.config.payment_arrears
        return Score(surprise(share ** len(state.owed)) if state.owed else 0.0,
                     surprise(share ** cfg.min_owed))

    @staticmethod
    def _late_share(state: CustomerState) -> float:
        return (state.n_bad_payments + 1.0) / (state.n_payments + 4.0)

    def judge(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        """A firing verdict when what is owed amounts to arrears (see the module docstring)."""
        cfg = ctx.config.payment_arrears
        owed = state.owed
        if not owed:
            return None
        times = [item[0] for item in owed]
        close = any(times[i + cfg.min_owed - 1] - times[i] <= cfg.span_days * DAY
                    for i in range(len(times) - cfg.min_owed + 1))
        age = (now - times[0]) / DAY
        worst = max(item[3] for item in owed)
        if not (close or age >= cfg.max_age_days or worst >= cfg.severe_days_overdue):
            return None
        share = self._late_share(state)
        total = sum(item[1] for item in owed)
        earlier_bad = max(0, state.n_bad_payments - len(owed))
        earlier_all = max(1, state.n_payments - len(owed))
        return Verdict(
            self.kind,
            firing=True,
            score=round(surprise(share ** len(owed)), 3),
            threshold=round(surprise(share ** cfg.min_owed), 3),
            events=list(state.evidence.get(self.kind, [])),
            reasons=[
                Reason(feature="owed_payments", value=float(len(owed)),
                       baseline=round(earlier_bad / earlier_all, 3),
                       text=(f"{len(owed)} failed or overdue payments unsettled, "
                             f"{total:,.2f} owed; before, {earlier_bad} of {earlier_all} "
                             f"payments were late")),
                Reason(feature="oldest_owed_days", value=round(age, 1),
                       baseline=float(cfg.max_age_days),
                       text=(f"the oldest unpaid for {age:.0f} days"
                             + (f", up to {worst} days overdue" if worst else ""))),
            ],
        )

