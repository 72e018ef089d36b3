"""``anomon score`` and ``anomon quality matrix``: detection quality against ground truth."""

from __future__ import annotations

import argparse
import sys

import orjson

from anomon.exits import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from anomon.lab.quality import score_files


def run_score(args: argparse.Namespace) -> int:
    """Score alerts against ground truth; exit 0 when every goal is met, 1 otherwise."""
    report = score_files(args.alerts, args.truth, events_path=args.events)
    print(report.format_table())
    if args.json:
        args.json.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    return 0 if report.passed else 1


def add_quality_parser(sub: argparse._SubParsersAction) -> None:
    """The ``quality`` command and its ``matrix`` subcommand."""
    p = sub.add_parser("quality", help="detection quality over the robustness matrix")
    inner = p.add_subparsers(dest="quality_command", metavar="SUBCOMMAND")
    m = inner.add_parser("matrix", help="replay every behaviour variant and score it "
                         "(recall, false alarms per 1000 customer-days, precision, delay)")
    m.add_argument("--variant", action="append", help="only this variant (repeatable)")
    m.add_argument("--reduced", action="store_true", help="only the variants the unit "
                   "suite runs")
    m.add_argument("--customers", type=int, help="population size of every variant")
    m.add_argument("--detectors", default=None, help="detector configuration TOML "
                   "(default models/detectors.toml if present)")
    m.add_argument("--markdown", help="write the tables (Markdown) here")
    m.add_argument("--json", help="write every report as JSON here")
    m.add_argument("--list", action="store_true", help="list the variants and exit")


def run_quality(args: argparse.Namespace) -> int:
    """Run ``anomon quality matrix``; exit 0 when every variant meets its goals."""
    from pathlib import Path

    from anomon.core.detection_config import DetectionConfig
    from anomon.lab.matrix import REDUCED, VARIANTS, format_markdown, run_matrix, to_json
    from anomon.settings import Settings

    if args.quality_command != "matrix":
        print("usage: anomon quality matrix [--help]", file=sys.stderr)
        return EXIT_USAGE
    if args.list:
        for v in VARIANTS:
            print(f"{v.name:<22} {v.description}")
        return EXIT_OK
    names = args.variant or (list(REDUCED) if args.reduced else [v.name for v in VARIANTS])
    by_name = {v.name: v for v in VARIANTS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        print(f"unknown variant(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
        return EXIT_USAGE
    path = Path(args.detectors) if args.detectors else Settings().detectors_file
    detection = DetectionConfig.load(path)

    def show(r: object) -> None:
        from anomon.lab.matrix import VariantResult

        assert isinstance(r, VariantResult)
        rep = r.report
        k = rep.kinds
        stop, decl = k.get("drop_off/stop"), k.get("drop_off/decline")
        print(f"{r.variant.name:<22} false alarms/1000 cd {rep.false_alarms_per_1000:6.3f}  "
              f"stops {stop.recall if stop else float('nan'):.2f}  "
              f"declines {decl.recall if decl else float('nan'):.2f}  "
              f"{'pass' if r.passed else 'FAIL'}  ({r.events:,} events, {r.seconds:.0f} s)",
              flush=True)

    results = run_matrix([by_name[n] for n in names], detection, args.customers, progress=show)
    if args.markdown:
        Path(args.markdown).write_text(format_markdown(results))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(to_json(results), option=orjson.OPT_INDENT_2))
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAIL
