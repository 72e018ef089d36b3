"""How many declines and stops a detector that must learn each rate could catch.

:mod:`bench.decline_limit` tells its detector each customer's mean gap. A real
one learns it from the orders it has seen, a handful for a customer who joined
during the year. This script bounds what is possible then, on the rhythms and
histories of several matrix variants, and is as generous as that one
elsewhere. Its detector

* knows the population's distribution of mean gaps exactly (drawn by the
  matrix's own generator), each customer's gap shape, each decline's factor,
  and that an onset is a purchase;
* sees no season (the whole population's, which a detector could learn from
  it), but half of the customers take one holiday break of one to two usual
  gaps, as in the matrix (no detector can tell one from a change at its start);
* runs the likelihood-ratio test of "the rate fell to ``1/f`` at order ``j``"
  against "no change", the rate integrated out under the population's
  distribution (a mixture over a grid of rates; per rate the gamma renewal
  likelihoods are closed forms, the silence in progress weighed by its
  survival) and the ratio maximised over ``j`` (Lorden's CUSUM with the rate
  learned), where it peaks: at the end of each silence. A stop is a fall to
  :data:`STOP_RATIO` (the statistic is then the Bayes test of the silence);
* has its threshold set so that the unchanged customers of the same population
  raise exactly the budget of false alarms per customer-day *pooled*: a short
  history may spend more than a long one. An alarm counts once however long the
  statistic stays above the threshold (an open alert).

The same paths are scored by the same test told each customer's rate (the
CUSUM of :mod:`bench.decline_limit`, here with a pooled threshold), so the two
rows of a variant differ only in what the detector must learn. Onsets are
chosen as the matrix's generator chooses them: at an order after the sixth, with
the whole window ``max(45 days, 8 usual gaps)`` inside the data::

    python -m bench.decline_learned            # about 15 min; writes decline_learned.json
    python -m bench.decline_learned --quick    # fewer customers, for a look

>>> t = np.array([0.0, 10.0, 20.0, 30.0])
>>> prior = population_prior(np.array([10.0, 10.0, 20.0]))
>>> s = statistics(t, np.array([35.0, 80.0]), 0.2, prior)
>>> bool(s[1] > s[0] > -1.0)
True
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import gammaincc, gammaln, logsumexp

from anomon.core.detection_config import DropOffConfig
from anomon.lab.matrix import (
    DROP_OFF_WINDOW_DAYS,
    DROP_OFF_WINDOW_GAPS,
    MAX_FALSE_ALARMS_PER_1000,
    VARIANTS,
)
from anomon.lab.synthetic.changes import MIN_HISTORY
from anomon.lab.synthetic.population import make_profile, natural_purchases

HERE = Path(__file__).resolve().parent
_DROP_OFF = DropOffConfig()
BUDGETS = (_DROP_OFF.budget_per_1000_days * _DROP_OFF.purchase_decline_share,
           _DROP_OFF.budget_per_1000_days, MAX_FALSE_ALARMS_PER_1000)
"""False alarms per 1000 customer-days: drop-off's decline share, its whole budget, and the
matrix's limit for all kinds together (those of :mod:`bench.decline_limit`)."""
ROWS = ("web-shop", "poisson", "bursty", "bursty-browsers", "shape-2", "regular", "base",
        "joining", "fast", "slow")
"""Variants whose rhythms or histories differ (``web-shop`` has twice the newcomers of
``poisson``; every variant but ``joining``'s a quarter)."""
GRID = np.exp(np.linspace(math.log(1.0), math.log(200.0), 240))
"""Mean gaps (days) the prior is held on."""
H_GRID = np.arange(0.0, 16.0, 0.02)


@dataclass(frozen=True)
class Prior:
    """The population's rates on a grid: ``log_rate`` and log weights."""

    rate: np.ndarray
    log_rate: np.ndarray
    log_weight: np.ndarray


def population_prior(mean_gaps: np.ndarray) -> Prior:
    """The distribution of ``mean_gaps`` (days) as a prior of rates on :data:`GRID`."""
    edges = np.sqrt(GRID[1:] * GRID[:-1])
    counts = np.bincount(np.searchsorted(edges, mean_gaps), minlength=GRID.size)
    weight = counts / counts.sum()
    keep = weight > 0
    rate = 1.0 / GRID[keep]
    return Prior(rate, np.log(rate), np.log(weight[keep]))


def log_survival(shape: float, x: np.ndarray) -> np.ndarray:
    """``ln Q(shape, x)``, the log of a gamma's upper regularised incomplete function
    (its asymptote where ``Q`` underflows)."""
    q = gammaincc(shape, x)
    tail = (shape - 1.0) * np.log(np.maximum(x, 1e-300)) - x - gammaln(shape)
    return np.where(q > 1e-280, np.log(np.maximum(q, 1e-300)), tail)


def statistics(times: np.ndarray, checks: np.ndarray, ratio: float, prior: Prior,
               shape: float = 1.0) -> np.ndarray:
    """The test's statistic (nats) at each of ``checks`` (days, each after the first
    order): the largest log likelihood ratio of a fall to ``ratio`` x the rate at an order
    so far, gaps gamma of ``shape``, the rate integrated out under ``prior`` (a prior of
    one rate: the rate known). ``times`` are the orders, from the first the detector saw.

    Per rate ``l``, ``n`` completed gaps summing to ``G`` weigh ``l^(k n) e^(-k l G)``
    (what does not depend on ``l`` cancels), the silence ``s`` in progress its survival
    ``Q(k, k l s)``; after the onset the rate is ``ratio x l``.
    """
    k, log_r = shape, math.log(ratio)
    lam = prior.rate
    out = np.empty(checks.size)
    for i, c in enumerate(checks):
        seen = times[times < c]
        gaps = seen.size - 1
        silence = c - seen[-1]
        n2 = gaps - np.arange(seen.size)  # completed gaps after an onset at each order
        g1 = seen - seen[0]
        g2 = seen[-1] - seen
        base = k * gaps * prior.log_rate + prior.log_weight
        num = (base + log_survival(k, k * ratio * lam * silence))[None, :] + (
            k * n2 * log_r)[:, None] - k * lam[None, :] * (g1 + ratio * g2)[:, None]
        den = base + log_survival(k, k * lam * silence) - k * lam * (seen[-1] - seen[0])
        out[i] = float(np.max(logsumexp(num, axis=1)) - logsumexp(den))
    return out


def known_rate(mean_gap: float) -> Prior:
    """A prior of one rate: the detector told the customer's mean gap."""
    return Prior(np.array([1.0 / mean_gap]), np.array([-math.log(mean_gap)]), np.zeros(1))


def upcrossings(series: list[np.ndarray], thresholds: np.ndarray) -> np.ndarray:
    """Alarms per threshold: checks at or above it whose previous check (of the same
    customer) was below it."""
    total = np.zeros(thresholds.size)
    for s in series:
        prev = np.concatenate(([-np.inf], s[:-1]))
        above = s[None, :] >= thresholds[:, None]
        was = prev[None, :] >= thresholds[:, None]
        total += (above & ~was).sum(axis=1)
    return total


def threshold_for(alarms: np.ndarray, customer_days: float, budget: float) -> float:
    """The least threshold from which on the pooled false alarms per 1000 customer-days
    stay within ``budget`` (an alarm is an up-crossing, so their count need not fall with
    the threshold: a threshold the statistic never leaves counts one per customer)."""
    rate = 1000.0 * alarms / customer_days
    worst_above = np.maximum.accumulate(rate[::-1])[::-1]
    ok = np.nonzero(worst_above <= budget)[0]
    return float(H_GRID[ok[0]]) if ok.size else math.inf


STOP_RATIO = 1e-3
"""A stop, to the test: a fall to a thousandth of the rate (its statistic is then the
Bayes test of the silence: one over the silence's predictive survival)."""


@dataclass(frozen=True)
class Changed:
    """A changed customer's orders, from the first the detector saw, and its change."""

    orders: np.ndarray
    onset: float
    window: float
    ratio: float
    mean_gap: float
    shape: float


def changed(times: list[float], j: int, ratio: float, mean_gap: float, shape: float,
            days: float, rng: random.Random) -> np.ndarray:
    """The orders of a customer whose rate falls to ``ratio`` x at order ``j`` (none after
    it for :data:`STOP_RATIO`)."""
    out = list(times[: j + 1])
    t = out[-1]
    while ratio > STOP_RATIO:
        t += rng.gammavariate(shape, mean_gap / ratio / shape)
        if t >= days:
            break
        out.append(t)
    return np.array(out)


def recall(unchanged: list[np.ndarray], customer_days: float, cases: list[Changed],
           prior: Prior | None) -> dict[str, float]:
    """Per budget, the share of ``cases`` whose statistic reaches, within the window, the
    threshold at which the ``unchanged`` statistics raise that budget (``prior`` None:
    each customer's rate known)."""
    alarms = upcrossings(unchanged, H_GRID)
    peaks = []
    for c in cases:
        inside = c.orders[(c.orders > c.onset) & (c.orders <= c.onset + c.window)]
        checks = np.append(inside, c.onset + c.window)
        s = statistics(c.orders, checks, c.ratio,
                       known_rate(c.mean_gap) if prior is None else prior, c.shape)
        peaks.append(float(s.max()))
    peak = np.array(peaks)
    out = {}
    for b in BUDGETS:
        h = threshold_for(alarms, customer_days, b)
        out[f"threshold_at_{b:g}"] = round(h, 2)
        out[f"recall_at_{b:g}"] = round(float((peak >= h).mean()), 3)
    return out


def run_variant(name: str, customers: int, seed: int) -> dict[str, Any]:
    """Declines and stops of one variant's rhythms, the rate known and learned."""
    variant = next(v for v in VARIANTS if v.name == name)
    config = variant.config(customers)
    days = float(config.days)
    profiles = [make_profile(i, config.seed, config.days, behaviour=config.behaviour,
                             new_customer_fraction=config.new_customer_fraction)
                for i in range(customers)]
    prior = population_prior(np.array([p.mean_gap_days for p in profiles]))
    rng = random.Random(seed)
    modes: dict[str, Prior | None] = {"known": None, "learned": prior}
    unchanged: dict[tuple[str, str], list[np.ndarray]] = {
        (change, mode): [] for change in ("decline", "stop") for mode in modes}
    cases: dict[str, list[Changed]] = {"decline": [], "stop": []}
    customer_days = 0.0
    for p in profiles:
        times, _ = natural_purchases(p, config.seed, config.days, None, 1.0)
        if len(times) < 2:
            continue
        t = np.array(times)
        customer_days += days - t[0]
        ratios = {"decline": 1.0 / rng.choice(config.behaviour.decline_factors),
                  "stop": STOP_RATIO}
        k, gap = p.gap_shape, p.mean_gap_days
        checks = np.append(t[1:], days)
        for (change, mode), out in unchanged.items():
            out.append(statistics(t, checks, ratios[change],
                                  known_rate(gap) if modes[mode] is None else prior, k))
        window = max(DROP_OFF_WINDOW_DAYS, DROP_OFF_WINDOW_GAPS * gap)
        js = [j for j in range(MIN_HISTORY, len(times)) if 0.25 * days <= times[j] <= days - window]
        if js:  # the onset as the matrix's generator chooses it
            j = rng.choice(js)
            for change, ratio in ratios.items():
                cases[change].append(Changed(changed(times, j, ratio, gap, k, days, rng),
                                             times[j], window, ratio, gap, k))
    row: dict[str, Any] = {"variant": name, "customers": customers,
                           "newcomers": config.new_customer_fraction,
                           "customer_days": round(customer_days),
                           "changed": len(cases["decline"])}
    for (change, mode), stats in unchanged.items():
        for key, value in recall(stats, customer_days, cases[change], modes[mode]).items():
            row[f"{change}_{mode}_{key}"] = value
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decline_learned",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer customers (about 5 min)")
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "decline_learned.json")
    args = parser.parse_args(argv)
    customers = 1500 if args.quick else args.customers
    rows = [run_variant(name, customers, args.seed) for name in ROWS]
    for row in rows:
        for change in ("decline", "stop"):
            for mode in ("known", "learned"):
                print(f"{row['variant']:16s} {change:8s} {mode:8s}" + "".join(
                    f"   at {b:g}: {row[f'{change}_{mode}_recall_at_{b:g}']:.2f}"
                    for b in BUDGETS))
    if not args.quick:
        factors = list(VARIANTS[0].config(1).behaviour.decline_factors)
        result = {"budgets_per_1000_days": list(BUDGETS), "factors": factors,
                  "stop_ratio": STOP_RATIO,
                  "window": "max(45 days, 8 mean gaps)", "rows": rows}
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
