"""How many declines any detector could catch in time: a known-change oracle.

The robustness matrix asks drop-off to catch at least 0.6 of the customers whose
purchase rate falls to a fifth or a quarter, within ``max(45 days, 8 usual
gaps)`` of the onset, while spending at most its false-alarm budget per
customer-day. This script bounds what is possible from the orders alone. Its
detector is told everything a real one must learn: each customer's mean gap and
gap shape, and the factor of the decline. It runs the test that is optimal for
a known change (a CUSUM of the likelihood ratio, Lorden 1971, Moustakides 1986)
on the gamma renewal process of the orders, including the evidence of the
silence in progress, and its threshold is set by simulation so that an
unchanged customer of that shape and mean gap raises false alarms at exactly
the budget per customer-day (no union bound, no margin for an uncertain rate).
Each customer's mean gap and shape are drawn by the matrix's own generator
(the shape taken as the nearest calibrated one). Everything else is as
generous: the onset is a purchase, as in the matrix, no holidays, no season,
no short histories.

A variant whose visits carry nothing (``visits-sessions``, ``visits-absent``,
``web-shop``, ``regular-slow-silent``) cannot do better than this; elsewhere
browsing adds evidence, and the figure bounds the orders' share of it::

    python -m bench.decline_limit            # about 5 min; writes decline_limit.json
    python -m bench.decline_limit --quick    # fewer paths, for a look

Time is in units of the customer's mean gap: a gap under no change is
``Gamma(k, 1/k)`` (mean 1), after a decline by ``f`` it is ``Gamma(k, f/k)``.
A completed gap ``g`` adds ``-k ln f + k g (1 - 1/f)`` to the CUSUM, and a
silence ``s`` in progress adds ``ln S_f(s) - ln S_1(s)`` (the survivals), which
grows with ``s``; so a gap's evidence peaks at its end and the test is
simulated gap by gap.

>>> rate = false_alarm_rates(1.0, 5.0, [2.0, 6.0], gaps=400, paths=400, seed=1)
>>> bool(1e-4 < rate[1] < rate[0] < 0.5)
True
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import gammaincc

from anomon.lab.matrix import VARIANTS, Variant
from anomon.lab.synthetic.population import make_profile

HERE = Path(__file__).resolve().parent
H_GRID = np.arange(1.0, 9.01, 0.5)
FACTORS = (5.0, 4.0)  # the matrix's declines: to a fifth and to a quarter
WINDOW_DAYS, WINDOW_GAPS = 45.0, 8.0
BUDGETS = (0.12, 0.6, 1.0)
"""False alarms per 1000 customer-days: drop-off's decline share (0.2 of 0.6), drop-off's
whole budget, and the matrix's limit for all kinds together."""


def silence_evidence(shape: float, factor: float, s: np.ndarray) -> np.ndarray:
    """``ln S_f(s) - ln S_1(s)``: the log ratio of a silence's survival after and before."""
    after = gammaincc(shape, shape * s / factor)
    before = gammaincc(shape, shape * s)
    return np.log(np.maximum(after, 1e-300)) - np.log(np.maximum(before, 1e-300))


def gap_evidence(shape: float, factor: float, g: np.ndarray) -> np.ndarray:
    """The log-likelihood ratio of one completed gap ``g``."""
    return -shape * math.log(factor) + shape * g * (1.0 - 1.0 / factor)


def false_alarm_rates(shape: float, factor: float, thresholds: Any, gaps: int = 4000,
                      paths: int = 2000, seed: int = 0) -> np.ndarray:
    """False alarms per mean gap of an unchanged customer, for each CUSUM threshold.

    After an alarm the test is quiet until the next purchase (an open alert),
    then starts again from zero.
    """
    rng = np.random.default_rng(seed)
    h = np.repeat(np.asarray(thresholds, dtype=float), paths)
    c = np.zeros_like(h)
    alarms = np.zeros_like(h)
    for _ in range(gaps):
        c, fired = unchanged_gap(shape, factor, c, h, rng)
        alarms += fired
    return alarms.reshape(-1, paths).sum(axis=1) / (gaps * paths)


def unchanged_gap(shape: float, factor: float, c: np.ndarray, h: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One gap of unchanged customers: the CUSUMs after it, and which of them alarmed in it
    (those start again from zero)."""
    g = rng.gamma(shape, 1.0 / shape, size=c.size)
    fired = c + silence_evidence(shape, factor, g) >= h
    return np.where(fired, 0.0, np.maximum(0.0, c + gap_evidence(shape, factor, g))), fired


def threshold_for(rates: np.ndarray, per_gap: np.ndarray, counted: float) -> np.ndarray:
    """The threshold whose false-alarm rate per gap is ``per_gap``.

    Interpolated log-linearly between thresholds with at least 30 alarms counted
    (``counted`` gaps were simulated per threshold); below them, the log rate
    falls linearly in the threshold (a CUSUM's run length grows as ``e^h``), with
    the slope fitted to the last five of them.
    """
    ok = rates * counted >= 30
    log_rate, h = np.log(rates[ok])[::-1], H_GRID[ok][::-1]  # increasing log rate
    slope, _ = np.polyfit(h[:5], log_rate[:5], 1)
    target = np.log(per_gap)
    inside = np.interp(target, log_rate, h)
    below = h[0] + (target - log_rate[0]) / slope
    return np.where(target < log_rate[0], below, inside)


def caught(shape: float, factor: float, h: np.ndarray, window: np.ndarray,
           rng: np.random.Generator, warmup_gaps: int = 60) -> np.ndarray:
    """Whether each customer's decline (onset at a purchase) is caught within ``window`` gaps."""
    n = h.size
    c = np.zeros(n)
    for _ in range(warmup_gaps):  # the CUSUM's state at the onset, with its false alarms reset
        c, _ = unchanged_gap(shape, factor, c, h, rng)
    elapsed = np.zeros(n)
    hit = np.zeros(n, dtype=bool)
    while True:
        live = ~hit & (elapsed < window)
        if not live.any():
            return hit
        g = rng.gamma(shape, factor / shape, size=n)
        seen = np.minimum(g, window - elapsed)  # the window may end within the gap
        hit |= live & (c + silence_evidence(shape, factor, seen) >= h)
        c = np.maximum(0.0, c + gap_evidence(shape, factor, g))
        elapsed += g


ROWS = ("visits-sessions", "web-shop", "regular-slow-silent", "base", "bursty", "poisson",
        "shape-2", "regular", "fast", "slow")
"""Matrix variants with distinct purchase rhythms (``visits-absent`` has those of
``visits-sessions``; the others differ from ``base`` in what the oracle ignores)."""
SHAPES = np.array([0.7, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0])
"""The shapes calibrated; a customer's is taken as the nearest of them."""


def rhythms(variant: Variant, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The gap shapes (on :data:`SHAPES`) and mean gaps (days) of the variant's first ``n``
    customers, drawn by the matrix's own generator."""
    config = variant.config(n)
    profiles = [make_profile(i, config.seed, config.days, behaviour=config.behaviour)
                for i in range(n)]
    shape = np.array([p.gap_shape for p in profiles])
    nearest = SHAPES[np.abs(shape[:, None] - SHAPES[None, :]).argmin(axis=1)]
    return nearest, np.array([p.mean_gap_days for p in profiles])


def visits_tell_nothing(variant: Variant) -> bool:
    """Whether the variant's visits add nothing to its orders (so the oracle bounds it)."""
    return variant.config(1).behaviour.visits in ("sessions", "absent")


def run(budgets: tuple[float, ...], customers: int, calib_gaps: int, calib_paths: int,
        seed: int) -> dict[str, Any]:
    variants = {v.name: v for v in VARIANTS}
    drawn = {name: rhythms(variants[name], customers) for name in ROWS}
    shapes = sorted({float(k) for k_all, _ in drawn.values() for k in np.unique(k_all)})
    rates = {(k, f): false_alarm_rates(k, f, H_GRID, calib_gaps, calib_paths, seed)
             for k in shapes for f in FACTORS}
    rng = np.random.default_rng(seed + 1)
    rows = []
    for name in ROWS:
        row: dict[str, Any] = {"variant": name,
                               "visits_tell_nothing": visits_tell_nothing(variants[name])}
        k_all, gap_all = drawn[name]
        f_all = rng.choice(np.asarray(FACTORS), size=customers)
        window = np.maximum(WINDOW_DAYS / gap_all, WINDOW_GAPS)
        for budget in budgets:
            hit = np.zeros(customers, dtype=bool)
            for k in np.unique(k_all):
                for f in FACTORS:
                    mine = (k_all == k) & (f_all == f)
                    h = threshold_for(rates[(float(k), f)], budget / 1000.0 * gap_all[mine],
                                      calib_gaps * calib_paths)
                    hit[mine] = caught(float(k), f, h, window[mine], rng)
            row[f"recall_at_{budget:g}"] = round(float(hit.mean()), 3)
        rows.append(row)
    return {"budgets_per_1000_days": list(budgets), "customers_per_variant": customers,
            "calibration": {"gaps": calib_gaps, "paths_per_threshold": calib_paths},
            "factors": list(FACTORS), "window": "max(45 days, 8 mean gaps)", "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decline_limit",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer paths (about 20 s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "decline_limit.json")
    args = parser.parse_args(argv)
    size = (4000, 600, 300) if args.quick else (20000, 2000, 1000)
    result = run(BUDGETS, customers=size[0], calib_gaps=size[1], calib_paths=size[2],
                 seed=args.seed)
    for row in result["rows"]:
        print(f"{row['variant']:34s}" + "".join(
            f"   at {b:g}: {row[f'recall_at_{b:g}']:.2f}" for b in BUDGETS))
    if not args.quick:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
