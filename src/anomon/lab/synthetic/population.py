"""Synthetic customer profiles and their natural purchase rhythm.

Every customer gets a profile drawn from its own random stream, so customer
``i`` looks the same whatever the population size. Time here is in *model
days* from the start of the period (floats); the generator maps them to
clock times.

>>> p = make_profile(0, seed=7, days=365)
>>> p.customer_id, 4.0 <= p.mean_gap_days <= 90.0
('c000000', True)
>>> times, amounts = natural_purchases(p, seed=7, days=365)
>>> times == sorted(times) and all(a > 0 for a in amounts)
True
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from datetime import date, timedelta

from anomon.lab.synthetic.behaviour import VISIT_STYLES, Behaviour, VisitStyle

CHANNELS: tuple[str, ...] = ("web", "app", "store")
CURRENCIES: tuple[str, ...] = ("EUR", "USD", "GBP")

DAY_S = 86400
DAY_OPEN_S = 8 * 3600
"""A model day maps to clock time 08:00-22:00 of its calendar day."""
DAY_SPAN_S = 14 * 3600

# Random streams of one customer; see ``stream_seed``.
STREAM_PROFILE = 0
STREAM_PURCHASES = 1
STREAM_EXTRAS = 2
STREAM_BEHAVIOUR = 3


def stream_seed(seed: int, customer: int, stream: int, window: int = 0) -> int:
    """Seed of one random stream of one customer (and time window), distinct per argument.

    >>> stream_seed(7, 1, 2) != stream_seed(7, 2, 1)
    True
    """
    return ((abs(seed) * 1_000_003 + customer) * 8 + stream) * 65_537 + window


def model_epoch(day: float, start_epoch: int) -> int:
    """Clock time (whole epoch seconds) of a model day: its fraction spans 08:00-22:00.

    The map is monotone, so model-time order is clock-time order.

    >>> model_epoch(0.5, 0) / 3600, model_epoch(1.0, 0) / 3600
    (15.0, 32.0)
    """
    whole = math.floor(day)
    return start_epoch + whole * DAY_S + DAY_OPEN_S + round((day - whole) * DAY_SPAN_S)


def month_days(start: date, days: int, day_of_month: int) -> list[int]:
    """Model days (from ``start``) of ``day_of_month`` in every month of the period.

    >>> month_days(date(2025, 1, 1), 70, 15)
    [14, 45]
    """
    out: list[int] = []
    year, month = start.year, start.month
    end = start + timedelta(days=days)
    while True:
        d = date(year, month, day_of_month)
        if d >= end:
            return out
        if d >= start:
            out.append((d - start).days)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """How one customer behaves when nothing changes."""

    index: int
    customer_id: str
    join_day: float
    """Model day of the first activity: 0 for customers that exist at the start."""
    existing: bool
    mean_gap_days: float
    """Mean days between purchases."""
    gap_shape: float
    """Gamma shape of the gaps: 1 is Poisson, higher is more regular."""
    spend_median: float
    """Median order value."""
    spend_sigma: float
    """Log-normal spread of one order around the median."""
    visits_per_purchase: float
    refund_rate: float
    """Share of purchases followed by a (partial) refund."""
    survey_rate: float
    """Share of purchases followed by a survey answer."""
    promoter_share: float
    complaints_per_year: float
    invoicing: bool
    invoice_day: int
    """Day of the month the invoice is due."""
    monthly_fee: float
    late_rate: float
    """Share of invoices paid late."""
    holiday: tuple[float, float] | None
    """A model-day window with no activity (a long but harmless gap)."""
    channel: str
    currency: str
    visits: VisitStyle = "mixed"
    """How their visits relate to their purchases (see :class:`Behaviour`)."""

    @property
    def annual_value(self) -> float:
        """Expected spend per year: the value-tier driver."""
        return self.spend_median * math.exp(self.spend_sigma**2 / 2) * 365.0 / self.mean_gap_days

    def invoice_due_days(self, start: date, days: int) -> list[int]:
        """Model days on which this customer's monthly invoices fall due (none if not invoiced).

        New customers get their first invoice at least 25 days after joining.
        """
        if not self.invoicing:
            return []
        due = month_days(start, days, self.invoice_day)
        return due if self.existing else [d for d in due if d >= self.join_day + 25.0]


def make_profile(
    index: int,
    seed: int,
    days: int,
    *,
    new_customer_fraction: float = 0.25,
    invoicing_fraction: float = 0.3,
    holiday_fraction: float = 0.5,
    behaviour: Behaviour | None = None,
) -> CustomerProfile:
    """Draw the profile of customer ``index``.

    ``behaviour`` overrides are drawn from a stream of their own, so the
    defaults give the same customers as before any knob existed.
    """
    behaviour = behaviour or Behaviour()
    rng = random.Random(stream_seed(seed, index, STREAM_PROFILE))
    existing = rng.random() >= new_customer_fraction
    join_day = 0.0 if existing else rng.uniform(0.0, 0.9 * days)
    mean_gap = min(90.0, max(4.0, rng.lognormvariate(math.log(18.0), 0.8)))
    knobs = random.Random(stream_seed(seed, index, STREAM_BEHAVIOUR))
    if behaviour.gap_days is not None:
        mean_gap = _log_uniform(knobs, behaviour.gap_days)
    own_shape = behaviour.gap_shape
    if behaviour.gap_shapes is not None:
        own_shape = _log_uniform(knobs, behaviour.gap_shapes)
    visits = knobs.choice(VISIT_STYLES) if behaviour.visits == "varied" else behaviour.visits
    spend_median = round(max(3.0, rng.lognormvariate(math.log(45.0), 0.9)), 2)
    spend_sigma = rng.uniform(0.3, 0.5)
    invoicing = rng.random() < invoicing_fraction
    monthly_orders = 30.44 / mean_gap
    holiday: tuple[float, float] | None = None
    if rng.random() < holiday_fraction:
        h0 = rng.uniform(join_day, float(days))
        holiday = (h0, h0 + min(120.0, rng.uniform(1.0, 2.0) * mean_gap))
    gap_shape = rng.uniform(1.5, 4.0)
    profile = CustomerProfile(
        index=index,
        customer_id=f"c{index:06d}",
        join_day=join_day,
        existing=existing,
        mean_gap_days=mean_gap,
        gap_shape=gap_shape if own_shape is None else own_shape,
        spend_median=spend_median,
        spend_sigma=spend_sigma,
        visits_per_purchase=rng.uniform(2.0, 6.0),
        refund_rate=rng.uniform(0.01, 0.05),
        survey_rate=rng.uniform(0.05, 0.2),
        promoter_share=rng.uniform(0.45, 0.85),
        complaints_per_year=rng.uniform(0.0, 0.8),
        invoicing=invoicing,
        invoice_day=rng.randint(1, 28),
        monthly_fee=round(max(20.0, spend_median * monthly_orders * rng.uniform(0.8, 1.3)), 2),
        late_rate=rng.uniform(0.02, 0.08),
        holiday=holiday,
        channel=rng.choices(CHANNELS, weights=(0.55, 0.3, 0.15))[0],
        currency=rng.choices(CURRENCIES, weights=(0.7, 0.2, 0.1))[0],
        visits=visits,
    )
    # drawn from the knobs' stream, after the profile's own draws: the defaults stay as they were
    if behaviour.refund_rates is not None:
        profile = replace(profile, refund_rate=_log_uniform(knobs, behaviour.refund_rates))
    if behaviour.complaints_per_year is not None:
        profile = replace(profile, complaints_per_year=_log_uniform(
            knobs, behaviour.complaints_per_year))
    if behaviour.late_rates is not None:
        profile = replace(profile, late_rate=_log_uniform(knobs, behaviour.late_rates))
    if behaviour.spend_spreads is not None:
        profile = replace(profile, spend_sigma=_log_uniform(knobs, behaviour.spend_spreads))
    return profile


def _log_uniform(rng: random.Random, pair: tuple[float, float]) -> float:
    """A draw log-uniform on ``[pair[0], pair[1]]``."""
    return math.exp(rng.uniform(math.log(pair[0]), math.log(pair[1])))


def make_population(
    customers: int,
    seed: int,
    days: int,
    *,
    new_customer_fraction: float = 0.25,
    invoicing_fraction: float = 0.3,
    holiday_fraction: float = 0.5,
    behaviour: Behaviour | None = None,
) -> list[CustomerProfile]:
    """Profiles of customers ``0 .. customers-1``.

    >>> pop = make_population(200, seed=1, days=365)
    >>> len(pop), len({p.customer_id for p in pop})
    (200, 200)
    """
    return [
        make_profile(i, seed, days, new_customer_fraction=new_customer_fraction,
                     invoicing_fraction=invoicing_fraction, holiday_fraction=holiday_fraction,
                     behaviour=behaviour)
        for i in range(customers)
    ]


def natural_purchases(
    profile: CustomerProfile, seed: int, days: int,
    season: tuple[float, float] | None = None, season_factor: float = 1.0,
) -> tuple[list[float], list[float]]:
    """Purchase times (model days) and amounts of the customer if nothing changes.

    Gaps are gamma-distributed around the customer's mean; a purchase that
    would fall into the holiday window waits until after it. A gap that starts
    in the ``season`` window is ``season_factor`` x shorter.
    """
    s0, s1 = season if season is not None else (math.inf, math.inf)
    rng = random.Random(stream_seed(seed, profile.index, STREAM_PURCHASES))
    gap, shape = profile.mean_gap_days, profile.gap_shape
    scale = gap / shape
    if profile.existing:
        t = rng.uniform(0.0, 1.0) * gap
    else:
        t = profile.join_day + rng.uniform(0.0, 0.3) * gap
    times: list[float] = []
    amounts: list[float] = []
    h0, h1 = profile.holiday if profile.holiday is not None else (math.inf, math.inf)
    while t < days:
        if h0 <= t < h1:
            t = h1 + rng.uniform(0.0, 0.5) * gap
            continue
        times.append(t)
        noise = rng.lognormvariate(0.0, profile.spend_sigma)
        amounts.append(round(profile.spend_median * noise, 2))
        g = rng.gammavariate(shape, scale)
        t += max(0.05, g / season_factor if s0 <= t < s1 else g)
    return times, amounts
