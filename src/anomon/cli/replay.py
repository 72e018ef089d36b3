"""``anomon replay``: files in, alerts and rejects out, a summary at the end.

Exit 0 when every line is accounted for, 1 when some is not, or when no line
could be used at all (an empty file, or every line rejected: the wrong file?).
Output folders must exist: nothing is created unasked.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import IO

import orjson

from anomon.cli.replay_jobs import ShardFailed, run_sharded
from anomon.collector import tune_collector
from anomon.core.build import core_build
from anomon.core.detection_config import DetectionConfig
from anomon.core.engine import Engine
from anomon.core.timeutil import HOUR, from_rfc3339
from anomon.exits import EXIT_FAIL, EXIT_OK, report
from anomon.replay import Replayer, file_writers, read_lines
from anomon.settings import Settings


class _Progress:
    """Progress on stderr when it is a terminal, at most every half second."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.perf_counter()
        self.last = 0.0

    def __call__(self, lines: int) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.5:
            return
        self.last = now
        rate = lines / max(now - self.started, 1e-9)
        self.stream.write(f"\r  read {lines:,} lines ({rate:,.0f}/s)")
        self.stream.flush()

    def shards(self, done: int, jobs: int) -> None:
        if self.enabled:
            self.stream.write(f"\r  {done} of {jobs} shards replayed")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 60 + "\r")


def detection_config(path: Path | None) -> DetectionConfig:
    """The ``--detectors`` file, or ``models/detectors.toml`` under the models dir."""
    if path is None:
        path = Settings().detectors_file
    return DetectionConfig.load(path)


def run_replay(args: argparse.Namespace) -> int:
    """Run the replay described by the parsed ``anomon replay`` arguments."""
    settings = Settings()
    config = detection_config(args.detectors)
    until = from_rfc3339(args.until) if args.until else None
    tune_collector()
    progress = _Progress(sys.stderr)
    with args.out.open("wb") as out, _open_optional(args.dlq) as dlq:
        if args.jobs > 1:
            try:
                summary = run_sharded(
                    args.events, args.jobs, config, settings.lateness_bound_s, out, dlq,
                    sweep_every_s=args.sweep_hours * HOUR, sort=not args.no_sort, until=until,
                    progress=progress.shards)
            except ShardFailed as err:
                progress.done()
                return report("replay", str(err), fix="rerun with --jobs 1 to see where")
        else:
            on_alert, on_reject = file_writers(out, dlq)
            engine = Engine(config, lateness_bound_s=settings.lateness_bound_s)
            replayer = Replayer(engine=engine, sweep_every_s=args.sweep_hours * HOUR,
                                on_alert=on_alert, on_reject=on_reject)
            summary = replayer.run(read_lines(args.events), sort=not args.no_sort, until=until,
                                   progress=progress)
    progress.done()
    result = {**summary.to_dict(), "core": core_build()}
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(summary.rejected.items())) or "none"
    alerts = ", ".join(f"{k} {v}" for k, v in sorted(summary.alerts.items())) or "none"
    print(
        f"events {summary.events_in:,}: processed {summary.processed:,}, duplicate "
        f"{summary.duplicate:,}, late {summary.late:,}, rejected "
        f"{sum(summary.rejected.values()):,} ({rejected})\n"
        f"customers {summary.customers:,}; alerts: {alerts}\n"
        f"{summary.seconds:.2f} s, {summary.events_per_s:,.0f} events/s (core: {result['core']})"
    )
    if args.summary:
        args.summary.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    rejected_all = sum(summary.rejected.values())
    if summary.events_in == 0:
        return report("replay", f"{args.events} holds no events", fix="is it the right file?")
    if rejected_all == summary.events_in:
        first = max(summary.rejected, key=summary.rejected.__getitem__)
        return report("replay", f"every line of {args.events} was rejected (mostly {first})",
                      fix="see why with --dlq FILE; the event contract is "
                      "streams/schemas/customer-event.schema.json")
    return EXIT_OK if summary.accounted else EXIT_FAIL


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _open_optional(path: Path | None) -> IO[bytes] | _Nothing:
    if path is None:
        return _Nothing()
    return path.open("wb")
