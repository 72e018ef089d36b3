"""Drains on Apache Kafka with the broker's index files at Kafka's size and at the fixture's.

Each run of the worker benches makes new topics, and each new partition gets
an offset index and a time index: sparse files the broker maps into memory.
Its first entry in one faults a page in, and the kernel reads ahead around the
fault; where the disk's readahead is large it zeroes that much of the hole, in
the request thread. This bench starts one broker per index size in turn
(``log.index.size.max.bytes``: Kafka's default 10 MiB, and the test fixture's
:data:`brokers.apache_kafka.INDEX_FILE_BYTES`), drains the same 100,000 events
with one worker and with two, ``--rounds`` times after a warm-up of each, and
writes each run's rate and the broker's CPU by thread group to
``index_files.json``::

    python -m bench.index_files --rounds 8

>>> summary([{"index_bytes": 1 << 20, "workers": w, "events_per_s": r, "broker_cpu_share": 0.2,
...           "cpu_us_per_event": 20.0, "broker_threads_share": {"requests": 0.1}}
...          for w, r in ((1, 100), (2, 180))])["1 MiB"]
{'one_per_s': 100, 'two_per_s': 180, 'two_vs_one': 1.8, 'two_vs_one_per_round': [1.8], \
'one_broker_cpu_share': 0.2, 'two_broker_cpu_share': 0.2, 'one_cpu_us_per_event': 20.0, \
'two_request_threads_share': 0.1}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from anomon.core.build import core_build
from bench.drain_settings import summary as drain_summary
from bench.end_to_end import synthetic_events
from bench.hot_path import encoded, workers_rate
from bench.kept import keep
from brokers import ApacheKafkaBroker
from brokers.apache_kafka import INDEX_FILE_BYTES

HERE = Path(__file__).resolve().parent
OUT = HERE / "index_files.json"
KAFKA_DEFAULT = 10 << 20


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per index size, :func:`bench.drain_settings.summary` and the median share of the
    broker's request threads beside two workers."""
    labelled = [{**r, "config": _mib(r["index_bytes"])} for r in runs]
    out = drain_summary(labelled)
    for label, entry in out.items():
        entry["two_request_threads_share"] = round(statistics.median(
            r["broker_threads_share"].get("requests", 0.0)
            for r in labelled if r["config"] == label and r["workers"] == 2), 2)
    return out


def drains(size: int, rounds: int, records: dict[int, list[tuple[bytes, bytes]]],
           workdir: Path) -> list[dict[str, Any]]:
    """A warm-up pair, then ``rounds`` pairs of one worker's and two workers' drains."""
    runs = []
    with ApacheKafkaBroker(extra_config={"log.index.size.max.bytes": str(size)}) as broker:
        workers_rate(broker, records, 1, workdir)
        workers_rate(broker, records, 2, workdir)
        for i in range(rounds):
            for count in (1, 2):
                run = workers_rate(broker, records, count, workdir)
                runs.append({"index_bytes": size, "round": i, **run})
                print(f"{_mib(size)} round {i + 1}: {count} worker(s) {run['events_per_s']:,}/s, "
                      f"broker {run['broker_cpu_share']}", file=sys.stderr)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="pairs of drains per broker")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--write", action="store_true", help=f"keep the runs in {OUT.name}")
    args = parser.parse_args(argv)
    records = encoded(synthetic_events(args.events))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="anomon-index-") as tmp:
        workdir = Path(tmp)
        (workdir / "models").mkdir()
        for size in (KAFKA_DEFAULT, INDEX_FILE_BYTES):
            runs += drains(size, args.rounds, records, workdir)
    result = {"events": args.events, "rounds": args.rounds, "cores": os.cpu_count(),
              "core": core_build(), "readahead_kb": _readahead_kb(), "summary": summary(runs),
              "runs": runs}
    print(json.dumps(result["summary"], indent=1))
    if args.write:
        keep(OUT, "", result)
    return 0


def _readahead_kb() -> dict[str, int]:
    """Each block device's readahead (``/sys/block/*/queue/read_ahead_kb``)."""
    out = {}
    for path in sorted(Path("/sys/block").glob("*/queue/read_ahead_kb")):
        try:
            out[path.parts[3]] = int(path.read_text())
        except (OSError, ValueError):
            continue
    return out


if __name__ == "__main__":
    raise SystemExit(main())
