"""The collector's pauses during ``anomon replay --no-sort`` of a file, per generation.

Replays the file in this process, as ``anomon replay`` streams it (the collector
tuned as the command tunes it), and times each collection from the collector's
own callbacks. Prints, per generation, how many collections ran, the longest
and the total::

    python -m bench.gc_pauses events.jsonl.gz

A history of many customers acting for the first time (``python -m
bench.gc_pauses --synthetic 420000 --customers 100000``) shows what a worker's
first touches cost: every new or first-decoded state survives the young
collections.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import tempfile
from pathlib import Path

import orjson

from anomon.cli.main import main as anomon_main
from anomon.collector import PauseTimer


def pauses_of(path: Path) -> dict[int, list[float]]:
    """Seconds of each collection, by generation, while ``path`` is replayed."""
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    timer = PauseTimer(lambda generation, seconds: pauses[generation].append(seconds)).install()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            anomon_main(["replay", str(path), "--no-sort", "--out", f"{tmp}/alerts.jsonl"])
    finally:
        timer.remove()
    return pauses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gc_pauses",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("events", nargs="?", type=Path, help="events JSONL or JSONL.gz")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="instead: the first N events of a synthetic history")
    parser.add_argument("--customers", type=int, help="the synthetic history's customers")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.events
        if args.synthetic:
            from bench.end_to_end import synthetic_events

            path = Path(tmp) / "events.jsonl.gz"
            with gzip.open(path, "wb") as out:
                for event in synthetic_events(args.synthetic, args.customers):
                    out.write(orjson.dumps(event) + b"\n")
        if path is None:
            parser.error("give an events file or --synthetic N")
        pauses = pauses_of(path)
    print(f"thresholds {gc.get_threshold()}")
    for generation, seconds in pauses.items():
        seconds.sort()
        if seconds:
            print(f"generation {generation}: {len(seconds)} collections, longest "
                  f"{1000 * seconds[-1]:.1f} ms, total {sum(seconds):.2f} s; the five longest "
                  f"{[round(1000 * s, 1) for s in seconds[-5:]]} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
