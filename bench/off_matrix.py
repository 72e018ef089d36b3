"""Populations off the robustness matrix: behaviours it names, parameters it does not use.

The matrix turns one behaviour at a time (and a few together) at fixed
parameters and seeds. Detection is also judged on data sets built elsewhere, so
this script replays seventeen populations with other seeds and other settings of the
same knobs: burstier buyers (gamma shape 0.5) than any variant, bursty buyers
who buy every few days and visit only in sessions, Poisson buyers with a
three-fold season and most of them joining, shape 0.8 with browsing of its own,
fast regular buyers without visits, Poisson buyers seen for 240 days through
sessions only, one population in which every customer draws their own
rhythm (bursty to regular) and visit style, buyers burstier still (shape 0.3
and 0.25), monthly subscribers, buyers of a few orders a year (no drop-off
leaves its window inside a year: false alarms only), a half year in which
nearly everyone joins, and customers whose habits the matrix keeps rare:
habitual returners, frequent complainers, late payers, erratic spenders, and
the first three at once.
It scores them as the matrix does and prints one row per population::

    python -m bench.off_matrix            # about 8 minutes; writes off_matrix.json
    python -m bench.off_matrix --customers 500 --no-write

>>> [v.name for v in POPULATIONS][:2]
['shape-0.5', 'shape-0.5-fast-sessions']
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from anomon.core.detection_config import DetectionConfig
from anomon.lab.matrix import Variant, min_other_recall, run_variant
from anomon.lab.quality import QualityReport

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "models" / "detectors.toml"

POPULATIONS: tuple[Variant, ...] = (
    Variant("shape-0.5", "gamma shape 0.5: burstier than any variant", {"gap_shape": 0.5},
            seed=101),
    Variant("shape-0.5-fast-sessions", "shape 0.5, gaps of 2-12 days, visits only in sessions",
            {"gap_shape": 0.5, "gap_days": (2.0, 12.0), "visits": "sessions"}, seed=102),
    Variant("poisson-season3-joining", "Poisson, sessions only, a season at 3x, 60% joining",
            {"gap_shape": 1.0, "visits": "sessions", "season": True, "season_factor": 3.0},
            seed=103, new_customer_fraction=0.6),
    Variant("shape-0.8-independent", "shape 0.8, browsing on its own",
            {"gap_shape": 0.8, "visits": "independent"}, seed=104),
    Variant("shape-3-fast-absent", "shape 3, gaps of 3-10 days, no visits",
            {"gap_shape": 3.0, "gap_days": (3.0, 10.0), "visits": "absent"}, seed=105),
    Variant("poisson-sessions-240d", "Poisson, sessions only, 240 days (short histories)",
            {"gap_shape": 1.0, "visits": "sessions"}, days=240, seed=106),
    Variant("varied", "shapes 0.6-4 and every visit style in one population, a season, "
            "half joining", {"gap_shapes": (0.6, 4.0), "visits": "varied", "season": True},
            seed=107, new_customer_fraction=0.5),
    Variant("shape-0.3-fast", "gamma shape 0.3, gaps of 3-20 days",
            {"gap_shape": 0.3, "gap_days": (3.0, 20.0)}, seed=211),
    Variant("shape-0.25", "gamma shape 0.25: the burstiest", {"gap_shape": 0.25}, seed=212),
    Variant("subscribers", "shape 12, an order every 25-35 days, no visits",
            {"gap_shape": 12.0, "gap_days": (25.0, 35.0), "visits": "absent"}, seed=202),
    Variant("slow-60-150", "shape 1.5, an order every 60-150 days (a few orders a year)",
            {"gap_shape": 1.5, "gap_days": (60.0, 150.0)}, seed=201),
    Variant("joining-90-180d", "Poisson, sessions only, 180 days, 90% joining",
            {"gap_shape": 1.0, "visits": "sessions"}, days=180, seed=208,
            new_customer_fraction=0.9),
    Variant("returners", "15-50% of orders refunded as a habit (1-5% in the matrix)",
            {"refund_rates": (0.15, 0.5)}, seed=213),
    Variant("complainers", "1.5-8 complaints a year as a habit (0-0.8 in the matrix)",
            {"complaints_per_year": (1.5, 8.0)}, seed=214),
    Variant("late-payers", "15-50% of invoices paid late as a habit (2-8% in the matrix)",
            {"late_rates": (0.15, 0.5)}, seed=215),
    Variant("erratic-spenders", "order sizes spread 0.6-1.2 (log-normal; 0.3-0.5 in the matrix)",
            {"spend_spreads": (0.6, 1.2)}, seed=217),
    Variant("difficult", "returners, complainers and late payers at once, invoices shuffled",
            {"refund_rates": (0.1, 0.4), "complaints_per_year": (1.0, 6.0),
             "late_rates": (0.1, 0.4), "invoices_out_of_order": True}, seed=216),
)


def _recall(report: QualityReport, kind: str) -> float | None:
    """A kind's recall to 2 places; ``None`` where the population has no such change."""
    score = report.kinds.get(kind)
    return None if score is None or score.recall is None else round(score.recall, 2)


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}s}" if value is None else f"{value:{width}.2f}"


def row(variant: Variant, config: DetectionConfig, customers: int) -> dict[str, Any]:
    """One population's figures: false alarms per 1000 customer-days and recalls."""
    report = run_variant(variant, config, customers).report
    kinds = report.kinds
    spend, refund = kinds["spend_anomaly"], kinds.get("refund_abuse")

    def false_alarms(kind: str) -> float:
        return round(kinds[kind].false_alarms_per_1000 if kind in kinds else 0.0, 3)

    return {
        "population": variant.name, "description": variant.description,
        "false_alarms_per_1000": round(report.false_alarms_per_1000, 3),
        "drop_off_false_alarms_per_1000": round(kinds["drop_off"].false_alarms_per_1000, 3),
        "churn_risk_false_alarms_per_1000": round(
            kinds["churn_risk"].false_alarms_per_1000 if "churn_risk" in kinds else 0.0, 3),
        "stops_caught": _recall(report, "drop_off/stop"),
        "declines_caught": _recall(report, "drop_off/decline"),
        "other_kinds_min_recall": round(min_other_recall(report) or 0.0, 2),
        "spend_anomaly_caught": f"{spend.caught} of {spend.changes}",
        "spend_anomaly_false_alarms": spend.false_alarms,
        "refund_abuse_caught": "-" if refund is None else f"{refund.caught} of {refund.changes}",
        "refund_abuse_false_alarms_per_1000": false_alarms("refund_abuse"),
        "complaint_spike_false_alarms_per_1000": false_alarms("complaint_spike"),
        "payment_arrears_false_alarms_per_1000": false_alarms("payment_arrears"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.off_matrix",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    config = DetectionConfig.load(MODELS)
    budget = config.drop_off.budget_per_1000_days
    print(f"{'population':26s} {'all kinds':>9s} {'drop-off':>9s} {'churn':>6s} "
          f"{'stops':>6s} {'declines':>8s} {'others':>6s} {'spend':>10s} {'false':>5s} "
          f"{'refunds':>10s} {'false':>6s}   (drop-off budget {budget:g})")
    rows = []
    for variant in POPULATIONS:
        r = row(variant, config, args.customers)
        rows.append(r)
        print(f"{r['population']:26s} {r['false_alarms_per_1000']:9.3f} "
              f"{r['drop_off_false_alarms_per_1000']:9.3f} "
              f"{r['churn_risk_false_alarms_per_1000']:6.3f} {_cell(r['stops_caught'], 6)} "
              f"{_cell(r['declines_caught'], 8)} {r['other_kinds_min_recall']:6.2f} "
              f"{r['spend_anomaly_caught']:>10s} {r['spend_anomaly_false_alarms']:5d} "
              f"{r['refund_abuse_caught']:>10s} {r['refund_abuse_false_alarms_per_1000']:6.3f}",
              flush=True)
    if not args.no_write:
        out = {"customers": args.customers, "drop_off_budget_per_1000_days": budget,
               "rows": rows}
        (HERE / "off_matrix.json").write_text(json.dumps(out, indent=2) + "\n")
        print("wrote off_matrix.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
