"""The robustness matrix's populations with every event dated to the day, as many exports are.

A data set built elsewhere may carry dates without times: every event stamped
at midnight UTC. This script generates populations of the matrix and off it,
truncates each event's time to its day, replays and scores them as the matrix
does, and prints one row per population beside the same population with its
times (``bench/off_matrix.json`` and ``docs/quality.md`` hold those)::

    python -m bench.day_dated            # about 3 minutes; writes day_dated.json
    python -m bench.day_dated --customers 500 --no-write bursty
    python -m bench.day_dated --offset 2 --no-write    # dated in local time, UTC+2

>>> to_day({"ts": "2025-03-01T14:05:09+00:00"})["ts"]
'2025-03-01T00:00:00+00:00'
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from anomon.core.detection_config import DetectionConfig

HERE = Path(__file__).resolve().parent
POPULATIONS = ("base", "regular", "poisson", "bursty", "web-shop", "bursty-browsers",
               "shape-0.5", "shape-0.25")
"""Matrix variants and (the last two) populations of ``bench.off_matrix``."""


def to_day(event: dict[str, Any], offset_hours: int = 0) -> dict[str, Any]:
    """The event with its time truncated to midnight of its day, written at ``offset_hours``.

    >>> to_day({"ts": "2025-03-01T14:05:09+00:00"}, 2)["ts"]
    '2025-03-01T00:00:00+02:00'
    """
    epoch = datetime.fromisoformat(event["ts"]).timestamp()
    day = datetime.fromtimestamp(epoch // 86400 * 86400, UTC)
    return {**event, "ts": f"{day.date().isoformat()}T00:00:00{_offset(offset_hours)}"}


def _offset(hours: int) -> str:
    return "+00:00" if hours == 0 else f"{'+' if hours > 0 else '-'}{abs(hours):02d}:00"


def row(name: str, customers: int, offset_hours: int = 0) -> dict[str, Any]:
    """One population, dated to the day: false alarms per 1000 customer-days and recalls."""
    from anomon.lab.matrix import VARIANTS, run_variant
    from bench.off_matrix import MODELS, _recall
    from bench.off_matrix import POPULATIONS as OFF_MATRIX

    variant = {v.name: v for v in (*VARIANTS, *OFF_MATRIX)}[name]
    report = run_variant(variant, DetectionConfig.load(MODELS), customers,
                         transform=partial(to_day, offset_hours=offset_hours)).report
    kinds = report.kinds
    return {"population": name,
            "false_alarms_per_1000": round(report.false_alarms_per_1000, 3),
            "drop_off_false_alarms_per_1000": round(kinds["drop_off"].false_alarms_per_1000, 3),
            "churn_risk_false_alarms_per_1000": round(
                kinds["churn_risk"].false_alarms_per_1000 if "churn_risk" in kinds else 0.0, 3),
            "stops_caught": _recall(report, "drop_off/stop"),
            "declines_caught": _recall(report, "drop_off/decline")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.day_dated",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("populations", nargs="*", default=list(POPULATIONS))
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--offset", type=int, default=0, metavar="HOURS",
                        help="write the dates at midnight of this UTC offset (default 0)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'population':18s} {'all kinds':>9s} {'drop-off':>9s} {'churn':>6s} "
          f"{'stops':>6s} {'declines':>8s}")
    with ProcessPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
        n = len(args.populations)
        for r in pool.map(row, args.populations, [args.customers] * n, [args.offset] * n):
            rows.append(r)
            print(f"{r['population']:18s} {r['false_alarms_per_1000']:9.3f} "
                  f"{r['drop_off_false_alarms_per_1000']:9.3f} "
                  f"{r['churn_risk_false_alarms_per_1000']:6.3f} {r['stops_caught']!s:>6s} "
                  f"{r['declines_caught']!s:>8s}", flush=True)
    if not args.no_write:
        (HERE / "day_dated.json").write_text(json.dumps(
            {"customers": args.customers, "rows": rows}, indent=2) + "\n")
        print("wrote day_dated.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
