"""The synthetic event stream: customers living their rhythm, some of them changing.

Events come out in global event-time order while only one window of events
(and each customer's purchase rhythm) is held in memory: time is cut into
30-day windows; in each window every customer advances its
own processes (purchases with their visits, refunds and surveys; background
visits, logins and e-mail opens; complaints; invoices; its injected change)
and the window's events are sorted and yielded. Every customer draws from its
own seeded stream per window, so the output depends only on the config.

>>> cfg = SyntheticConfig(customers=50, days=120, seed=1)
>>> events = list(generate(cfg))
>>> events == list(generate(cfg)), events[0]["event_id"], events[0]["ts"] <= events[-1]["ts"]
(True, 'e000000001', True)
"""

from __future__ import annotations

import bisect
import gzip
import itertools
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from random import Random
from typing import IO, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from anomon.lab.synthetic.behaviour import Behaviour
from anomon.lab.synthetic.changes import (
    COMPLAINT_CATEGORIES,
    COMPLAINT_SPIKE,
    DROP_OFF,
    PAYMENT_ARREARS,
    REFUND_ABUSE,
    SPEND_ANOMALY,
    TRUTH_KINDS,
    Change,
    plan_changes,
)
from anomon.lab.synthetic.population import (
    CHANNELS,
    DAY_S,
    STREAM_EXTRAS,
    CustomerProfile,
    make_population,
    model_epoch,
    natural_purchases,
    stream_seed,
)

EVENT_TYPES: tuple[str, ...] = ("purchase", "interaction", "complaint", "refund", "payment",
                                "survey")
WINDOW_DAYS = 30.0
"""Events are generated and sorted one window of model time at a time."""
LEAD = 0.1
"""No event comes more than this many model days before the anchor of its group."""

_BACKGROUND_KINDS = ("visit", "login", "email_open", "chat", "call")
_BACKGROUND_CUMULATIVE = (0.45, 0.70, 0.95, 0.98)


class SyntheticConfig(BaseModel):
    """What to generate. The same config always gives the same events and truth."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customers: int = Field(3000, ge=1, description="Population size.")
    days: int = Field(365, ge=28, le=3650, description="Length of the period in days.")
    start: date = Field(date(2025, 1, 1), description="First day of the period (UTC).")
    seed: int = Field(7, description="Seed of every random choice.")
    change_fraction: float = Field(0.03, ge=0.0, le=0.15,
                                   description="Share of customers changed, per kind.")
    new_customer_fraction: float = Field(0.25, ge=0.0, le=1.0,
                                         description="Share joining during the period.")
    invoicing_fraction: float = Field(0.3, ge=0.0, le=1.0,
                                      description="Share billed by monthly invoice.")
    holiday_fraction: float = Field(0.5, ge=0.0, le=1.0,
                                    description="Share with one long, harmless gap.")
    behaviour: Behaviour = Field(Behaviour(), description="Behaviour knobs (the matrix axes).")

    @property
    def start_epoch(self) -> int:
        """Epoch seconds of 00:00 UTC on the first day."""
        return int(datetime(self.start.year, self.start.month, self.start.day,
                            tzinfo=UTC).timestamp())

    @property
    def end_epoch(self) -> int:
        """Epoch seconds of the end of the period (exclusive)."""
        return self.start_epoch + self.days * DAY_S


@dataclass
class Plan:
    """Profiles, natural rhythms and injected changes of one config."""

    config: SyntheticConfig
    profiles: list[CustomerProfile]
    rhythms: list[tuple[list[float], list[float]]]
    changes: list[Change]

    def truth(self) -> list[dict[str, Any]]:
        """Ground-truth rows in onset order."""
        start = self.config.start_epoch
        return [row for c in self.changes for row in c.truth(start)]


def make_plan(config: SyntheticConfig) -> Plan:
    """Draw the population and decide the changes (no events yet)."""
    profiles = make_population(
        config.customers, config.seed, config.days,
        new_customer_fraction=config.new_customer_fraction,
        invoicing_fraction=config.invoicing_fraction,
        holiday_fraction=config.holiday_fraction,
        behaviour=config.behaviour,
    )
    b = config.behaviour
    season = b.season_window(config.days)
    rhythms = [natural_purchases(p, config.seed, config.days, season, b.season_factor)
               for p in profiles]
    changes = plan_changes(profiles, rhythms, seed=config.seed, days=config.days,
                           start=config.start, fraction=config.change_fraction, behaviour=b)
    return Plan(config, profiles, rhythms, changes)


def ground_truth(config: SyntheticConfig) -> list[dict[str, Any]]:
    """The ground-truth rows of ``config``, without generating the events.

    >>> rows = ground_truth(SyntheticConfig(customers=300, seed=2))
    >>> sorted(set(r["kind"] for r in rows))[:2], all("onset" in r for r in rows)
    (['churn_risk', 'complaint_spike'], True)
    """
    return make_plan(config).truth()


def generate(config: SyntheticConfig, plan: Plan | None = None) -> Iterator[dict[str, Any]]:
    """Events of ``config`` in event-time order (ties in generation order), as JSON-able dicts.

    ``plan`` is ``make_plan(config)`` when the caller already has it (to share it with the truth).
    """
    plan = plan or make_plan(config)
    days = config.days
    n_windows = math.ceil(days / WINDOW_DAYS)
    buckets: list[list[tuple[int, int, int, str, dict[str, Any]]]] = [
        [] for _ in range(n_windows)]
    changes = {c.index: c for c in plan.changes}
    seq = itertools.count()
    customers = [
        _Customer(p, plan.rhythms[p.index], changes.get(p.index), config, buckets, seq)
        for p in plan.profiles
    ]
    ids = [p.customer_id for p in plan.profiles]
    rng = Random()
    dates: dict[int, str] = {}
    n = 0
    for k in range(n_windows):
        limit = min((k + 1) * WINDOW_DAYS, float(days))
        for c in customers:
            if c.next_anchor() < limit:
                rng.seed(stream_seed(config.seed, c.profile.index, STREAM_EXTRAS, k))
                c.advance(limit, rng)
        batch = buckets[k]
        buckets[k] = []
        batch.sort()
        for epoch, _, ci, type_, fields in batch:
            n += 1
            day, rest = divmod(epoch, DAY_S)
            text = dates.get(day)
            if text is None:
                text = dates[day] = datetime.fromtimestamp(day * DAY_S, UTC).date().isoformat()
            hh, rest = divmod(rest, 3600)
            mm, ss = divmod(rest, 60)
            yield {"event_id": f"e{n:09d}", "customer_id": ids[ci], "type": type_,
                   "ts": f"{text}T{hh:02d}:{mm:02d}:{ss:02d}+00:00", **fields}


class _Customer:
    """The processes of one customer, advanced window by window."""

    def __init__(self, profile: CustomerProfile, rhythm: tuple[list[float], list[float]],
                 change: Change | None, config: SyntheticConfig,
                 buckets: list[list[tuple[int, int, int, str, dict[str, Any]]]],
                 seq: Iterator[int]) -> None:
        self.profile = profile
        self.behaviour = config.behaviour
        self.seq = seq
        self.change = change
        self.days = float(config.days)
        self.start_epoch = config.start_epoch
        self.buckets = buckets
        self.cutoff = math.inf
        self.decline_after = math.inf
        self.decline_factor = 1.0
        self.abuse_after = math.inf
        self.refunds: dict[int, tuple[float, float]] = {}
        kind = change.kind if change is not None else None
        times, amounts = rhythm
        purchases = [(t, a, k) for k, (t, a) in enumerate(zip(times, amounts, strict=True))]
        if change is not None and kind == DROP_OFF:
            onset = change.onset_day
            if change.mode == "stop":
                self.cutoff = onset
            else:
                self.decline_after = onset
                self.decline_factor = factor = float(change.params.get("factor", 5.0))
                purchases = [(t if t <= onset else onset + factor * (t - onset), a, k)
                             for t, a, k in purchases]
                purchases = [x for x in purchases if x[0] < self.days]
        elif change is not None and kind == REFUND_ABUSE:
            self.abuse_after = change.onset_day
            self.refunds = change.params["refunds"]
        elif change is not None and kind == SPEND_ANOMALY:
            purchases.append((change.onset_day, change.params["amount"], -1))
            purchases.sort()
        self.purchases = purchases
        self.pi = 0
        self.invoices = profile.invoice_due_days(config.start, config.days)
        if change is not None and kind == PAYMENT_ARREARS:
            first_due = change.params["first_due"]
            skip = change.params.get("skip")
            self.invoices = [d for d in self.invoices
                             if (d not in skip if skip is not None else d < first_due)]
        self.ii = 0
        self.sessions = profile.visits in ("mixed", "sessions")
        if profile.visits == "independent":
            self.bg_rate = profile.visits_per_purchase / profile.mean_gap_days
        else:
            self.bg_rate = max(0.05, profile.visits_per_purchase - 1.15) / profile.mean_gap_days
        self.bg_next = profile.join_day if not profile.existing else -1.0
        if profile.visits in ("sessions", "absent"):
            self.bg_next = math.inf
        self.complaint_rate = profile.complaints_per_year / 365.0
        self.complaint_next = -1.0 if self.complaint_rate > 0 else math.inf
        self.change_pending = kind in (COMPLAINT_SPIKE, PAYMENT_ARREARS)
        self.first_draws = True

    # -- scheduling ------------------------------------------------------------------------

    def next_anchor(self) -> float:
        """Model day of the earliest group not generated yet."""
        nxt = math.inf
        if self.pi < len(self.purchases):
            nxt = self.purchases[self.pi][0] - LEAD
        if self.ii < len(self.invoices):
            nxt = min(nxt, self.invoices[self.ii] - 5.0)
        if self.change_pending and self.change is not None:
            nxt = min(nxt, self.change.onset_day - LEAD)
        nxt = min(nxt, self.bg_next, self.complaint_next - LEAD)
        return nxt if nxt <= self.cutoff else math.inf

    def emit(self, day: float, type_: str, fields: dict[str, Any]) -> None:
        if day < 0.0 or day >= self.days or day > self.cutoff:
            return
        epoch = model_epoch(day, self.start_epoch)
        bucket = self.buckets[int(day // WINDOW_DAYS)]
        bucket.append((epoch, next(self.seq), self.profile.index, type_, fields))

    def advance(self, limit: float, rng: Random) -> None:
        """Generate every group whose anchor is before ``limit``."""
        if self.first_draws:
            self.first_draws = False
            if self.bg_next < 0.0:
                self.bg_next = rng.expovariate(self.bg_rate)
            if self.complaint_next < 0.0:
                self.complaint_next = self.profile.join_day + rng.expovariate(
                    self.complaint_rate)
        while self.pi < len(self.purchases) and self.purchases[self.pi][0] - LEAD < limit:
            self._purchase(*self.purchases[self.pi], rng)
            self.pi += 1
        while self.bg_next < limit:
            self._background(self.bg_next, rng)
            self.bg_next += rng.expovariate(self.bg_rate)
        while self.complaint_next - LEAD < limit:
            self._complaint(self.complaint_next, rng)
            self.complaint_next += rng.expovariate(self.complaint_rate)
        while self.ii < len(self.invoices) and self.invoices[self.ii] - 5.0 < limit:
            self._invoice(float(self.invoices[self.ii]), rng)
            self.ii += 1
        if (self.change_pending and self.change is not None
                and self.change.onset_day - LEAD < limit):
            self.change_pending = False
            self._change(self.change, rng)

    # -- groups ----------------------------------------------------------------------------

    def _on_holiday(self, day: float) -> bool:
        h = self.profile.holiday
        return h is not None and h[0] <= day < h[1]

    def _channel(self, rng: Random) -> str:
        return self.profile.channel if rng.random() < 0.8 else rng.choice(CHANNELS)

    def _purchase(self, day: float, amount: float, k: int, rng: Random) -> None:
        p = self.profile
        channel = self._channel(rng)
        if rng.random() < 0.85 and self.sessions:
            kind = "login" if channel == "app" else "visit"
            self.emit(day - rng.uniform(0.002, LEAD), "interaction",
                      {"kind": kind, "channel": channel})
            if self.profile.visits == "sessions" and rng.random() < 0.5:
                self.emit(day - rng.uniform(0.002, LEAD), "interaction",
                          {"kind": "visit", "channel": channel})
        self.emit(day, "purchase", {"amount": amount, "currency": p.currency, "channel": channel})
        if day >= self.abuse_after:
            if k in self.refunds:
                delay, share = self.refunds[k]
                self.emit(day + delay, "refund", {"amount": round(amount * share, 2),
                                                  "currency": p.currency, "channel": channel})
        elif k >= 0 and rng.random() < p.refund_rate:
            share = 1.0 if rng.random() < 0.55 else rng.uniform(0.2, 0.9)
            self.emit(day + rng.uniform(2.0, 20.0), "refund",
                      {"amount": round(amount * share, 2), "currency": p.currency,
                       "channel": channel})
        if rng.random() < p.survey_rate:
            self.emit(day + rng.uniform(1.0, 4.0), "survey",
                      {"score": self._score(rng), "channel": "email"})

    def _score(self, rng: Random) -> int:
        u = rng.random()
        if u < 0.02:
            return rng.randint(4, 6)
        if u < 0.02 + self.profile.promoter_share:
            return rng.randint(9, 10)
        return rng.randint(7, 8)

    def _background(self, day: float, rng: Random) -> None:
        if self._on_holiday(day):
            return
        if day > self.decline_after and rng.random() >= 1.0 / self.decline_factor:
            return
        if day == self.profile.join_day and not self.profile.existing:
            kind = "visit"
        else:
            kind = _BACKGROUND_KINDS[bisect.bisect(_BACKGROUND_CUMULATIVE, rng.random())]
        channel = "email" if kind == "email_open" else (
            "phone" if kind == "call" else self._channel(rng))
        self.emit(day, "interaction", {"kind": kind, "channel": channel})

    def _complaint(self, day: float, rng: Random) -> None:
        if self._on_holiday(day):
            return
        channel = rng.choice(("chat", "phone", "email"))
        if channel != "email" and self.profile.visits != "absent":
            self.emit(day - rng.uniform(0.002, LEAD), "interaction",
                      {"kind": "call" if channel == "phone" else "chat", "channel": channel})
        severity = rng.choices((1, 2, 3), weights=(0.5, 0.35, 0.15))[0]
        self.emit(day, "complaint", {"category": rng.choice(COMPLAINT_CATEGORIES),
                                     "severity": severity, "channel": channel})

    def _invoice(self, due: float, rng: Random) -> None:
        p = self.profile
        amount = round(p.monthly_fee * rng.lognormvariate(0.0, 0.15), 2)
        base = {"amount": amount, "currency": p.currency, "channel": "invoice",
                **self._invoice_id(due)}
        shuffled = self.behaviour.invoices_out_of_order
        if shuffled and rng.random() < 0.05:  # a failed attempt, retried days later
            tried = rng.uniform(0.0, 2.0)
            self.emit(due + tried, "payment", {**base, "status": "failed"})
            self.emit(due + tried + rng.uniform(1.0, 5.0), "payment", {**base, "status": "paid"})
        elif rng.random() < p.late_rate:
            late = rng.randint(2, 10)
            self.emit(due + late + rng.uniform(0.1, 0.9), "payment",
                      {**base, "status": "overdue", "days_overdue": late})
            # out of order: settled after the next month's invoice, now and then
            later = late + (rng.randint(5, 25) if shuffled else rng.randint(1, 6))
            self.emit(due + later + rng.uniform(0.1, 0.9), "payment",
                      {**base, "status": "paid", "days_overdue": later})
        else:
            self.emit(due - rng.uniform(0.0, 5.0), "payment", {**base, "status": "paid"})

    def _invoice_id(self, due: float) -> dict[str, str]:
        if not self.behaviour.invoice_ids:
            return {}
        return {"invoice_id": f"inv-{self.profile.index:06d}-{int(due):04d}"}

    def _change(self, change: Change, rng: Random) -> None:
        p = self.profile
        if change.kind == COMPLAINT_SPIKE:
            for day, severity, category in change.params["complaints"]:
                channel = rng.choice(("chat", "phone", "email"))
                if (channel != "email" and self.profile.visits != "absent"
                        and rng.random() < 0.6):
                    self.emit(day + rng.uniform(0.002, 0.05), "interaction",
                              {"kind": "call" if channel == "phone" else "chat",
                               "channel": channel})
                self.emit(day, "complaint", {"category": category, "severity": severity,
                                             "channel": channel})
            day, score = change.params["survey"]
            self.emit(day, "survey", {"score": score, "channel": "email"})
        elif change.kind == PAYMENT_ARREARS:
            for day, status, overdue, due in change.params["events"]:
                amount = round(p.monthly_fee * rng.lognormvariate(0.0, 0.15), 2)
                fields = {"amount": amount, "currency": p.currency, "channel": "invoice",
                          "status": status, **self._invoice_id(due)}
                if status == "overdue" or overdue:
                    fields["days_overdue"] = overdue
                self.emit(day, "payment", fields)


@dataclass
class DatasetSummary:
    """What ``write_dataset`` wrote."""

    events: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    customers: int = 0
    """Customers with at least one event."""
    changes: dict[str, int] = field(default_factory=dict)
    """Ground-truth rows per kind."""
    customer_days: float = 0.0
    """Sum over customers of the days from their first event to the end of the period."""
    start: str = ""
    end: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events, "by_type": dict(self.by_type), "customers": self.customers,
            "changes": dict(self.changes), "customer_days": round(self.customer_days, 1),
            "start": self.start, "end": self.end, "seconds": round(self.seconds, 3),
        }

    def __str__(self) -> str:
        types = ", ".join(f"{t} {self.by_type.get(t, 0):,}" for t in EVENT_TYPES)
        changes = ", ".join(f"{k} {self.changes.get(k, 0)}" for k in TRUTH_KINDS)
        return (f"{self.events:,} events ({types}) from {self.customers:,} customers, "
                f"{self.start} to {self.end}, {self.customer_days:,.0f} customer-days, "
                f"in {self.seconds:.1f} s\ntruth: {changes}")


def _open_write(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        return gzip.open(path, "wb", compresslevel=5)  # type: ignore[return-value]
    return path.open("wb")


def write_dataset(config: SyntheticConfig, events_path: Path | str,
                  truth_path: Path | str) -> DatasetSummary:
    """Write the events (JSONL, gzip if the name ends in ``.gz``) and the ground truth (JSONL)."""
    began = time.perf_counter()
    plan = make_plan(config)
    truth = plan.truth()
    by_type: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    count = 0
    with _open_write(Path(events_path)) as out:
        for event in generate(config, plan):
            count += 1
            by_type[event["type"]] += 1
            if event["customer_id"] not in first_seen:
                first_seen[event["customer_id"]] = _epoch_of(event["ts"])
            out.write(orjson.dumps(event) + b"\n")
    with _open_write(Path(truth_path)) as out:
        for row in truth:
            out.write(orjson.dumps(row) + b"\n")
    end = config.end_epoch
    return DatasetSummary(
        events=count,
        by_type={t: by_type[t] for t in EVENT_TYPES},
        customers=len(first_seen),
        changes={k: n for k in TRUTH_KINDS if (n := sum(1 for r in truth if r["kind"] == k))},
        customer_days=sum(end - first for first in first_seen.values()) / DAY_S,
        start=config.start.isoformat(),
        end=(config.start + timedelta(days=config.days)).isoformat(),
        seconds=time.perf_counter() - began,
    )


def _epoch_of(ts: str) -> int:
    return int(datetime.fromisoformat(ts).timestamp())
