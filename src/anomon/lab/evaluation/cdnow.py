"""Churn scores on the CDNOW purchases, next to BG/NBD and recency.

The CDNOW master file (69,659 purchases by 23,570 customers who first bought
in the first quarter of 1997, to 1998-06-30) ships with the ``lifetimes``
package. Its purchases are replayed through the same :class:`~anomon.core.engine.Engine`
as the live stream, in event time, up to a cutoff; then every customer is
scored as of that moment (silence included) and the scores are compared with
the truth "no purchase from the cutoff to the end of the data".

Beside anomon's churn probability, the same run reports:

* **recency**: days since the last purchase (the plain baseline);
* **BG/NBD** (``lifetimes.BetaGeoFitter`` fitted on the purchases before the
  cutoff): its expected purchases over the holdout (fewer: more likely gone) and
  its P(alive) (lower: more likely gone);
* anomon's **drop-off alerts** open at the cutoff, as a classifier: their precision.

Each row's event id is ``cdnow:<line>``: 255 rows are byte-identical real
repeat purchases, so an id built from the content would merge them.

>>> rows = parse_lines(["00001 19970101  1   11.77", "00001 19970301  2   20.00"])
>>> rows[1].customer_id, rows[1].day, rows[1].amount, rows[1].line
('00001', '1997-03-01', 20.0, 2)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from anomon.core.decoding import EventDecoder
from anomon.core.detection_config import DetectionConfig
from anomon.core.engine import Engine
from anomon.core.timeutil import DAY
from anomon.lab.evaluation.errors import EvaluationUnavailable
from anomon.lab.evaluation.progressive import delayed_progressive_auc
from anomon.lab.evaluation.ranking import log_loss, precision_at, roc_auc
from anomon.replay import Replayer

CUTOFFS = ("1997-09-30", "1997-12-31")
HOLDOUT_END = "1998-06-30"
#: open drop-off alerts ranked by surprise, precision of the top k: the numbers flagged at
#: the two cutoffs when the drop-off precision goal was set (docs/quality.md)
RANKED_ALERTS = (70, 354)
DATA_ENV = "ANOMON_CDNOW_FILE"
"""Path of ``CDNOW_master.txt`` when it does not come from the ``lifetimes`` package."""

ANOMON = "anomon churn probability"
RECENCY = "days since last purchase"
BGNBD = "BG/NBD expected holdout purchases (fewer)"
P_ALIVE = "BG/NBD P(alive) (lower)"


@dataclass(frozen=True, slots=True)
class Purchase:
    """One line of the CDNOW master file."""

    customer_id: str
    day: str  # ISO date
    quantity: int
    amount: float
    line: int


@dataclass
class CutoffResult:
    """Every figure for one cutoff."""

    cutoff: str
    holdout_end: str
    customers: int
    churned: int
    repeat_buyers: int
    auc: dict[str, float]
    auc_repeat_buyers: dict[str, float]
    precision_top10: dict[str, float]
    drop_off_open: int
    drop_off_precision: float | None
    anomon_log_loss: float
    progressive_auc: float | None
    labels_learned: int
    events: int
    seconds: float
    #: share gone among the customers drop-off can judge (two purchases or more)
    drop_off_base_rate: float | None = None
    #: precision of the k open drop-off alerts most surprising at the cutoff, by k
    drop_off_precision_ranked: dict[int, float] = field(default_factory=dict)
    #: by the customer's orders (2, 3, 4-5, 6+): open drop-off alerts, their precision, and
    #: the share gone among all customers with that many orders
    drop_off_by_orders: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    roc: dict[str, list[list[float]]] = field(default_factory=dict, repr=False)


@dataclass
class CdnowReport:
    """What ``anomon evaluate cdnow`` prints and writes."""

    horizon_days: float
    cutoffs: list[CutoffResult]

    def format_table(self) -> str:
        """A plain-text table per cutoff, best score first."""
        out = []
        for c in self.cutoffs:
            out += [
                f"CDNOW at {c.cutoff}: {c.customers:,} customers, {c.churned:,} with no purchase "
                f"to {c.holdout_end}; {c.repeat_buyers:,} repeat buyers; {c.events:,} purchases "
                f"replayed, {c.labels_learned:,} churn labels learned "
                f"(horizon {self.horizon_days:.0f} d), {c.seconds:.0f} s",
                f"  {'score (higher = more likely gone)':<44} {'ROC AUC':>8} {'repeat':>7} "
                f"{'prec@10%':>9}",
            ]
            for name, value in sorted(c.auc.items(), key=lambda kv: -kv[1]):
                out.append(f"  {name:<44} {value:>8.3f} {c.auc_repeat_buyers[name]:>7.3f} "
                           f"{c.precision_top10[name]:>9.3f}")
            drop = ("-" if c.drop_off_precision is None
                    else f"{c.drop_off_precision:.3f} of {c.drop_off_open:,}")
            progressive = "-" if c.progressive_auc is None else f"{c.progressive_auc:.3f}"
            context = "; ".join(drop_off_context(c))
            drop += f" ({context})" if context else ""
            out += [f"  drop-off alerts open at the cutoff, precision: {drop}",
                    f"  anomon log-loss {c.anomon_log_loss:.3f}; delayed progressive "
                    f"validation ROC AUC of its labels: {progressive}", ""]
        return "\n".join(out).rstrip()

    def to_dict(self) -> dict[str, Any]:
        cutoffs = [asdict(c) for c in self.cutoffs]
        for c in cutoffs:  # JSON object keys are strings
            c["drop_off_precision_ranked"] = {
                str(k): p for k, p in c["drop_off_precision_ranked"].items()}
        return {"horizon_days": self.horizon_days, "cutoffs": cutoffs}

    def passed(self) -> bool:
        """The goal: anomon's AUC at least 0.77 and never below BG/NBD's, at every cutoff."""
        return all(c.auc[ANOMON] >= 0.77 and c.auc[ANOMON] >= c.auc.get(BGNBD, 0.0)
                   for c in self.cutoffs)


def data_file() -> Path:
    """``CDNOW_master.txt``: from ``ANOMON_CDNOW_FILE`` or the ``lifetimes`` package."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override)
    try:
        import lifetimes.datasets
    except ImportError as err:
        raise EvaluationUnavailable(
            "the CDNOW data ships with the lifetimes package: pip install 'anomon[cdnow]' "
            f"(or set {DATA_ENV} to a copy of CDNOW_master.txt)") from err
    return Path(lifetimes.datasets.__file__).parent / "CDNOW_master.txt"


def parse_lines(lines: Iterable[str]) -> list[Purchase]:
    """Rows of ``customer_id YYYYMMDD quantity dollar_value`` with their 1-based line numbers."""
    rows = []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 4 or not parts[1].isdigit():
            continue
        cid, ymd, qty, amount = parts
        rows.append(Purchase(cid, f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}", int(qty), float(amount),
                             number))
    return rows


def to_event_lines(rows: Iterable[Purchase]) -> Iterator[bytes]:
    """Each purchase as an input-contract event at noon UTC of its day."""
    for row in rows:
        yield orjson.dumps({
            "event_id": f"cdnow:{row.line}", "customer_id": f"cdnow-{row.customer_id}",
            "type": "purchase", "ts": f"{row.day}T12:00:00+00:00", "amount": row.amount,
            "attributes": {"quantity": row.quantity}, "channel": "mail-order",
        })


def _epoch(day: str) -> float:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).timestamp()


def evaluate(rows: list[Purchase], config: DetectionConfig | None = None,
             cutoffs: Iterable[str] = CUTOFFS, holdout_end: str = HOLDOUT_END,
             with_bgnbd: bool = True) -> CdnowReport:
    """Every cutoff in its own replay (a fresh engine each time)."""
    results = [evaluate_cutoff(rows, config, cutoff, holdout_end, with_bgnbd)
               for cutoff in cutoffs]
    horizon = (config or DetectionConfig()).churn_risk.horizon_days
    return CdnowReport(horizon_days=horizon, cutoffs=results)


def evaluate_cutoff(rows: list[Purchase], config: DetectionConfig | None, cutoff: str,
                    holdout_end: str, with_bgnbd: bool) -> CutoffResult:
    """Replay the purchases up to ``cutoff``, score every customer then, compare."""
    began = time.perf_counter()
    cal_end = _epoch(cutoff) + DAY  # the end of that day
    hold_end = _epoch(holdout_end) + DAY
    # ISO days order as strings: up to and including the cutoff day, then the holdout days
    calibration = [r for r in rows if r.day <= cutoff]
    holdout_buyers = {r.customer_id for r in rows if cutoff < r.day <= holdout_end}

    engine = Engine(config)
    engine.churn.label_log = []
    replayer = Replayer(engine=engine, decoder=EventDecoder(min_event_ts=0.0,
                                                            max_future_s=float("inf")))
    summary = replayer.run(to_event_lines(calibration), until=cal_end)

    customers: list[str] = []
    churned: list[int] = []
    repeat: list[bool] = []
    scores: dict[str, list[float]] = {ANOMON: [], RECENCY: []}
    drop_off_truth: list[int] = []
    drop_off_ranked: list[tuple[float, int]] = []  # (surprise over threshold, gone)
    drop_off_orders: dict[str, list[int]] = {}  # orders bucket -> gone of each open alert
    orders_gone: dict[str, list[int]] = {}  # orders bucket -> gone of every customer
    for state in replayer.states.values():
        cid = state.customer_id.removeprefix("cdnow-")
        customers.append(cid)
        gone = 0 if cid in holdout_buyers else 1
        churned.append(gone)
        repeat.append(state.n_purchases >= 2)
        orders_gone.setdefault(_orders_bucket(state.n_purchases), []).append(gone)
        scores[ANOMON].append(engine.churn.probability_at(state, cal_end, engine.ctx))
        last = state.last_purchase_ts or state.first_ts
        scores[RECENCY].append((cal_end - last) / DAY)
        if state.is_open("drop_off"):
            drop_off_truth.append(gone)
            score = engine.drop_off.score(state, cal_end, engine.ctx)
            margin = -math.inf if score.score is None else score.score - score.threshold
            drop_off_ranked.append((margin, gone))
            drop_off_orders.setdefault(_orders_bucket(state.n_purchases), []).append(gone)
    if with_bgnbd:
        expected, alive = bgnbd_scores(calibration, customers, cutoff,
                                       (hold_end - cal_end) / DAY)
        scores[BGNBD] = [-e for e in expected]
        scores[P_ALIVE] = [-a for a in alive]

    def subset(values: list[Any]) -> list[Any]:
        return [v for v, r in zip(values, repeat, strict=True) if r]

    labels = engine.churn.label_log or []
    churn_cfg = engine.config.churn_risk
    return CutoffResult(
        cutoff=cutoff, holdout_end=holdout_end, customers=len(customers), churned=sum(churned),
        repeat_buyers=sum(repeat),
        auc={k: round(roc_auc(v, churned), 4) for k, v in scores.items()},
        auc_repeat_buyers={k: round(roc_auc(subset(v), subset(churned)), 4)
                           for k, v in scores.items()},
        precision_top10={k: round(precision_at(v, churned, 0.10), 4) for k, v in scores.items()},
        drop_off_open=len(drop_off_truth),
        drop_off_precision=(round(sum(drop_off_truth) / len(drop_off_truth), 4)
                            if drop_off_truth else None),
        anomon_log_loss=round(log_loss(scores[ANOMON], churned), 4),
        progressive_auc=delayed_progressive_auc(labels, churn_cfg.learning_rate,
                                                churn_cfg.reservoir_size,
                                                churn_cfg.rehearse_every),
        labels_learned=len(labels), events=summary.processed,
        seconds=round(time.perf_counter() - began, 1),
        drop_off_base_rate=(round(sum(subset(churned)) / sum(repeat), 4) if any(repeat)
                            else None),
        drop_off_precision_ranked=ranked_precision(drop_off_ranked, RANKED_ALERTS),
        drop_off_by_orders={b: (len(g), round(sum(g) / len(g), 4),
                                round(sum(orders_gone[b]) / len(orders_gone[b]), 4))
                            for b, g in sorted(drop_off_orders.items())},
        roc={k: roc_points(v, churned) for k, v in scores.items()},
    )


def drop_off_context(c: CutoffResult) -> list[str]:
    """What drop-off's precision compares with: the share gone among the customers it
    judges, the most surprising alerts' precision, and both by the customer's orders."""
    parts = []
    if c.drop_off_base_rate is not None:
        parts.append(f"gone among the repeat buyers it judges: {c.drop_off_base_rate:.3f}")
    parts += [f"the {k:,} most surprising at the cutoff: {p:.3f}"
              for k, p in c.drop_off_precision_ranked.items()]
    parts += [f"{b} orders: {p:.3f} of {n:,} (all with {b}: {base:.3f} gone)"
              for b, (n, p, base) in c.drop_off_by_orders.items()]
    return parts


def _orders_bucket(n: int) -> str:
    """``2``, ``3``, ``4-5`` or ``6+`` (fewer than 2: ``<2``, which drop-off does not judge)."""
    return "<2" if n < 2 else str(n) if n <= 3 else "4-5" if n <= 5 else "6+"


def ranked_precision(alerts: list[tuple[float, int]], sizes: Iterable[int]) -> dict[int, float]:
    """Precision of the ``k`` highest-ranked ``(rank, gone)`` alerts, for each ``k`` of ``sizes``
    there are that many alerts for.

    >>> ranked_precision([(3.0, 1), (1.0, 0), (2.0, 1)], (2, 3, 4))
    {2: 1.0, 3: 0.6667}
    """
    ordered = sorted(alerts, key=lambda a: -a[0])
    return {k: round(sum(gone for _, gone in ordered[:k]) / k, 4)
            for k in sizes if 0 < k <= len(ordered)}


def roc_points(scores: list[float], truth: list[int], points: int = 101) -> list[list[float]]:
    """``[fpr, tpr]`` pairs of the ROC curve, at most about ``points`` of them.

    >>> roc_points([0.9, 0.8, 0.2, 0.1], [1, 0, 1, 0], points=5)
    [[0.0, 0.0], [0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [1.0, 1.0]]
    """
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    pos = sum(truth)
    neg = len(truth) - pos
    step = max(1, len(order) // (points - 1))
    tp = fp = 0
    out = [[0.0, 0.0]]
    for n, i in enumerate(order, 1):
        if truth[i]:
            tp += 1
        else:
            fp += 1
        if n % step == 0 or n == len(order):
            out.append([round(fp / neg, 4), round(tp / pos, 4)])
    return out


def bgnbd_scores(calibration: list[Purchase], customers: list[str], cutoff: str,
                 holdout_days: float) -> tuple[list[float], list[float]]:
    """BG/NBD fitted on the calibration purchases: expected holdout purchases and P(alive)."""
    try:
        import pandas as pd
        from lifetimes import BetaGeoFitter
        from lifetimes.utils import summary_data_from_transaction_data
    except ImportError as err:
        raise EvaluationUnavailable(
            "the BG/NBD baseline needs lifetimes and pandas<3: pip install 'anomon[cdnow]'"
        ) from err
    frame = pd.DataFrame({"customer_id": [r.customer_id for r in calibration],
                          "date": pd.to_datetime([r.day for r in calibration])})
    rfm = summary_data_from_transaction_data(
        frame, "customer_id", "date", freq="D", observation_period_end=cutoff)
    fitter = BetaGeoFitter(penalizer_coef=0.0)
    fitter.fit(rfm["frequency"], rfm["recency"], rfm["T"])
    expected = fitter.conditional_expected_number_of_purchases_up_to_time(
        holdout_days, rfm["frequency"], rfm["recency"], rfm["T"])
    alive = fitter.conditional_probability_alive(rfm["frequency"], rfm["recency"], rfm["T"])
    by_id_e = dict(zip(rfm.index, expected, strict=True))
    by_id_a = dict(zip(rfm.index, alive, strict=True))
    return ([float(by_id_e[c]) for c in customers], [float(by_id_a[c]) for c in customers])
