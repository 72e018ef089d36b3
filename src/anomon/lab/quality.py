"""Detection quality against ground truth: recall, delay and false alarms.

A truth change is *caught* when a ``firing`` alert of the same kind and
customer has its time in ``[onset - 1 day, onset + window]``. A firing alert
(counted once per customer, kind and time) that explains no truth change is a
*false alarm*: no change of that kind for that customer, or it came more than
a day before the onset. A firing alert after the window of a real change is
*late*: not a catch, not a false alarm. Related kinds can explain each other
(by default a ``churn_risk`` alert on a customer whose ``drop_off`` is in the
truth is not a false alarm, since a declining customer is a churn risk too).

>>> truth = [{"customer_id": "c1", "kind": "drop_off", "onset": "2025-06-01T00:00:00+00:00"}]
>>> alerts = [
...     {"customer_id": "c1", "kind": "drop_off", "status": "firing",
...      "ts": "2025-06-11T00:00:00+00:00"},
...     {"customer_id": "c2", "kind": "spend_anomaly", "status": "firing",
...      "ts": "2025-06-02T00:00:00+00:00"},
... ]
>>> report = score(alerts, truth, customer_days=2000.0)
>>> k = report.kinds["drop_off"]
>>> k.recall, k.median_delay_days, report.false_alarms, report.false_alarms_per_1000
(1.0, 10.0, 1, 0.5)
>>> report.passed
True
"""

from __future__ import annotations

import gzip
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

DAY = 86400.0
KIND_ORDER: tuple[str, ...] = (
    "drop_off", "churn_risk", "complaint_spike", "refund_abuse", "payment_arrears",
    "spend_anomaly",
)
DEFAULT_WINDOW_DAYS = 60.0
EARLY_TOLERANCE_DAYS = 1.0
"""An alert up to this long before the onset still counts."""
DEFAULT_RECALL_GOAL = 0.95
RECALL_GOALS: Mapping[str, float] = {"drop_off": 0.8, "churn_risk": 0.8}
MAX_FALSE_ALARMS_PER_1000 = 1.0
RELATED_KINDS: Mapping[str, tuple[str, ...]] = {"churn_risk": ("drop_off",)}
"""Alert kind -> truth kinds that also explain it (so it is no false alarm)."""


@dataclass(frozen=True)
class KindScore:
    """Quality for one kind."""

    kind: str
    changes: int
    caught: int
    recall: float | None
    """``None`` when the truth has no change of this kind."""
    median_delay_days: float | None
    """Days from onset to the first matching alert, median over caught changes."""
    false_alarms: int
    late_alerts: int
    window_days: float
    goal: float
    passed: bool | None
    """``None`` when not judged (no change of this kind)."""
    alerts: int = 0
    """Distinct firing alerts of this kind."""
    precision: float | None = None
    """Share of this kind's firing alerts that are not false alarms (``None`` without alerts)."""
    median_delay_gaps: float | None = None
    """Delay in the customer's own usual gaps (truth ``gap_days``), median over caught changes."""
    false_alarms_per_1000: float = 0.0
    """This kind's false alarms per 1000 customer-days."""


@dataclass(frozen=True)
class QualityReport:
    """Recall and delay per kind, false alarms overall and per kind, and the verdict."""

    kinds: dict[str, KindScore]
    alerts: int
    """Distinct firing alerts (customer, kind, time)."""
    false_alarms: int
    customer_days: float
    false_alarms_per_1000: float
    max_false_alarms_per_1000: float
    missed: list[dict[str, Any]] = field(default_factory=list)
    """Truth rows not caught (for inspection)."""

    @property
    def false_alarm_goal_passed(self) -> bool:
        return self.false_alarms_per_1000 <= self.max_false_alarms_per_1000

    @property
    def passed(self) -> bool:
        """Every judged kind meets its recall goal and the false-alarm rate is within its goal."""
        judged = [k.passed for k in self.kinds.values() if k.passed is not None]
        return all(judged) and self.false_alarm_goal_passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "kinds": {name: asdict(k) for name, k in self.kinds.items()},
            "alerts": self.alerts,
            "false_alarms": self.false_alarms,
            "customer_days": self.customer_days,
            "false_alarms_per_1000": self.false_alarms_per_1000,
            "max_false_alarms_per_1000": self.max_false_alarms_per_1000,
            "false_alarm_goal_passed": self.false_alarm_goal_passed,
            "passed": self.passed,
            "missed": list(self.missed),
        }

    def format_table(self) -> str:
        """A plain-text table, one row per kind, then the false-alarm line and the verdict."""
        head = (f"{'kind':<16} {'changes':>7} {'caught':>6} {'recall':>6} {'goal':>5} "
                f"{'delay d':>7} {'false al.':>9} {'late':>5}  pass")
        lines = [head, "-" * len(head)]
        for k in self.kinds.values():
            recall = "-" if k.recall is None else f"{k.recall:.3f}"
            delay = "-" if k.median_delay_days is None else f"{k.median_delay_days:.1f}"
            verdict = {True: "yes", False: "NO", None: "-"}[k.passed]
            lines.append(f"{k.kind:<16} {k.changes:>7} {k.caught:>6} {recall:>6} "
                         f"{k.goal:>5.2f} {delay:>7} {k.false_alarms:>9} {k.late_alerts:>5}  "
                         f"{verdict}")
        fa_verdict = "yes" if self.false_alarm_goal_passed else "NO"
        lines.append("-" * len(head))
        lines.append(f"false alarms: {self.false_alarms} of {self.alerts} firing alerts over "
                     f"{self.customer_days:,.0f} customer-days = "
                     f"{self.false_alarms_per_1000:.3f} per 1000 "
                     f"(goal <= {self.max_false_alarms_per_1000:g}): {fa_verdict}")
        lines.append(f"overall: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


def parse_epoch(value: str | float | datetime) -> float:
    """Epoch seconds of an RFC 3339 string (``Z`` accepted), a datetime or a number.

    >>> parse_epoch("1970-01-02T00:00:00Z"), parse_epoch(5)
    (86400.0, 5.0)
    """
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {value!r}")
    return moment.timestamp()


def score(
    alerts: Iterable[Mapping[str, Any]],
    truth: Iterable[Mapping[str, Any]],
    customer_days: float,
    *,
    window_days: float | Mapping[str, float] = DEFAULT_WINDOW_DAYS,
    recall_goals: Mapping[str, float] | None = None,
    max_false_alarms_per_1000: float = MAX_FALSE_ALARMS_PER_1000,
    related: Mapping[str, tuple[str, ...]] = RELATED_KINDS,
    window_gaps: Mapping[str, float] | None = None,
    split_modes: Iterable[str] = (),
) -> QualityReport:
    """Score alerts against truth. ``window_days`` may be one number or one per kind.

    ``window_gaps`` widens a kind's window, per change, to that many of the
    customer's usual gaps (truth ``gap_days``) when that is longer. With
    ``split_modes`` naming a kind, that kind's changes with a ``mode`` also get
    one row per mode (``drop_off/stop``), scored on their own.
    """
    goals = {**RECALL_GOALS, **(recall_goals or {})}
    gaps_window = dict(window_gaps or {})
    split = frozenset(split_modes)

    def window(kind: str) -> float:
        if isinstance(window_days, Mapping):
            return float(window_days.get(kind, DEFAULT_WINDOW_DAYS))
        return float(window_days)

    def row_window(kind: str, row: Mapping[str, Any]) -> float:
        days = window(kind)
        gap = row.get("gap_days")
        if kind in gaps_window and gap:
            days = max(days, gaps_window[kind] * float(gap))
        return days

    firing: set[tuple[str, str, float]] = set()
    for n, alert in enumerate(alerts, 1):
        try:
            if alert["status"] != "firing":
                continue
            firing.add((str(alert["customer_id"]), str(alert["kind"]), parse_epoch(alert["ts"])))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"alert {n}: {err!r}") from err
    changes: list[tuple[str, str, float, Mapping[str, Any]]] = []
    for n, row in enumerate(truth, 1):
        try:
            changes.append((str(row["customer_id"]), str(row["kind"]),
                            parse_epoch(row["onset"]), row))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"truth row {n}: {err!r}") from err

    alert_times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for customer, kind, ts in firing:
        alert_times[(customer, kind)].append(ts)
    for times in alert_times.values():
        times.sort()
    onsets: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for customer, kind, onset, row in changes:
        onsets[(customer, kind)].append((onset, row_window(kind, row)))

    early = EARLY_TOLERANCE_DAYS * DAY
    n_changes: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    delays: dict[str, list[float]] = defaultdict(list)
    gap_delays: dict[str, list[float]] = defaultdict(list)
    missed: list[dict[str, Any]] = []
    for customer, kind, onset, row in changes:
        keys = [kind]
        if kind in split and row.get("mode"):
            keys.append(f"{kind}/{row['mode']}")
        limit = onset + row_window(kind, row) * DAY
        hits = [t for t in alert_times.get((customer, kind), ()) if onset - early <= t <= limit]
        for key in keys:
            n_changes[key] += 1
            if hits:
                caught[key] += 1
                delays[key].append((hits[0] - onset) / DAY)
                if row.get("gap_days"):
                    gap_delays[key].append((hits[0] - onset) / DAY / float(row["gap_days"]))
        if not hits:
            missed.append(dict(row))

    false_alarms: Counter[str] = Counter()
    late: Counter[str] = Counter()
    n_alerts: Counter[str] = Counter(kind for _, kind, _ in firing)
    for customer, kind, ts in firing:
        same = onsets.get((customer, kind), [])
        if any(ts >= o - early for o, _ in same):
            if not any(o - early <= ts <= o + w * DAY for o, w in same):
                late[kind] += 1
            continue
        if any(ts >= o - early for rel in related.get(kind, ()) for o, _ in onsets.get(
                (customer, rel), [])):
            continue
        false_alarms[kind] += 1

    names = set(n_changes) | {k for _, k, _ in firing}
    ordered = [k for k in KIND_ORDER if k in names]
    ordered = [x for k in ordered for x in (k, *sorted(n for n in names
                                                        if n.startswith(f"{k}/")))]
    ordered += sorted(names - set(ordered))
    kinds: dict[str, KindScore] = {}
    for kind in ordered:
        total = n_changes[kind]
        recall = caught[kind] / total if total else None
        goal = goals.get(kind, goals.get(kind.split("/")[0], DEFAULT_RECALL_GOAL))
        base = kind.split("/")[0]
        fired = n_alerts[kind] if kind == base else 0
        kinds[kind] = KindScore(
            kind=kind,
            changes=total,
            caught=caught[kind],
            recall=recall,
            median_delay_days=statistics.median(delays[kind]) if delays[kind] else None,
            false_alarms=false_alarms[kind],
            late_alerts=late[kind],
            window_days=window(kind),
            goal=goal,
            passed=None if recall is None else recall >= goal,
            alerts=fired,
            precision=(fired - false_alarms[kind]) / fired if fired else None,
            median_delay_gaps=(statistics.median(gap_delays[kind]) if gap_delays[kind]
                               else None),
            false_alarms_per_1000=(1000.0 * false_alarms[kind] / customer_days
                                   if customer_days > 0 else 0.0),
        )
    total_fa = sum(false_alarms.values())
    rate = 1000.0 * total_fa / customer_days if customer_days > 0 else (
        math.inf if total_fa else 0.0)
    return QualityReport(kinds=kinds, alerts=len(firing), false_alarms=total_fa,
                         customer_days=customer_days, false_alarms_per_1000=rate,
                         max_false_alarms_per_1000=max_false_alarms_per_1000, missed=missed)


def customer_days(
    events: Iterable[Mapping[str, Any]], end: str | float | datetime | None = None
) -> float:
    """Sum over customers of days from their first event to ``end`` (default: the last event).

    >>> customer_days([{"customer_id": "a", "ts": "2025-01-01T00:00:00Z"},
    ...                {"customer_id": "b", "ts": "2025-01-03T00:00:00Z"},
    ...                {"customer_id": "a", "ts": "2025-01-05T00:00:00Z"}])
    6.0
    """
    first: dict[str, float] = {}
    last = -math.inf
    for event in events:
        ts = parse_epoch(event["ts"])
        customer = str(event["customer_id"])
        if ts < first.get(customer, math.inf):
            first[customer] = ts
        last = max(last, ts)
    stop = last if end is None else parse_epoch(end)
    return sum(max(0.0, stop - t) for t in first.values()) / DAY


def read_jsonl(path: Path | str) -> Iterator[dict[str, Any]]:
    """Objects of a JSONL file (gzip if the name ends in ``.gz``); blank lines skipped."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for line in fh:
            if line.strip():
                yield orjson.loads(line)


def score_files(
    alerts_path: Path | str,
    truth_path: Path | str,
    *,
    events_path: Path | str | None = None,
    customer_days_total: float | None = None,
    end: str | float | datetime | None = None,
    **options: Any,
) -> QualityReport:
    """Score an alerts file against a truth file; customer-days given or counted from events."""
    if customer_days_total is None:
        if events_path is None:
            raise ValueError("give events_path or customer_days_total")
        customer_days_total = customer_days(read_jsonl(events_path), end)
    return score(read_jsonl(alerts_path), read_jsonl(truth_path), customer_days_total,
                 **options)
