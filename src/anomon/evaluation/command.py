"""``anomon evaluate``: model quality on public data, printed and optionally written as JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from anomon.evaluation.errors import EvaluationUnavailable

EXIT_OK, EXIT_FAIL, EXIT_UNAVAILABLE = 0, 1, 3


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``evaluate`` and its datasets on the CLI's subcommands."""
    p = sub.add_parser("evaluate", help="model quality on public data (CDNOW purchases)")
    datasets = p.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    c = datasets.add_parser(
        "cdnow", help="churn scores at the classic CDNOW split, next to BG/NBD and recency",
        description="Replay the CDNOW purchases (from the lifetimes package: "
                    "pip install 'anomon[cdnow]') through the engine up to the calibration end, "
                    "score every customer then, and compare with 'no purchase in the holdout'.")
    c.add_argument("--calibration-end", default="1997-09-30", help="last calibration day")
    c.add_argument("--holdout-end", default="1998-06-30", help="last holdout day")
    c.add_argument("--detectors", type=Path, help="detector config (default models/detectors.toml)")
    c.add_argument("--no-bgnbd", action="store_true", help="skip the BG/NBD baseline")
    c.add_argument("--json", type=Path, help="write the report as JSON here")


def run(args: argparse.Namespace) -> int:
    """Run the chosen evaluation; exit 3 when its data or dependencies are missing."""
    from anomon.evaluation import cdnow
    from anomon.replay_command import detection_config

    try:
        path = cdnow.data_file()
        rows = cdnow.parse_lines(path.read_text().splitlines())
        report, _ = cdnow.evaluate(rows, detection_config(args.detectors),
                                   calibration_end=args.calibration_end,
                                   holdout_end=args.holdout_end, with_bgnbd=not args.no_bgnbd)
    except EvaluationUnavailable as err:
        print(f"anomon evaluate: {err}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(report.format_table())
    if args.json:
        args.json.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    return EXIT_OK
