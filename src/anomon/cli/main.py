"""The ``anomon`` command line.

Exit codes: 0 success, 1 failure (or goals not met, for ``score``), 2 usage
error, 130 interrupted. Every subcommand has ``--help``. Settings come from
``ANOMON_*`` environment variables; the common ones can also be given as flags.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from anomon import __version__
from anomon.cli import evaluate as evaluation_command
from anomon.cli import ops as ops_cli
from anomon.cli import quality as quality_cli
from anomon.exits import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

_DESCRIPTION = """\
anomon watches customer events and publishes alerts when a customer changes:
drop-off, churn risk, complaint spike, refund abuse, payment arrears, spend
anomaly. Settings come from ANOMON_* environment variables (see config/README.md);
the flags below override them.
"""

_DEMO_EPILOG = """\
Without --broker the demo starts an embedded Kafka-compatible broker (Tansu) on
loopback. To use an existing Kafka instead:

  anomon demo --broker kafka://127.0.0.1:9092
  ANOMON_BROKER=kafka://kafka:9092 anomon demo
"""


def _settings(args: argparse.Namespace) -> Any:
    from anomon.settings import Settings

    overrides = {
        key: value
        for key in ("broker", "input_topic", "alerts_topic", "web_host", "web_port", "app_id")
        if (value := getattr(args, key, None)) is not None
    }
    return Settings(**overrides)


def _add_kafka_flags(p: argparse.ArgumentParser, web: bool = False) -> None:
    p.add_argument("--broker", help="Kafka bootstrap URL, e.g. kafka://127.0.0.1:9092 "
                   "(env ANOMON_BROKER)")
    p.add_argument("--input-topic", help="input topic (env ANOMON_INPUT_TOPIC)")
    p.add_argument("--alerts-topic", help="alerts topic (env ANOMON_ALERTS_TOPIC)")
    if web:
        p.add_argument("--web-host", help="address of /metrics (env ANOMON_WEB_HOST)")
        p.add_argument("--web-port", type=int, help="port of /metrics (env ANOMON_WEB_PORT)")
        p.add_argument("--app-id", help="consumer group / app id (env ANOMON_APP_ID)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="anomon", description=_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"anomon {__version__}")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (env "
                        "ANOMON_LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("worker", help="run the stream worker (Faust) against Kafka")
    _add_kafka_flags(p, web=True)

    p = sub.add_parser("demo", help="embedded broker + worker + synthetic customers, alerts "
                       "printed live", epilog=_DEMO_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_kafka_flags(p, web=True)
    p.add_argument("--customers", type=int, default=2000, help="simulated customers (2000)")
    p.add_argument("--days", type=int, default=365, help="simulated days (365)")
    p.add_argument("--rate", type=float, default=2000.0, help="events per second sent (2000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (7)")

    p = sub.add_parser("produce", help="send synthetic (or file) events to the input topic")
    _add_kafka_flags(p)
    p.add_argument("--file", type=Path, help="events JSONL(.gz) to send instead of synthetic")
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rate", type=float, default=None, help="events per second (as fast as "
                   "possible if unset)")

    p = sub.add_parser("replay", help="run events from a file through the engine, offline")
    p.add_argument("events", type=Path, help="events JSONL or JSONL.gz")
    p.add_argument("--out", type=Path, required=True, help="alerts JSONL to write")
    p.add_argument("--dlq", type=Path, help="rejected lines JSONL (reason, detail, raw)")
    p.add_argument("--no-sort", action="store_true", help="process in file order (streaming) "
                   "instead of sorting by event time")
    p.add_argument("--sweep-hours", type=float, default=24.0, help="event-time hours between "
                   "sweeps for silent customers (24)")
    p.add_argument("--until", help="final sweep at this RFC 3339 time (default: last event)")
    p.add_argument("--summary", type=Path, help="write the summary as JSON here")
    p.add_argument("--detectors", type=Path, default=None,
                   help="detector configuration TOML (default models/detectors.toml if present)")

    p = sub.add_parser("tail", help="print alerts from the alerts topic, one line each")
    _add_kafka_flags(p)
    p.add_argument("--kind", action="append", help="only this kind (repeatable)")
    p.add_argument("--severity", action="append", help="only this severity (repeatable)")
    p.add_argument("--segment", action="append", help="only this value tier (high), lifecycle "
                   "stage (at_risk) or both (high/at_risk) (repeatable)")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    p.add_argument("--limit", type=int, help="stop after this many alerts")

    p = sub.add_parser("forward", help="post alerts to a webhook (Alertmanager JSON) or "
                       "PagerDuty (Events v2), with retries")
    _add_kafka_flags(p)
    p.add_argument("--url", help="endpoint (env ANOMON_FORWARD_URL)")
    p.add_argument("--format", choices=["alertmanager", "pagerduty"],
                   help="payload format (env ANOMON_FORWARD_FORMAT)")
    p.add_argument("--from-beginning", action="store_true", help="a new group starts at the "
                   "oldest alert instead of the newest")

    p = sub.add_parser("generate", help="write a synthetic events file and its ground truth")
    p.add_argument("--events", type=Path, required=True, help="events JSONL(.gz) to write")
    p.add_argument("--truth", type=Path, required=True, help="ground-truth JSONL to write")
    p.add_argument("--customers", type=int, default=3000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--seed", type=int, default=7)

    p = sub.add_parser("score", help="recall per kind and false alarms per 1000 customer-days")
    p.add_argument("--alerts", type=Path, required=True, help="alerts JSONL (from replay)")
    p.add_argument("--truth", type=Path, required=True, help="ground-truth JSONL")
    p.add_argument("--events", type=Path, required=True, help="events file (customer-days)")
    p.add_argument("--json", type=Path, help="write the report as JSON here")
    quality_cli.add_quality_parser(sub)

    evaluation_command.add_parser(sub)

    ops_cli.add_parsers(sub)

    p = sub.add_parser("schema", help="write the stream contracts under streams/ (or check)")
    p.add_argument("--dir", type=Path, default=Path("streams"), help="contracts folder")
    p.add_argument("--check", action="store_true", help="exit 1 if the files are out of date")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``anomon`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    level = args.log_level or _env_log_level()
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = _COMMANDS[args.command]
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        print(f"anomon {args.command}: {err}", file=sys.stderr)
        return EXIT_FAIL


def _env_log_level() -> str:
    import os

    return os.environ.get("ANOMON_LOG_LEVEL", "INFO")


def _cmd_worker(args: argparse.Namespace) -> int:
    from anomon.worker.worker import run_worker

    return run_worker(_settings(args))


def _cmd_demo(args: argparse.Namespace) -> int:
    from anomon.ops.demo import run_demo

    return run_demo(_settings(args), customers=args.customers, days=args.days, rate=args.rate,
                    seed=args.seed, use_embedded=args.broker is None and not _env_broker())


def _env_broker() -> bool:
    import os

    return "ANOMON_BROKER" in os.environ


def _cmd_produce(args: argparse.Namespace) -> int:
    from anomon.ops.producer import produce

    if args.file is not None:
        import orjson

        from anomon.replay import read_lines

        events: Any = (orjson.loads(line) for line in read_lines(args.file))
    else:
        from anomon.lab.synthetic import SyntheticConfig, generate

        events = generate(SyntheticConfig(customers=args.customers, days=args.days,
                                          seed=args.seed))
    return produce(_settings(args), events, rate=args.rate)


def _cmd_replay(args: argparse.Namespace) -> int:
    from anomon.cli.replay import run_replay

    return run_replay(args)


def _cmd_tail(args: argparse.Namespace) -> int:
    from anomon.ops.tail import tail_alerts

    return tail_alerts(_settings(args), kinds=args.kind, severities=args.severity,
                       from_beginning=args.from_beginning, limit=args.limit, out=sys.stdout,
                       segments=args.segment)


def _cmd_forward(args: argparse.Namespace) -> int:
    from anomon.ops.forward import run_forward

    settings = _settings(args)
    overrides = {k: v for k, v in (("forward_url", args.url), ("forward_format", args.format))
                 if v is not None}
    return run_forward(settings.model_copy(update=overrides), from_beginning=args.from_beginning)


def _cmd_generate(args: argparse.Namespace) -> int:
    from anomon.lab.synthetic import SyntheticConfig, write_dataset

    summary = write_dataset(SyntheticConfig(customers=args.customers, days=args.days,
                                            seed=args.seed), args.events, args.truth)
    print(summary)
    return EXIT_OK


def _cmd_score(args: argparse.Namespace) -> int:
    from anomon.cli.quality import run_score

    return run_score(args)


def _cmd_schema(args: argparse.Namespace) -> int:
    from anomon import contracts

    if args.check:
        stale = contracts.drifted(args.dir)
        for name in stale:
            print(f"out of date: {args.dir / name} (run: anomon schema)", file=sys.stderr)
        return EXIT_FAIL if stale else EXIT_OK
    for path in contracts.write(args.dir):
        print(f"wrote {path}")
    return EXIT_OK


_COMMANDS = {
    "evaluate": evaluation_command.run,
    "worker": _cmd_worker,
    "demo": _cmd_demo,
    "produce": _cmd_produce,
    "replay": _cmd_replay,
    "tail": _cmd_tail,
    "forward": _cmd_forward,
    "generate": _cmd_generate,
    "score": _cmd_score,
    "quality": quality_cli.run_quality,
    "schema": _cmd_schema,
    **ops_cli.COMMANDS,
}
