"""``anomon score``: recall per kind and false alarms per 1000 customer-days."""

from __future__ import annotations

import argparse

import orjson

from anomon.lab.quality import score_files


def run_score(args: argparse.Namespace) -> int:
    """Score alerts against ground truth; exit 0 when every goal is met, 1 otherwise."""
    report = score_files(args.alerts, args.truth, events_path=args.events)
    print(report.format_table())
    if args.json:
        args.json.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    return 0 if report.passed else 1
