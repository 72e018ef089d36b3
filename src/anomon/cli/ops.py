"""Operator commands of ``anomon``: ``dlq`` (list, re-drive), ``erase`` and ``pseudonym``.

Each reads its settings from ``ANOMON_*`` variables (``--broker`` and the topic
flags override them) and returns the CLI's exit codes: 0 done, 1 failure, 2
usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from anomon.cli import args as checked
from anomon.exits import EXIT_FAIL, EXIT_OK, report, usage

_DLQ_EPILOG = """\
examples:
  anomon dlq list                                  every dead-lettered record, then counts by reason
  anomon dlq list --reason schema_error --limit 20
  anomon dlq redrive --reason too_large --dry-run  what would be sent back
  anomon dlq redrive --partition 2 --from-offset 100 --to-offset 180

The DLQ holds the original records, customer data included: see README
"Dead-letter topic" for its retention and who may read it.
"""

_ERASE_EPILOG = """\
The worker owning the customer deletes their state (the table entry, its
changelog record, pending churn labels, sweep bookkeeping). Alerts already
published and records in the input, dead-letter and late topics are not
touched: they expire with those topics' retention.
"""


def _settings(args: argparse.Namespace) -> Any:
    from anomon.settings import Settings

    overrides = {key: value for key in ("broker", "input_topic", "dlq_topic", "erasure_topic")
                 if (value := getattr(args, key, None)) is not None}
    return Settings(**overrides)


def add_parsers(sub: Any) -> None:
    """Add ``dlq``, ``erase`` and ``pseudonym`` to the ``anomon`` subcommands."""
    p = sub.add_parser("dlq", help="list dead-lettered records by reason, or re-drive them",
                       epilog=_DLQ_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("list", "redrive"), help="list, or send back to the input")
    p.add_argument("--broker", help="Kafka bootstrap URL (env ANOMON_BROKER)")
    p.add_argument("--dlq-topic", help="dead-letter topic (env ANOMON_DLQ_TOPIC)")
    p.add_argument("--input-topic", help="where re-driven records go (env ANOMON_INPUT_TOPIC)")
    p.add_argument("--reason", action="append", default=[],
                   help="only records with this reason (repeatable)")
    p.add_argument("--partition", type=checked.IntRange(0), help="only this DLQ partition")
    p.add_argument("--from-offset", type=checked.IntRange(0),
                   help="only DLQ offsets from this one (inclusive)")
    p.add_argument("--to-offset", type=checked.IntRange(0),
                   help="only DLQ offsets up to this one (inclusive)")
    p.add_argument("--limit", type=checked.IntRange(1),
                   help="list: print at most this many records")
    p.add_argument("--show-raw", action="store_true",
                   help="list: print the original values too (customer data)")
    p.add_argument("--dry-run", action="store_true", help="redrive: only count what would go")

    p = sub.add_parser("erase", help="delete one customer's state (a deletion request)",
                       epilog=_ERASE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("customer_id", help="the customer id, exactly as in the events")
    p.add_argument("--broker", help="Kafka bootstrap URL (env ANOMON_BROKER)")
    p.add_argument("--erasure-topic", help="erasure requests topic (env ANOMON_ERASURE_TOPIC)")

    sub.add_parser("pseudonym", help="the reference that stands for a customer id in the logs",
                   description="Prints the log reference of CUSTOMER_ID under "
                   "ANOMON_PSEUDONYM_KEY, to find that customer's log lines."
                   ).add_argument("customer_id")


def run_dlq(args: argparse.Namespace) -> int:
    from anomon.ops.dlq import Selection, run_dlq

    if (args.from_offset is not None or args.to_offset is not None) and args.partition is None:
        return usage("dlq", "--from-offset/--to-offset need --partition",
                     fix="add --partition N")
    selection = Selection(reasons=set(args.reason), partition=args.partition,
                          from_offset=args.from_offset, to_offset=args.to_offset)
    return run_dlq(_settings(args), args.action, selection, out=sys.stdout, err=sys.stderr,
                   show_raw=args.show_raw, limit=args.limit, dry_run=args.dry_run)


def run_erase(args: argparse.Namespace) -> int:
    from anomon.ops.erase import request_erasure

    return request_erasure(_settings(args), args.customer_id, out=sys.stdout, err=sys.stderr)


def run_pseudonym(args: argparse.Namespace) -> int:
    from anomon.kafka.logs import customer_ref, set_pseudonym_key

    key = _settings(args).pseudonym_key.get_secret_value()
    if not key:
        return report("pseudonym", "ANOMON_PSEUDONYM_KEY is not set; without it each worker "
                      "uses a random key and its references cannot be reproduced",
                      fix="set it to the workers' key", code=EXIT_FAIL)
    set_pseudonym_key(key)
    print(customer_ref(args.customer_id))
    return EXIT_OK


COMMANDS = {"dlq": run_dlq, "erase": run_erase, "pseudonym": run_pseudonym}
