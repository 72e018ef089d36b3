"""How well a gap shape estimated from basket gaps predicts a long silence.

Drop-off's silence test needs the tail of a customer's gaps, and judges it by
a gamma shape. Orders less than ``MIN_GAP_DAYS`` apart share a basket, so the
gaps it learns from are the gamma gaps *longer* than that: for a bursty buyer
(shape below 1) the short gaps, which carry most of the spread of the log
gaps, are cut away, and a shape read from the log-gap variance comes out too
regular. This bench measures by how much, with unlimited history, for shapes
0.5-4 and mean gaps of 3-30 days: each estimator's shape, and how often a real
gap exceeds the silence that estimator's gamma puts at probability ``P``
(``real / nominal``; 1 is calibrated, 3 spends three times the budget).

Three estimators: the shape whose log has the basket gaps' log variance (what
the detector's rhythm starts from), the gaps' mean squared over their variance
(both with the basket gaps' mean), and a maximum-likelihood gamma in which each
merged order counts as a gap known only to be shorter than ``MIN_GAP_DAYS``
(censored); its silence is that gamma's, given a gap longer than
``MIN_GAP_DAYS``. Beside each, the quartiles of its shape from one purchase
window's worth of history (``WINDOW_GAPS`` basket gaps, ``DRAWS`` draws).

    python -m bench.basket_shape            # prints the table, writes bench/basket_shape.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammainc, gammaln
from scipy.stats import gamma

from anomon.core.detectors.renewal import shape_of_log_var
from anomon.core.features import MIN_GAP_DAYS

SHAPES = (0.5, 0.7, 1.0, 2.0, 4.0)
MEAN_GAPS = (3.0, 6.0, 10.0, 30.0)
P = 2.5e-3
"""A silence threshold's probability per gap: drop-off's purchase share of its budget
(0.45 per 1000 customer-days without informative visits) times a 5.5-day gap."""
GAPS = 1_000_000
WINDOW_GAPS = 30
DRAWS = 200
OUT = Path(__file__).with_name("basket_shape.json")


def censored_fit(baskets: np.ndarray, merged: int) -> tuple[float, float]:
    """``(shape, scale)`` of the gamma most likely to give these basket gaps and ``merged``
    gaps shorter than ``MIN_GAP_DAYS``."""
    n, total, total_log = len(baskets), float(baskets.sum()), float(np.log(baskets).sum())

    def minus_log_likelihood(p: np.ndarray) -> float:
        k, theta = math.exp(p[0]), math.exp(p[1])
        ll = (k - 1.0) * total_log - total / theta - n * (gammaln(k) + k * math.log(theta))
        if merged:
            ll += merged * math.log(max(float(gammainc(k, MIN_GAP_DAYS / theta)), 1e-300))
        return -ll

    start = np.array([0.0, math.log(total / n)])
    fitted = minimize(minus_log_likelihood, start, method="Nelder-Mead").x
    return math.exp(fitted[0]), math.exp(fitted[1])


def estimates(gaps: np.ndarray) -> tuple[np.ndarray, dict[str, float], tuple[float, float]]:
    """The basket gaps, the three shapes and the censored fit of a run of ``gaps``."""
    baskets = gaps[gaps >= MIN_GAP_DAYS]  # the next gap runs from the newest order
    fit = censored_fit(baskets, int((gaps < MIN_GAP_DAYS).sum()))
    mean = float(baskets.mean())
    return baskets, {"log_variance": shape_of_log_var(float(np.log(baskets).var())),
                     "moments": mean * mean / float(baskets.var()), "censored": fit[0]}, fit


def measure(shape: float, mean_gap: float, rng: np.random.Generator,
            gaps_drawn: int = GAPS, draws: int = DRAWS) -> dict[str, Any]:
    """One row: the three estimators' shapes and calibration, and their spread per window."""
    gaps = rng.gamma(shape, mean_gap / shape, gaps_drawn)
    baskets, shapes, (k_fit, theta_fit) = estimates(gaps)
    mean = float(baskets.mean())

    def real_over(silence: float) -> float:
        return round(float((baskets > silence).mean()) / P, 2)

    # the first two: a gamma of that shape with the basket gaps' mean; the censored fit:
    # its own gamma, given a gap of at least MIN_GAP_DAYS
    silences = {name: gamma.isf(P, shapes[name], scale=mean / shapes[name])
                for name in ("log_variance", "moments")}
    silences["censored"] = gamma.isf(P * gamma.sf(MIN_GAP_DAYS, k_fit, scale=theta_fit),
                                     k_fit, scale=theta_fit)
    per_window: dict[str, list[float]] = {name: [] for name in shapes}
    for _ in range(draws):
        run = rng.gamma(shape, mean_gap / shape, 4 * WINDOW_GAPS)
        ends = np.flatnonzero(run >= MIN_GAP_DAYS)
        if len(ends) < WINDOW_GAPS:
            continue
        for name, k in estimates(run[: ends[WINDOW_GAPS - 1] + 1])[1].items():
            per_window[name].append(k)
    row: dict[str, Any] = {"shape": shape, "mean_gap_days": mean_gap,
                           "merged_share": round(float((gaps < MIN_GAP_DAYS).mean()), 3),
                           "basket_mean_days": round(mean, 2)}
    for name, k in shapes.items():
        row[f"shape_by_{name}"] = round(k, 2)
        row[f"real_over_nominal_by_{name}"] = real_over(float(silences[name]))
        row[f"window_quartiles_by_{name}"] = [round(float(q), 2) for q in
                                              np.percentile(per_window[name], [25, 50, 75])]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.basket_shape", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(1)
    rows = [measure(k, m, rng) for k in SHAPES for m in MEAN_GAPS]
    names = ("log_variance", "moments", "censored")
    print("| shape | mean gap (days) | orders merged | "
          + " | ".join(f"by {n.replace('_', ' ')}: shape, real / nominal, per window"
                       for n in names) + " |")
    print("|---:|---:|---:|" + "---:|" * len(names))
    for r in rows:
        cells = [f"{r[f'shape_by_{n}']:.2f}, {r[f'real_over_nominal_by_{n}']:.2f}, "
                 + "-".join(f"{q:.2f}" for q in r[f"window_quartiles_by_{n}"]) for n in names]
        print(f"| {r['shape']} | {r['mean_gap_days']:g} | {r['merged_share']:.2f} | "
              + " | ".join(cells) + " |")
    if not args.no_write:
        OUT.write_text(json.dumps({"p": P, "gaps": GAPS, "min_gap_days": MIN_GAP_DAYS,
                                   "window_gaps": WINDOW_GAPS, "draws": DRAWS,
                                   "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
