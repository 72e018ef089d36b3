"""Behaviour knobs of the synthetic population: the axes of the robustness matrix.

The defaults reproduce the original generator exactly (a mix of rhythms and
visit styles); each knob narrows one axis so a detector can be judged on
customers it was never tuned to:

* ``gap_shape``: gamma shape of every purchase gap (0.7 bursty, 1 Poisson, 4 regular);
  ``gap_shapes``: instead, each customer's shape drawn log-uniformly from a range
  (bursty and regular buyers in one population);
* ``gap_days``: mean purchase gaps drawn log-uniformly from this range (fast, slow);
* ``visits``: ``mixed`` (a session before most purchases and browsing of its own),
  ``sessions`` (visits and logins only in the hours before a purchase: they tell
  nothing new), ``independent`` (browsing on its own, never glued to purchases)
  or ``absent``; ``varied``: each customer one of those four, drawn alike;
* ``season``: one month in which every customer buys ``season_factor`` x as often;
* ``invoices_out_of_order``: late invoices are settled after later ones, failed
  attempts are retried, and arrears show as unpaid invoices between paid ones;
* ``refund_rates``, ``complaints_per_year``, ``late_rates``, ``spend_spreads``: ranges
  each customer's usual share of orders refunded, complaints a year, share of invoices
  paid late and log-normal spread of order sizes are drawn from (log-uniform;
  defaults 1-5%, 0-0.8, 2-8% and 0.3-0.5): habitual returners, frequent complainers,
  late payers and erratic spenders are customers too;
* ``decline_factors``: gap multipliers of declining customers (5: to a fifth);
* ``observe_gaps``: when set, a drop-off onset leaves at least
  ``max(45 days, observe_gaps x the usual gap)`` of data after it.

>>> Behaviour().visits, Behaviour(gap_shape=4.0).gap_shape
('mixed', 4.0)
>>> try:
...     Behaviour(gap_shape=1.0, gap_shapes=(0.5, 4.0))
... except ValueError as err:
...     print("exclude each other" in str(err))
True
>>> Behaviour(season=True).season_window(365)
(219.0, 249.0)
"""

from __future__ import annotations

from typing import Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

VisitStyle = Literal["mixed", "sessions", "independent", "absent"]
VISIT_STYLES: tuple[VisitStyle, ...] = get_args(VisitStyle)


class Behaviour(BaseModel):
    """How the synthetic customers behave (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gap_shape: float | None = Field(None, gt=0.0, le=20.0,
                                    description="Gamma shape of every gap; None: 1.5-4 each.")
    gap_shapes: tuple[float, float] | None = Field(
        None, description="Range each customer's gap shape is drawn from (log-uniform).")
    gap_days: tuple[float, float] | None = Field(
        None, description="Range of mean gaps (days); None: log-normal around 18, 4-90.")
    visits: VisitStyle | Literal["varied"] = "mixed"
    season: bool = False
    season_factor: float = Field(2.0, ge=1.0, le=10.0)
    season_start: float = Field(0.6, ge=0.0, le=0.95, description="Share of the period.")
    season_days: float = Field(30.0, gt=0.0, le=120.0)
    refund_rates: tuple[float, float] | None = Field(
        None, description="Range of customers' usual refund shares; None: 1-5%.")
    complaints_per_year: tuple[float, float] | None = Field(
        None, description="Range of customers' usual complaints a year; None: 0-0.8.")
    late_rates: tuple[float, float] | None = Field(
        None, description="Range of customers' shares of invoices paid late; None: 2-8%.")
    spend_spreads: tuple[float, float] | None = Field(
        None, description="Range of the log-normal spread of a customer's order sizes; "
        "None: 0.3-0.5.")
    invoices_out_of_order: bool = False
    invoice_ids: bool = Field(True, description="Payments name the invoice they settle.")
    decline_factors: tuple[float, ...] = Field((5.0,), min_length=1)
    stop_share: float = Field(0.6, ge=0.0, le=1.0, description="Share of drop-offs that stop.")
    observe_gaps: float | None = Field(None, gt=0.0, le=50.0)

    @model_validator(mode="after")
    def _knobs_agree(self) -> Self:
        if self.gap_shape is not None and self.gap_shapes is not None:
            raise ValueError("gap_shape and gap_shapes exclude each other")
        for name in ("gap_shapes", "refund_rates", "complaints_per_year", "late_rates",
                     "spend_spreads"):
            pair = getattr(self, name)
            if pair is not None and not 0.0 < pair[0] <= pair[1]:
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high")
        for name in ("refund_rates", "late_rates"):
            pair = getattr(self, name)
            if pair is not None and pair[1] > 1.0:
                raise ValueError(f"{name} are shares: at most 1")
        return self

    def season_window(self, days: float) -> tuple[float, float] | None:
        """Model days ``[start, end)`` of the seasonal peak, or ``None``."""
        if not self.season:
            return None
        start = round(self.season_start * days)
        return float(start), float(start + self.season_days)
