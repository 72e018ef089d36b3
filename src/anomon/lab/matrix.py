"""The robustness matrix: every behaviour variant replayed through the engine and scored.

Each :class:`Variant` is a synthetic population with one behaviour knob turned
(or several together, see :mod:`anomon.lab.synthetic.behaviour`). Every variant
has stops and declines to a fifth and a quarter, and every other kind of change.
:func:`run_matrix` generates each variant in memory, replays it through a fresh
:class:`~anomon.core.engine.Engine` and scores the alerts against the truth:
recall, false alarms per 1000 customer-days, precision and the median delay in
days and in the customer's own gaps, per kind (drop-off split into stops and
declines). Drop-off is caught when an alert comes within ``max(45 days, 8 usual
gaps)`` of the onset; the other kinds within 60 days.

>>> v = Variant("tiny", "a tiny base population", customers=60, days=200)
>>> result = run_variant(v)
>>> result.report.customer_days > 0, result.events > 1000
(True, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from anomon.core.alerts import Alert
from anomon.core.detection_config import DetectionConfig
from anomon.core.engine import Engine
from anomon.lab.quality import DEFAULT_WINDOW_DAYS, QualityReport, score
from anomon.lab.synthetic.behaviour import Behaviour
from anomon.lab.synthetic.generator import SyntheticConfig, generate, make_plan
from anomon.replay import Replayer

DAY_S = 86400
DROP_OFF_WINDOW_DAYS = 45.0
DROP_OFF_WINDOW_GAPS = 8.0
GOALS = {"drop_off/stop": 0.9, "drop_off/decline": 0.6, "drop_off": 0.0, "churn_risk": 0.0}
"""Recall goals of the matrix; the other kinds need 0.95. Churn risk is shown, not judged."""
OTHER_KINDS = ("complaint_spike", "refund_abuse", "payment_arrears", "spend_anomaly")
"""The kinds judged at the default recall goal: all but drop-off and churn risk."""
MAX_FALSE_ALARMS_PER_1000 = 1.0
_MATRIX = {"decline_factors": (5.0, 4.0), "observe_gaps": DROP_OFF_WINDOW_GAPS}


@dataclass(frozen=True)
class Variant:
    """One row group of the matrix: a population and how it behaves."""

    name: str
    description: str
    behaviour: dict[str, Any] = field(default_factory=dict)
    customers: int = 2000
    days: int = 365
    seed: int = 17
    new_customer_fraction: float = 0.25
    change_fraction: float = 0.05

    def config(self, customers: int | None = None) -> SyntheticConfig:
        """The generator config of this variant (``customers`` overrides the size)."""
        return SyntheticConfig(
            customers=customers or self.customers, days=self.days, seed=self.seed,
            change_fraction=self.change_fraction,
            new_customer_fraction=self.new_customer_fraction,
            behaviour=Behaviour(**{**_MATRIX, **self.behaviour}),
        )


VARIANTS: tuple[Variant, ...] = (
    Variant("base", "the default mix: gamma shape 1.5-4, sessions and browsing"),
    Variant("bursty", "gamma shape 0.7 (bursts of orders)", {"gap_shape": 0.7}),
    Variant("poisson", "gamma shape 1 (Poisson buyers)", {"gap_shape": 1.0}),
    Variant("shape-2", "gamma shape 2", {"gap_shape": 2.0}),
    Variant("regular", "gamma shape 4 (like clockwork)", {"gap_shape": 4.0}),
    Variant("visits-independent", "browsing on its own, never before a purchase",
            {"visits": "independent"}),
    Variant("visits-sessions", "visits and logins only in the hours before a purchase",
            {"visits": "sessions"}),
    Variant("visits-absent", "purchases only, no visits", {"visits": "absent"}),
    Variant("fast", "usual gaps of 3-20 days", {"gap_days": (3.0, 20.0)}),
    Variant("slow", "usual gaps of 20-60 days, two years", {"gap_days": (20.0, 60.0)},
            days=730),
    Variant("joining", "80% join during the period (short histories)",
            new_customer_fraction=0.8),
    Variant("season", "one month at twice the purchase rate", {"season": True}),
    Variant("invoices-shuffled", "invoices paid out of order, unpaid ones between paid ones",
            {"invoices_out_of_order": True}),
    Variant("web-shop", "Poisson buyers, sessions only, joining, a season, shuffled invoices",
            {"gap_shape": 1.0, "visits": "sessions", "season": True,
             "invoices_out_of_order": True}, new_customer_fraction=0.5),
    Variant("bursty-browsers", "shape 0.7, fast, browsing on its own",
            {"gap_shape": 0.7, "gap_days": (3.0, 20.0), "visits": "independent"}),
    Variant("regular-slow-silent", "shape 4, slow, no visits, invoices without ids",
            {"gap_shape": 4.0, "gap_days": (20.0, 60.0), "visits": "absent",
             "invoice_ids": False, "invoices_out_of_order": True}, days=730),
)
REDUCED: tuple[str, ...] = ("bursty", "regular", "visits-sessions", "web-shop",
                            "bursty-browsers")
"""The variants the unit suite replays (smaller populations) to catch regressions."""


@dataclass
class VariantResult:
    """One variant's report and the cost of producing it."""

    variant: Variant
    report: QualityReport
    events: int
    customers: int
    seconds: float

    @property
    def passed(self) -> bool:
        return self.report.passed


def run_variant(variant: Variant, detection: DetectionConfig | None = None,
                customers: int | None = None,
                transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                ) -> VariantResult:
    """Generate, replay and score one variant; ``transform``, when given, rewrites each
    event first (it must keep them in time order)."""
    config = variant.config(customers)
    plan = make_plan(config)
    truth = plan.truth()
    alerts: list[dict[str, Any]] = []

    def keep(alert: Alert) -> None:
        if alert.status == "firing":
            alerts.append({"customer_id": alert.customer_id, "kind": alert.kind.value,
                           "status": "firing", "ts": alert.ts})

    first_seen: dict[str, int] = {}

    def lines() -> Iterable[bytes]:
        for event in generate(config, plan):
            if transform is not None:
                event = transform(event)
            if event["customer_id"] not in first_seen:
                first_seen[event["customer_id"]] = _epoch(event["ts"])
            yield orjson.dumps(event)

    began = time.perf_counter()
    replayer = Replayer(Engine(detection or DetectionConfig()), on_alert=keep)
    summary = replayer.run(lines(), sort=False, until=float(config.end_epoch))
    seconds = time.perf_counter() - began
    customer_days = sum(config.end_epoch - t for t in first_seen.values()) / DAY_S
    report = score(alerts, truth, customer_days,
                   window_days={"drop_off": DROP_OFF_WINDOW_DAYS},
                   window_gaps={"drop_off": DROP_OFF_WINDOW_GAPS}, split_modes=("drop_off",),
                   recall_goals=GOALS, max_false_alarms_per_1000=MAX_FALSE_ALARMS_PER_1000)
    return VariantResult(variant, report, summary.events_in, len(first_seen), seconds)


def _epoch(ts: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(ts).timestamp())


def run_matrix(variants: Sequence[Variant] = VARIANTS, detection: DetectionConfig | None = None,
               customers: int | None = None,
               progress: Callable[[VariantResult], None] | None = None) -> list[VariantResult]:
    """Run every variant (see :func:`run_variant`)."""
    results = []
    for variant in variants:
        result = run_variant(variant, detection, customers)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def min_other_recall(report: QualityReport) -> float | None:
    """The lowest recall among :data:`OTHER_KINDS` (those with changes to catch)."""
    recalls = [s.recall for name, s in report.kinds.items()
               if name in OTHER_KINDS and s.recall is not None]
    return min(recalls) if recalls else None


def _f(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def format_markdown(results: Sequence[VariantResult]) -> str:
    """One table per variant: recall, false alarms, precision, delay; then a summary table."""
    out = ["| variant | false alarms / 1000 customer-days | stops caught | declines caught "
           "| other kinds (min recall) | pass |", "|---|---:|---:|---:|---:|:---:|"]
    for r in results:
        k = r.report.kinds
        stop, decline = k.get("drop_off/stop"), k.get("drop_off/decline")
        out.append(
            f"| {r.variant.name} | {r.report.false_alarms_per_1000:.3f} "
            f"| {_f(stop.recall if stop else None)} | {_f(decline.recall if decline else None)} "
            f"| {_f(min_other_recall(r.report))} | {'yes' if r.passed else 'NO'} |")
    for r in results:
        rep = r.report
        out += ["", f"### {r.variant.name}: {r.variant.description}", "",
                f"{r.customers:,} customers, {r.variant.days} days, {r.events:,} events, "
                f"{rep.customer_days:,.0f} customer-days; all kinds "
                f"{rep.false_alarms_per_1000:.3f} false alarms per 1000 customer-days.", "",
                "| kind | changes | recall | goal | false alarms / 1000 cd | precision "
                "| median delay (days) | median delay (gaps) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, s in rep.kinds.items():
            fa = "" if "/" in name else f"{s.false_alarms_per_1000:.3f}"
            out.append(f"| {name} | {s.changes} | {_f(s.recall)} | {s.goal:.2f} | {fa} "
                       f"| {'' if '/' in name else _f(s.precision)} "
                       f"| {_f(s.median_delay_days, 1)} | {_f(s.median_delay_gaps, 1)} |")
    return "\n".join(out) + "\n"


def to_json(results: Sequence[VariantResult]) -> dict[str, Any]:
    """Every variant's report as JSON-able data."""
    return {r.variant.name: {"description": r.variant.description, "customers": r.customers,
                             "days": r.variant.days, "events": r.events,
                             "seconds": round(r.seconds, 1), **r.report.to_dict()}
            for r in results}


__all__ = ["DEFAULT_WINDOW_DAYS", "REDUCED", "VARIANTS", "Variant", "VariantResult",
           "format_markdown", "run_matrix", "run_variant", "to_json"]
