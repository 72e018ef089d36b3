"""Injected customer changes: which customers change, when, how; the ground truth.

A plan is made before any event is generated, from the profiles and their
natural purchase rhythm, so the truth is known up front. Everything that
makes a change visible (the big order, the complaints, the unpaid invoices,
which purchases are refunded) is decided here; the generator only renders it.
Onsets lie in the second half of the period, so every changed customer has a
baseline, and each customer gets at most one change.

>>> from datetime import date
>>> from anomon.lab.synthetic.population import make_population, natural_purchases
>>> pop = make_population(400, seed=3, days=365)
>>> rhythm = [natural_purchases(p, seed=3, days=365) for p in pop]
>>> plan = plan_changes(pop, rhythm, seed=3, days=365, start=date(2025, 1, 1), fraction=0.03)
>>> sorted({c.kind for c in plan}) == sorted(CHANGE_KINDS)
True
>>> all(c.onset_day >= 365 / 2 for c in plan)
True
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from anomon.lab.synthetic.behaviour import Behaviour
from anomon.lab.synthetic.population import CustomerProfile, model_epoch

DROP_OFF = "drop_off"
CHURN_RISK = "churn_risk"
COMPLAINT_SPIKE = "complaint_spike"
REFUND_ABUSE = "refund_abuse"
PAYMENT_ARREARS = "payment_arrears"
SPEND_ANOMALY = "spend_anomaly"

CHANGE_KINDS: tuple[str, ...] = (
    DROP_OFF, COMPLAINT_SPIKE, REFUND_ABUSE, PAYMENT_ARREARS, SPEND_ANOMALY,
)
"""Kinds that are injected; ``churn_risk`` truth follows from a ``drop_off`` that stops."""
TRUTH_KINDS: tuple[str, ...] = (*CHANGE_KINDS, CHURN_RISK)

MIN_HISTORY = 6
"""Purchases a customer needs before onset for a purchase-based change."""
DECLINE_FACTOR = 5.0
"""A declining customer's gaps grow by this factor after onset."""
COMPLAINT_CATEGORIES: tuple[str, ...] = ("delivery", "product", "billing", "service", "website")


@dataclass(frozen=True)
class Change:
    """One injected change of one customer.

    ``params`` holds what the generator renders, by kind:
    ``drop_off``: ``factor`` of a decline (``mode`` says stop or decline);
    ``spend_anomaly``: ``amount``;
    ``complaint_spike``: ``complaints`` [(day, severity, category)], ``survey`` (day, score);
    ``refund_abuse``: ``refunds`` {purchase index: (delay days, share refunded)};
    ``payment_arrears``: ``events`` [(day, status, days overdue, due day)], ``first_due``
    (day) and ``skip`` (due days of the natural invoices it replaces; all from
    ``first_due`` on when absent).
    """

    index: int
    customer_id: str
    kind: str
    onset_day: float
    detail: str
    mode: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def truth(self, start_epoch: int) -> list[dict[str, Any]]:
        """Ground-truth rows of this change (a stop also yields a ``churn_risk`` row)."""
        onset = datetime.fromtimestamp(model_epoch(self.onset_day, start_epoch), UTC).isoformat()
        row: dict[str, Any] = {"customer_id": self.customer_id, "kind": self.kind, "onset": onset}
        if self.mode is not None:
            row["mode"] = self.mode
        if "gap_days" in self.params:
            row["gap_days"] = self.params["gap_days"]
        row["detail"] = self.detail
        rows = [row]
        if self.kind == DROP_OFF and self.mode == "stop":
            rows.append({"customer_id": self.customer_id, "kind": CHURN_RISK, "onset": onset,
                         "mode": "stop", "detail": "churned: no activity after onset"})
        return rows


Rhythm = tuple[list[float], list[float]]
"""Natural purchase times (model days) and amounts of one customer."""


def plan_changes(
    profiles: Sequence[CustomerProfile],
    rhythms: Sequence[Rhythm],
    *,
    seed: int,
    days: int,
    start: date,
    fraction: float = 0.03,
    behaviour: Behaviour | None = None,
) -> list[Change]:
    """Choose ``round(fraction * customers)`` customers per kind (fewer if too few qualify).

    Returned in onset order. ``rhythms[i]`` is ``natural_purchases`` of ``profiles[i]``.
    """
    rng = random.Random(f"anomon-changes:{seed}")
    quota = round(fraction * len(profiles))
    used: set[int] = set()
    planner = _Planner(profiles, rhythms, rng, days, start, behaviour or Behaviour())
    plan: list[Change] = []
    if quota > 0:
        for kind in (PAYMENT_ARREARS, DROP_OFF, REFUND_ABUSE, SPEND_ANOMALY, COMPLAINT_SPIKE):
            plan.extend(planner.pick(kind, quota, used))
    plan.sort(key=lambda c: (c.onset_day, c.index))
    return plan


class _Planner:
    """Picks customers for one kind at a time and builds their change."""

    def __init__(self, profiles: Sequence[CustomerProfile], rhythms: Sequence[Rhythm],
                 rng: random.Random, days: int, start: date, behaviour: Behaviour) -> None:
        self.profiles = profiles
        self.behaviour = behaviour
        self.rhythms = rhythms
        self.rng = rng
        self.days = days
        self.start = start
        self.half = days / 2.0
        values = sorted(p.annual_value for p in profiles)
        self.high_value = values[int(0.9 * (len(values) - 1))] if values else math.inf

    def pick(self, kind: str, quota: int, used: set[int]) -> list[Change]:
        order = list(range(len(self.profiles)))
        self.rng.shuffle(order)
        if kind == DROP_OFF:
            # Put some high-value customers first: their loss is what matters most.
            high = [i for i in order if self.profiles[i].annual_value >= self.high_value]
            first = set(high[: max(1, quota // 3)])
            order = [i for i in order if i in first] + [i for i in order if i not in first]
        build = getattr(self, f"_{kind}")
        out: list[Change] = []
        for i in order:
            if len(out) >= quota:
                break
            if i in used:
                continue
            change = build(self.profiles[i], self.rhythms[i])
            if change is not None:
                used.add(i)
                out.append(change)
        return out

    def _date(self, day: float) -> str:
        return (self.start + timedelta(days=int(day))).isoformat()

    def _in_holiday(self, p: CustomerProfile, day: float) -> bool:
        return p.holiday is not None and p.holiday[0] - 3.0 <= day < p.holiday[1] + 3.0

    def _tier(self, p: CustomerProfile) -> str:
        return "high-value customer, " if p.annual_value >= self.high_value else ""

    def _drop_off(self, p: CustomerProfile, rhythm: Rhythm) -> Change | None:
        times, _ = rhythm
        b = self.behaviour
        lo, hi = self.half, 0.8 * self.days
        if b.observe_gaps is not None:  # leave the whole detection window inside the data
            lo = min(lo, 0.25 * self.days)
            hi = self.days - max(45.0, b.observe_gaps * p.mean_gap_days)
        js = [j for j in range(MIN_HISTORY, len(times)) if lo <= times[j] <= hi]
        if not js:
            return None
        j = self.rng.choice(js)
        gap = statistics.median(b - a for a, b in itertools.pairwise(times[: j + 1]))
        mode = "stop" if self.rng.random() < b.stop_share else "decline"
        params: dict[str, Any] = {"gap_days": round(p.mean_gap_days, 2)}
        if mode == "stop":
            detail = (f"{self._tier(p)}stopped buying and visiting after purchase {j + 1} "
                      f"(usual gap {gap:.1f} days)")
        else:
            factor = (b.decline_factors[0] if len(b.decline_factors) == 1
                      else self.rng.choice(b.decline_factors))
            params["factor"] = factor
            detail = (f"{self._tier(p)}purchase and visit rate fell to 1/{factor:g} "
                      f"(usual gap {gap:.1f} days, now about {gap * factor:.0f})")
        return Change(p.index, p.customer_id, DROP_OFF, times[j], detail, mode=mode,
                      params=params)

    def _spend_anomaly(self, p: CustomerProfile, rhythm: Rhythm) -> Change | None:
        times, amounts = rhythm
        onset = self.rng.uniform(self.half, self.days - 3.0)
        n = bisect.bisect_left(times, onset)
        if n < MIN_HISTORY or self._in_holiday(p, onset):
            return None
        median = statistics.median(amounts[:n])
        factor = self.rng.uniform(8.0, 20.0)
        amount = round(factor * median, 2)
        detail = (f"one order of {amount:.2f} {p.currency}, {factor:.1f}x the usual "
                  f"{median:.2f}")
        return Change(p.index, p.customer_id, SPEND_ANOMALY, onset, detail,
                      params={"amount": amount})

    def _complaint_spike(self, p: CustomerProfile, rhythm: Rhythm) -> Change | None:
        times, _ = rhythm
        rng = self.rng
        onset = rng.uniform(self.half, self.days - 7.0)
        if (onset < p.join_day + 60.0 or bisect.bisect_left(times, onset) < 2
                or self._in_holiday(p, onset)):
            return None
        n = rng.randint(3, 5)
        category = rng.choice(COMPLAINT_CATEGORIES)
        offsets = [0.0, *sorted(rng.uniform(0.05, 4.0) for _ in range(n - 1))]
        complaints = [
            (onset + off, rng.randint(3, 5),
             category if rng.random() < 0.8 else rng.choice(COMPLAINT_CATEGORIES))
            for off in offsets
        ]
        score = rng.randint(0, 6)
        survey = (onset + rng.uniform(1.0, 5.0), score)
        worst = max(s for _, s, _ in complaints)
        detail = (f"{n} complaints in {offsets[-1]:.1f} days (mostly {category}, severity up "
                  f"to {worst}), NPS {score}")
        return Change(p.index, p.customer_id, COMPLAINT_SPIKE, onset, detail,
                      params={"complaints": complaints, "survey": survey})

    def _refund_abuse(self, p: CustomerProfile, rhythm: Rhythm) -> Change | None:
        times, amounts = rhythm
        last = self.days - 7.0
        # Frequent enough buyers that four refunds pile up within about six weeks.
        js = [j for j in range(MIN_HISTORY, len(times))
              if times[j] >= self.half and bisect.bisect_right(times, last) - j >= 5
              and bisect.bisect_right(times, times[j] + 40.0) - j >= 4]
        if not js:
            return None
        rng = self.rng
        j = rng.choice(js)
        refunds: dict[int, tuple[float, float]] = {}
        for k in range(j, len(times)):
            if k - j < 4 or rng.random() < 0.85:
                share = 1.0 if rng.random() < 0.6 else rng.uniform(0.7, 1.0)
                refunds[k] = (rng.uniform(0.5, 5.0), share)
        # Whatever the dice said: at least four refunds and 65% of the value in the period.
        bought = sum(amounts[j:])

        def refunded() -> float:
            return sum(amounts[k] * s for k, (d, s) in refunds.items() if times[k] + d < self.days)

        for k in sorted(range(j, len(times)), key=lambda k: -amounts[k]):
            if refunded() >= 0.65 * bought:
                break
            if times[k] + 1.0 < self.days:
                refunds[k] = (rng.uniform(0.5, 1.0), 1.0)
        in_period = [k for k, (d, _) in refunds.items() if times[k] + d < self.days]
        share = refunded() / bought
        detail = (f"{len(in_period)} refunds after {len(times) - j} purchases since onset, "
                  f"{share:.0%} of their value (was {p.refund_rate:.0%} of purchases)")
        return Change(p.index, p.customer_id, REFUND_ABUSE, times[j], detail,
                      params={"refunds": refunds})

    def _payment_arrears(self, p: CustomerProfile, rhythm: Rhythm) -> Change | None:
        due = p.invoice_due_days(self.start, self.days)
        ms = [m for m in range(3, len(due) - 2)
              if due[m] >= self.half and due[m + 2] + 11.0 < self.days]
        if not ms:
            return None
        rng = self.rng
        m0 = rng.choice(ms)
        if self.behaviour.invoices_out_of_order:
            return self._unpaid_between_paid(p, due, m0)
        first = due[m0] + rng.randint(7, 15) + rng.uniform(0.1, 0.9)
        events: list[tuple[float, str, int, float]] = [
            (first, "overdue", int(first - due[m0]), float(due[m0]))]
        for m in range(m0 + 1, len(due)):
            day = due[m] + rng.randint(3, 10) + rng.uniform(0.1, 0.9)
            if day >= self.days:
                break
            status = "failed" if rng.random() < 0.4 else "overdue"
            events.append((day, status, int(day - due[m0]), float(due[m])))
        failed = sum(1 for e in events if e[1] == "failed")
        detail = (f"{len(events)} invoices in a row unpaid from the one due "
                  f"{self._date(due[m0])}, up to {events[-1][2]} days overdue, {failed} failed")
        return Change(p.index, p.customer_id, PAYMENT_ARREARS, first, detail,
                      params={"events": events, "first_due": float(due[m0])})

    def _unpaid_between_paid(self, p: CustomerProfile, due: list[int], m0: int) -> Change:
        """Two invoices a month apart fail and stay unpaid; the one between is paid."""
        rng = self.rng
        events: list[tuple[float, str, int, float]] = []
        for m in (m0, m0 + 2):
            day = due[m] + rng.uniform(0.5, 4.0)
            events.append((day, "failed", 0, float(due[m])))
        detail = (f"invoices due {self._date(due[m0])} and {self._date(due[m0 + 2])} failed "
                  f"and stay unpaid; the one between was paid")
        return Change(p.index, p.customer_id, PAYMENT_ARREARS, events[0][0], detail,
                      params={"events": events, "first_due": float(due[m0]),
                              "skip": [float(due[m0]), float(due[m0 + 2])]})
