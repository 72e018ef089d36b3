"""Churn scores on the CDNOW purchases, next to BG/NBD and recency.

The CDNOW master file (69,659 purchases by 23,570 customers who first bought
in the first quarter of 1997, to 1998-06-30) ships with the ``lifetimes``
package. Its purchases are replayed through the same :class:`~anomon.engine.Engine`
as the live stream, in event time, up to the end of the calibration period;
then every customer is scored as of that moment (silence included) and the
scores are compared with the truth "no purchase in the holdout period".

Beside anomon's churn probability, the same run reports:

* **recency**: days since the last purchase (the plain baseline);
* **BG/NBD** (``lifetimes.BetaGeoFitter`` fitted on the calibration period):
  its expected holdout purchases (fewer: more likely gone) and its P(alive).

>>> rows = parse_lines(["00001 19970101  1   11.77", "00001 19970301  2   20.00"])
>>> rows[1].customer_id, rows[1].day, rows[1].amount
('00001', '1997-03-01', 20.0)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from anomon.decoding import EventDecoder
from anomon.detection_config import DetectionConfig
from anomon.engine import Engine
from anomon.evaluation.errors import EvaluationUnavailable
from anomon.evaluation.progressive import delayed_progressive_auc
from anomon.evaluation.ranking import log_loss, roc_auc
from anomon.replay import Replayer
from anomon.timeutil import DAY

CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"
DATA_ENV = "ANOMON_CDNOW_FILE"
"""Path of ``CDNOW_master.txt`` when it does not come from the ``lifetimes`` package."""


@dataclass(frozen=True, slots=True)
class Purchase:
    """One line of the CDNOW master file."""

    customer_id: str
    day: str  # ISO date
    quantity: int
    amount: float


@dataclass
class Scores:
    """Per-customer scores and truth, one list entry per customer."""

    customers: list[str] = field(default_factory=list)
    churned: list[int] = field(default_factory=list)
    anomon: list[float] = field(default_factory=list)
    recency_days: list[float] = field(default_factory=list)
    bgnbd_expected: list[float] = field(default_factory=list)
    bgnbd_p_alive: list[float] = field(default_factory=list)


@dataclass
class CdnowReport:
    """What ``anomon evaluate cdnow`` prints and writes."""

    customers: int
    churned: int
    calibration_end: str
    holdout_end: str
    horizon_days: float
    auc: dict[str, float]
    anomon_log_loss: float
    progressive_auc: float | None
    labels_learned: int
    events: int
    seconds: float

    def format_table(self) -> str:
        """A plain-text table, best score first."""
        lines = [
            f"CDNOW: {self.customers:,} customers, {self.churned:,} with no purchase in the "
            f"holdout ({self.calibration_end} .. {self.holdout_end}); {self.events:,} calibration "
            f"purchases replayed, {self.labels_learned:,} churn labels learned "
            f"(horizon {self.horizon_days:.0f} d)",
            f"{'score (higher = more likely gone)':<44} {'ROC AUC':>8}",
        ]
        for name, value in sorted(self.auc.items(), key=lambda kv: -kv[1]):
            lines.append(f"{name:<44} {value:>8.3f}")
        lines.append(f"anomon churn probability, log-loss against the holdout truth: "
                     f"{self.anomon_log_loss:.3f}")
        if self.progressive_auc is not None:
            lines.append(f"anomon model, delayed progressive validation ROC AUC "
                         f"(labels revealed when they resolve): {self.progressive_auc:.3f}")
        lines.append(f"{self.seconds:.1f} s")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


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
    """Rows of ``customer_id YYYYMMDD quantity dollar_value``; header and blank lines skipped."""
    rows = []
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or not parts[1].isdigit():
            continue
        cid, ymd, qty, amount = parts
        rows.append(Purchase(cid, f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}", int(qty), float(amount)))
    return rows


def to_event_lines(rows: Iterable[Purchase]) -> Iterator[bytes]:
    """Each purchase as an input-contract event at noon UTC of its day."""
    for n, row in enumerate(rows):
        yield orjson.dumps({
            "event_id": f"cdnow-{n}", "customer_id": f"cdnow-{row.customer_id}",
            "type": "purchase", "ts": f"{row.day}T12:00:00+00:00", "amount": row.amount,
            "attributes": {"quantity": row.quantity}, "channel": "mail-order",
        })


def _epoch(day: str) -> float:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).timestamp()


def evaluate(rows: list[Purchase], config: DetectionConfig | None = None,
             calibration_end: str = CALIBRATION_END, holdout_end: str = HOLDOUT_END,
             with_bgnbd: bool = True,
             progress: Callable[[int], None] | None = None) -> tuple[CdnowReport, Scores]:
    """Replay the calibration purchases, score every customer at its end, compare."""
    began = time.perf_counter()
    cal_end = _epoch(calibration_end) + DAY  # the end of that day
    hold_end = _epoch(holdout_end) + DAY
    calibration = [r for r in rows if _epoch(r.day) < cal_end]
    holdout_buyers = {r.customer_id for r in rows if cal_end <= _epoch(r.day) < hold_end}

    engine = Engine(config)
    engine.churn.label_log = []
    replayer = Replayer(engine=engine, decoder=EventDecoder(min_event_ts=0.0,
                                                            max_future_s=float("inf")))
    summary = replayer.run(to_event_lines(calibration), until=cal_end, progress=progress)

    scores = Scores()
    for state in replayer.states.values():
        cid = state.customer_id.removeprefix("cdnow-")
        last = state.last_purchase_ts or state.first_ts
        scores.customers.append(cid)
        scores.churned.append(0 if cid in holdout_buyers else 1)
        scores.anomon.append(engine.churn.score(state, cal_end, engine.ctx))
        scores.recency_days.append((cal_end - last) / DAY)
    auc = {
        "anomon churn probability": roc_auc(scores.anomon, scores.churned),
        "days since last purchase": roc_auc(scores.recency_days, scores.churned),
    }
    if with_bgnbd:
        expected, alive = bgnbd_scores(calibration, scores.customers, calibration_end,
                                       (hold_end - cal_end) / DAY)
        scores.bgnbd_expected, scores.bgnbd_p_alive = expected, alive
        auc["BG/NBD expected holdout purchases (fewer)"] = roc_auc(
            [-e for e in expected], scores.churned)
        auc["BG/NBD P(alive) (lower)"] = roc_auc([-a for a in alive], scores.churned)
    labels = engine.churn.label_log or []
    churn_cfg = engine.config.churn_risk
    report = CdnowReport(
        customers=len(scores.customers), churned=sum(scores.churned),
        calibration_end=calibration_end, holdout_end=holdout_end,
        horizon_days=engine.config.churn_risk.horizon_days, auc=auc,
        anomon_log_loss=log_loss(scores.anomon, scores.churned),
        progressive_auc=delayed_progressive_auc(labels, churn_cfg.learning_rate,
                                                churn_cfg.reservoir_size,
                                                churn_cfg.rehearse_every),
        labels_learned=len(labels), events=summary.processed,
        seconds=time.perf_counter() - began,
    )
    return report, scores


def bgnbd_scores(calibration: list[Purchase], customers: list[str], calibration_end: str,
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
        frame, "customer_id", "date", freq="D", observation_period_end=calibration_end)
    fitter = BetaGeoFitter(penalizer_coef=0.0)
    fitter.fit(rfm["frequency"], rfm["recency"], rfm["T"])
    expected = fitter.conditional_expected_number_of_purchases_up_to_time(
        holdout_days, rfm["frequency"], rfm["recency"], rfm["T"])
    alive = fitter.conditional_probability_alive(rfm["frequency"], rfm["recency"], rfm["T"])
    by_id_e = dict(zip(rfm.index, expected, strict=True))
    by_id_a = dict(zip(rfm.index, alive, strict=True))
    return ([float(by_id_e[c]) for c in customers], [float(by_id_a[c]) for c in customers])
