"""How well a gap shape estimated from basket gaps predicts a long silence.

Drop-off's silence test needs the tail of a customer's gaps, and judges it by
a gamma shape. Orders less than ``MIN_GAP_DAYS`` apart share a basket, so the
gaps it learns from are the gamma gaps *longer* than that: for a bursty buyer
(shape below 1) the short gaps, which carry most of the spread of the log
gaps, are cut away, and a shape read from the log-gap variance comes out too
regular. This bench measures by how much, with unlimited history, for shapes
0.5-4 and mean gaps of 3-30 days: each estimator's shape, and how often a real
gap exceeds the silence that estimator's gamma (with the basket gaps' mean)
puts at probability ``P`` (``real / nominal``; 1 is calibrated, 3 spends three
times the budget).

    python -m bench.basket_shape            # prints the table, writes bench/basket_shape.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import gamma

from anomon.core.detectors.renewal import shape_of_log_var
from anomon.core.features import MIN_GAP_DAYS

SHAPES = (0.5, 0.7, 1.0, 2.0, 4.0)
MEAN_GAPS = (3.0, 6.0, 10.0, 30.0)
P = 2.5e-3
"""A silence threshold's probability per gap: drop-off's purchase share of its budget
(0.45 per 1000 customer-days without informative visits) times a 5.5-day gap."""
GAPS = 1_000_000
OUT = Path(__file__).with_name("basket_shape.json")


def measure(shape: float, mean_gap: float, rng: np.random.Generator,
            gaps_drawn: int = GAPS) -> dict[str, Any]:
    """One row: the basket gaps of a long renewal sequence and both estimators' calibration."""
    gaps = rng.gamma(shape, mean_gap / shape, gaps_drawn)
    baskets = gaps[gaps >= MIN_GAP_DAYS]  # the next gap runs from the newest order
    mean = float(baskets.mean())
    by_log_var = shape_of_log_var(float(np.log(baskets).var()))
    by_moments = mean * mean / float(baskets.var())

    def real_over_nominal(k: float) -> float:
        silence = float(gamma.isf(P, k, scale=mean / k))
        return float((baskets > silence).mean()) / P

    return {"shape": shape, "mean_gap_days": mean_gap,
            "merged_share": round(float((gaps < MIN_GAP_DAYS).mean()), 3),
            "basket_mean_days": round(mean, 2),
            "shape_by_log_variance": round(by_log_var, 2),
            "real_over_nominal_by_log_variance": round(real_over_nominal(by_log_var), 2),
            "shape_by_moments": round(by_moments, 2),
            "real_over_nominal_by_moments": round(real_over_nominal(by_moments), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.basket_shape", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(1)
    rows = [measure(k, m, rng) for k in SHAPES for m in MEAN_GAPS]
    print("| shape | mean gap (days) | orders merged | shape by log variance | real / nominal "
          "| shape by moments | real / nominal |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['shape']} | {r['mean_gap_days']:g} | {r['merged_share']:.2f} "
              f"| {r['shape_by_log_variance']:.2f} | {r['real_over_nominal_by_log_variance']:.2f} "
              f"| {r['shape_by_moments']:.2f} | {r['real_over_nominal_by_moments']:.2f} |")
    if not args.no_write:
        OUT.write_text(json.dumps({"p": P, "gaps": GAPS, "min_gap_days": MIN_GAP_DAYS,
                                   "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
