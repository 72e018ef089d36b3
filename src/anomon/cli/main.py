"""The ``anomon`` command line.

Exit codes (:mod:`anomon.exits`): 0 success, 1 failure (or goals not met, for
``score``), 2 usage error, 130 interrupted. A mistake is one line on stderr that
names the fix, never a traceback. Every subcommand has ``--help``. Settings come
from ``ANOMON_*`` environment variables; the common ones can also be given as flags.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from anomon import __version__
from anomon.cli import args as checked
from anomon.cli import evaluate as evaluation_command
from anomon.cli import ops as ops_cli
from anomon.cli import quality as quality_cli
from anomon.core.build import core_build
from anomon.exits import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    error_text,
    report,
    usage,
)

#: Bounds of a synthetic history (``SyntheticConfig.days``; a unit test keeps them equal).
MIN_DAYS, MAX_DAYS = 28, 3650

_DESCRIPTION = """\
anomon watches customer events and publishes alerts when a customer changes:
drop-off, churn risk, complaint spike, refund abuse, payment arrears, spend
anomaly. Settings come from ANOMON_* environment variables (see config/README.md);
the flags below override them.

exit codes: 0 ok, 1 failure, 2 usage error (the message names the fix),
3 an optional extra is missing, 130 interrupted.
"""

_DEMO_EPILOG = """\
Without --broker the demo starts an embedded Kafka-compatible broker (Tansu) on
loopback, on a free port, and prints the `anomon tail --broker ...` command that
reads its alerts from a second terminal. To use an existing Kafka instead:

  anomon demo --broker kafka://127.0.0.1:9092
  ANOMON_BROKER=kafka://kafka:9092 anomon demo

The events are sent as fast as the worker takes them in (its lag stays under a
bound); --rate caps that. The dates are the simulated customers' event times.
Ctrl-C, SIGTERM, a closed terminal or a closed pipe stop the worker and the broker.
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
        p.add_argument("--web-port", type=checked.port, help="port of /metrics, 0: a free one "
                       "(env ANOMON_WEB_PORT)")
        p.add_argument("--app-id", help="consumer group / app id (env ANOMON_APP_ID)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = checked.Parser(prog="anomon", description=_DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"anomon {__version__} (core: {core_build()})")
    parser.add_argument("--log-level", default=None, type=checked.log_level,
                        metavar=checked.log_level.metavar,
                        help="how much to log (env ANOMON_LOG_LEVEL, default info)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("worker", help="run the stream worker against Kafka")
    _add_kafka_flags(p, web=True)

    p = sub.add_parser("demo", help="embedded broker + worker + synthetic customers, alerts "
                       "printed live", epilog=_DEMO_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_kafka_flags(p, web=True)
    p.add_argument("--customers", type=checked.IntRange(1), default=1000,
                   help="simulated customers (1000)")
    _add_days(p, 365)
    p.add_argument("--rate", type=checked.positive_float, default=None,
                   help="at most this many events per second (default: as fast as the worker "
                   "takes them in)")
    p.add_argument("--seed", type=int, default=7, help="random seed (7)")

    p = sub.add_parser("produce", help="send synthetic (or file) events to the input topic")
    _add_kafka_flags(p)
    p.add_argument("--file", type=checked.existing_file,
                   help="events JSONL(.gz) to send instead of synthetic")
    p.add_argument("--customers", type=checked.IntRange(1), default=2000,
                   help="simulated customers (2000)")
    _add_days(p, 365)
    p.add_argument("--seed", type=int, default=7, help="random seed (7)")
    p.add_argument("--end-now", action="store_true", help="date the simulated history so that "
                   "it ends today (default: it starts on 2025-01-01)")
    p.add_argument("--rate", type=checked.positive_float, default=None,
                   help="events per second (as fast as possible if unset)")

    p = sub.add_parser("replay", help="run events from a file through the engine, offline")
    p.add_argument("events", type=checked.existing_file, help="events JSONL or JSONL.gz")
    p.add_argument("--out", type=checked.new_file, required=True,
                   help="alerts JSONL to write (its folder must exist)")
    p.add_argument("--dlq", type=checked.new_file,
                   help="rejected lines JSONL (reason, detail, raw)")
    p.add_argument("--no-sort", action="store_true", help="process in file order (streaming) "
                   "instead of sorting by event time")
    p.add_argument("--sweep-hours", type=float, default=24.0, help="event-time hours between "
                   "sweeps for silent customers (24)")
    p.add_argument("--until", help="final sweep at this RFC 3339 time (default: last event)")
    p.add_argument("--jobs", type=checked.IntRange(1, 64, "jobs"), default=1,
                   help="engines in parallel processes, each with a share of the customers, "
                   "as that many workers would run them (1: one engine, as one worker)")
    p.add_argument("--summary", type=checked.new_file, help="write the summary as JSON here")
    p.add_argument("--detectors", type=checked.existing_file, default=None,
                   help="detector configuration TOML (default models/detectors.toml if present)")

    p = sub.add_parser("tail", help="print alerts from the alerts topic, one line each",
                       description="Print each alert as one line of at most 120 columns: "
                       "event date, severity, kind, status, customer, tier/stage, score in its "
                       "unit, first reason. Exits 1 when the broker stays unreachable.")
    _add_kafka_flags(p)
    p.add_argument("--kind", action="append", type=checked.kind, metavar=checked.kind.metavar,
                   help="only this kind (repeatable)")
    p.add_argument("--severity", action="append", type=checked.severity,
                   metavar=checked.severity.metavar, help="only this severity (repeatable)")
    p.add_argument("--segment", action="append", type=checked.segment, metavar="SEGMENT",
                   help="only this value tier (high, mid, low), lifecycle stage (new, active, "
                   "loyal, at_risk, lapsed, churned) or both (high/at_risk) (repeatable)")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    p.add_argument("--limit", type=checked.IntRange(1), help="stop after this many alerts")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also every reason and the recommended action, on lines of their own")
    p.add_argument("--give-up-after", type=checked.positive_float, default=60.0,
                   metavar="SECONDS", help="exit 1 when the broker is unreachable this long (60)")

    p = sub.add_parser("forward", help="post alerts to Alertmanager (API v2), a webhook "
                       "receiver or PagerDuty (Events v2), with retries")
    _add_kafka_flags(p)
    p.add_argument("--url", help="endpoint (env ANOMON_FORWARD_URL)")
    p.add_argument("--format", choices=["alertmanager", "webhook", "pagerduty"],
                   help="alertmanager: POST /api/v2/alerts; webhook: Alertmanager's webhook "
                   "shape for webhook receivers; pagerduty: Events v2 "
                   "(env ANOMON_FORWARD_FORMAT)")
    p.add_argument("--kind", action="append", type=checked.kind, metavar=checked.kind.metavar,
                   help="only this kind (repeatable; env ANOMON_FORWARD_KINDS)")
    p.add_argument("--severity", action="append", type=checked.severity,
                   metavar=checked.severity.metavar,
                   help="only this severity (repeatable; env ANOMON_FORWARD_SEVERITIES)")
    p.add_argument("--segment", action="append", type=checked.segment, metavar="SEGMENT",
                   help="only this tier, stage or tier/stage (repeatable; "
                   "env ANOMON_FORWARD_SEGMENTS)")
    p.add_argument("--give-up-after", type=checked.positive_float, metavar="SECONDS",
                   help="exit 1 when the broker is unreachable this long "
                   "(env ANOMON_FORWARD_GIVE_UP_S, 300)")
    p.add_argument("--from-beginning", action="store_true", help="a new group starts at the "
                   "oldest alert instead of the newest")

    p = sub.add_parser("generate", help="write a synthetic events file and its ground truth")
    p.add_argument("--events", type=checked.new_file, required=True,
                   help="events JSONL(.gz) to write")
    p.add_argument("--truth", type=checked.new_file, required=True,
                   help="ground-truth JSONL to write")
    p.add_argument("--customers", type=checked.IntRange(1), default=3000,
                   help="simulated customers (3000)")
    _add_days(p, 365)
    p.add_argument("--seed", type=int, default=7, help="random seed (7)")

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


def _add_days(p: argparse.ArgumentParser, default: int) -> None:
    p.add_argument("--days", type=checked.IntRange(MIN_DAYS, MAX_DAYS, "days"), default=default,
                   help=f"simulated days, {MIN_DAYS} to {MAX_DAYS} ({default})")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``anomon`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    level = args.log_level or os.environ.get("ANOMON_LOG_LEVEL", "INFO")
    if level.upper() not in checked.LOG_LEVELS:
        return usage(args.command, f"log level {level!r} is not one of "
                     f"{', '.join(checked.LOG_LEVELS)}", fix="set ANOMON_LOG_LEVEL or "
                     "--log-level to one of them")
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command in _REPORTS_ITS_OWN_BROKER_ERRORS and level.upper() != "DEBUG":
        for log_handler in logging.getLogger().handlers:
            log_handler.addFilter(_no_kafka_client_chatter)
    handler = _COMMANDS[args.command]
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return report(args.command, "interrupted", code=EXIT_INTERRUPTED)
    except BrokenPipeError:
        _drop_stdout()  # the reader left (anomon tail | head): nothing more to say
        return EXIT_OK
    except ValidationError as err:
        return usage(args.command, _invalid_setting(err), fix="check that setting "
                     "(env ANOMON_*, or its flag)")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as err:
        return report(args.command, error_text(err))
    except Exception as err:
        if level.upper() == "DEBUG":
            raise
        return report(args.command, f"unexpected error: {error_text(err)}",
                      fix="rerun with --log-level debug to see where")


#: Commands that report a broker problem in their own one line: the Kafka client's
#: log lines about it would only repeat it (``--log-level debug`` shows them).
_REPORTS_ITS_OWN_BROKER_ERRORS = frozenset({"demo", "produce", "tail", "dlq", "erase"})


def _no_kafka_client_chatter(record: logging.LogRecord) -> bool:
    return not record.name.startswith("aiokafka") or record.levelno >= logging.CRITICAL


def _invalid_setting(err: ValidationError) -> str:
    """The first problem of a settings (or input) validation, in one line."""
    first = err.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or "value"
    env = f" (ANOMON_{field.upper()})" if field.isidentifier() else ""
    return f"invalid {field}{env}: {first.get('msg', 'invalid')}"


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _cmd_worker(args: argparse.Namespace) -> int:
    from anomon.worker.worker import run_worker

    return run_worker(_settings(args))


def _cmd_demo(args: argparse.Namespace) -> int:
    from anomon.ops.demo import run_demo

    return run_demo(_settings(args), customers=args.customers, days=args.days, rate=args.rate,
                    seed=args.seed, use_embedded=args.broker is None and not _env_broker(),
                    web_port_chosen=args.web_port is not None or "ANOMON_WEB_PORT" in os.environ)


def _env_broker() -> bool:
    return "ANOMON_BROKER" in os.environ


def _cmd_produce(args: argparse.Namespace) -> int:
    from anomon.ops.producer import produce

    if args.file is not None:
        import orjson

        from anomon.replay import read_lines

        events: Any = (orjson.loads(line) for line in read_lines(args.file))
    else:
        from anomon.lab.synthetic import SyntheticConfig, generate
        from anomon.ops.producer import start_to_end_today

        config = SyntheticConfig(customers=args.customers, days=args.days, seed=args.seed)
        if args.end_now:
            config = config.model_copy(update={"start": start_to_end_today(args.days)})
        events = generate(config)
    return produce(_settings(args), events, rate=args.rate)


def _cmd_replay(args: argparse.Namespace) -> int:
    from anomon.cli.replay import run_replay

    return run_replay(args)


def _cmd_tail(args: argparse.Namespace) -> int:
    from anomon.ops.tail import tail_alerts

    return tail_alerts(_settings(args), kinds=args.kind, severities=args.severity,
                       from_beginning=args.from_beginning, limit=args.limit, out=sys.stdout,
                       segments=args.segment, verbose=args.verbose,
                       give_up_s=args.give_up_after)


def _cmd_forward(args: argparse.Namespace) -> int:
    from anomon.ops.forward import run_forward

    settings = _settings(args)
    joined = {name: ",".join(values) for name, values in (
        ("forward_kinds", args.kind), ("forward_severities", args.severity),
        ("forward_segments", args.segment)) if values}
    overrides: dict[str, object] = {
        k: v for k, v in (("forward_url", args.url), ("forward_format", args.format))
        if v is not None}
    overrides.update(joined)
    if args.give_up_after is not None:
        overrides["forward_give_up_s"] = args.give_up_after
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
