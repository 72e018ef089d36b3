"""``anomon evaluate``: model quality on public data, printed and written to a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from anomon.exits import EXIT_FAIL, EXIT_OK, EXIT_UNAVAILABLE
from anomon.lab.evaluation.errors import EvaluationUnavailable


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``evaluate`` and its datasets on the CLI's subcommands."""
    p = sub.add_parser("evaluate", help="model quality on public data (CDNOW purchases)")
    datasets = p.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    c = datasets.add_parser(
        "cdnow", help="churn scores at the classic CDNOW cutoffs, next to BG/NBD and recency",
        description="Replay the CDNOW purchases (from the lifetimes package: "
                    "pip install 'anomon[cdnow]') through the engine up to each cutoff, score "
                    "every customer then, and compare with 'no purchase to the end of the "
                    "data'. Exit 0 when it ran, 1 with --check when the goal (AUC >= 0.77 and "
                    "never below BG/NBD) is missed, 3 when the data or lifetimes is missing.")
    c.add_argument("--cutoff", action="append",
                   help="a cutoff day (repeatable; default 1997-09-30 and 1997-12-31)")
    c.add_argument("--holdout-end", default="1998-06-30", help="last day of the truth")
    c.add_argument("--detectors", type=Path, help="detector config (default models/detectors.toml)")
    c.add_argument("--no-bgnbd", action="store_true", help="skip the BG/NBD baseline")
    c.add_argument("--out", type=Path,
                   help="write report.md, results.json and roc.png into this folder")
    c.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")


def run(args: argparse.Namespace) -> int:
    """Run the chosen evaluation."""
    from anomon.cli.replay import detection_config
    from anomon.lab.evaluation import cdnow

    try:
        path = cdnow.data_file()
        rows = cdnow.parse_lines(path.read_text().splitlines())
        print(f"{len(rows):,} purchases from {path.name}; replaying each cutoff...",
              file=sys.stderr)
        report = cdnow.evaluate(rows, detection_config(args.detectors),
                                cutoffs=args.cutoff or cdnow.CUTOFFS,
                                holdout_end=args.holdout_end, with_bgnbd=not args.no_bgnbd)
    except EvaluationUnavailable as err:
        print(f"anomon evaluate: {err}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(report.format_table())
    print(f"goal (AUC >= 0.77, never below BG/NBD): {'met' if report.passed() else 'NOT met'}")
    if args.out:
        from anomon.lab.evaluation.report import write_report

        for written in write_report(report, args.out):
            print(f"wrote {written}", file=sys.stderr)
    return EXIT_FAIL if args.check and not report.passed() else EXIT_OK
