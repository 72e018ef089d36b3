"""The sweep index at a million customers: what a round, a gauge update and ``/stats`` cost.

A worker's :class:`~anomon.worker.sweep.SweepIndex` holds every customer of
its partitions. Between batches the loop starts a sweep round every
``sweep_interval_s`` (5 s), ends it with the ``anomon_customers_tracked``
gauge, and answers ``/stats``; records wait while any of these runs. This
measures each, on ``--customers`` customers (1% due at the round), at a base
revision and at the work tree, in interleaved subprocesses:

* ``note_due_us``: noting one changed customer (once per customer and batch);
* ``round_start_ms``: finding the due customers;
* ``gauge_ms``: counting customers by tier and stage;
* ``stats_ms``: counting the customers held (``/stats``);
* ``resegment_longest_ms`` / ``resegment_total_ms``: the segments of
  ``--changed`` customers changed since the last round (each a real
  ``Engine.segment``): the longest time records wait for it, and its total;
* ``bytes_per_customer``: the index's memory (tracemalloc).

::

    python -m bench.sweep_index --base df128b8 --write   # into bench/results.json, RESULTS.md
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from anomon.core.timeutil import DAY
from bench.revisions import ROOT, checked_out

NOW = 400 * DAY


def measure(customers: int, changed: int) -> dict[str, Any]:
    """Every figure of the module docstring, for the ``anomon`` on ``sys.path``."""
    from anomon.core.engine import Engine
    from anomon.core.features import add_purchase
    from anomon.core.state import CustomerState
    from anomon.worker.sweep import SweepIndex
    from anomon.worker.sweeper import CHUNK_S

    engine = Engine()
    real = CustomerState.new("c", 0.0)
    for day in range(0, 300, 9):
        add_purchase(real, day * DAY, 40.0)

    def segment_of(customer_id: str, partition: int) -> tuple[str, str]:
        segment = engine.segment(real, NOW)
        return segment.tier, segment.stage

    held = [SimpleNamespace(customer_id=f"customer-{i:07d}", partition=i % 8, last_ts=NOW,
                            next_check_ts=NOW + (-DAY if i % 100 == 0 else (i % 90 + 1) * DAY))
            for i in range(customers)]
    tracemalloc.start()
    index = SweepIndex()
    for h in held:
        index.note(h, ("mid", "active"))  # type: ignore[arg-type]
    index_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    now = dict.fromkeys(range(8), NOW)
    parts = set(range(8))
    out: dict[str, Any] = {"customers": customers, "changed": changed,
                           "bytes_per_customer": round(index_bytes / customers)}

    def timed_ms(fn: Any) -> float:
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - t0) * 1e3)
        return round(statistics.median(runs), 2)

    due = index.due(now)
    assert len(due) == customers // 100, len(due)
    out["round_start_ms"] = timed_ms(lambda: index.due(now))
    out["gauge_ms"] = timed_ms(lambda: index.segments(parts))
    out["stats_ms"] = timed_ms(lambda: index.count(parts))
    moved = held[:changed]
    for h in moved:
        h.next_check_ts += DAY
    t0 = time.perf_counter()
    for h in moved:
        index.note_due(h)  # type: ignore[arg-type]
    out["note_due_us"] = round((time.perf_counter() - t0) / changed * 1e6, 3)
    chunked = "until" in inspect.signature(index.resegment).parameters
    longest = total = 0.0
    done = False
    while not done:  # chunks until the pass is done, or (before) one call
        t0 = time.perf_counter()
        if chunked:
            done = index.resegment(segment_of, until=t0 + CHUNK_S)
        else:
            index.resegment(segment_of)
            done = True
        took = time.perf_counter() - t0
        longest, total = max(longest, took), total + took
    assert not index.unsegmented
    out["resegment_longest_ms"] = round(longest * 1e3, 2)
    out["resegment_total_ms"] = round(total * 1e3, 1)
    return out


def _run(src: Path, customers: int, changed: int) -> dict[str, Any]:
    code = (f"import json, bench.sweep_index as b; "
            f"print(json.dumps(b.measure({customers}, {changed})))")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"})
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the revision to compare with")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=100_000,
                        help="customers changed since the last round (20,000 events/s for 5 s, "
                             "each a different customer)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true",
                        help="add to bench/results.json and re-render bench/RESULTS.md")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "head": []}
    with (tempfile.TemporaryDirectory(prefix="anomon-sweep-index-") as tmp,
          checked_out(args.base, Path(tmp) / "base") as base):
        for i in range(args.rounds):
            runs["base"].append(_run(base / "src", args.customers, args.changed))
            runs["head"].append(_run(ROOT / "src", args.customers, args.changed))
            print(f"round {i + 1}: base {runs['base'][-1]}\n         head {runs['head'][-1]}",
                  file=sys.stderr)
    keys = [k for k in runs["head"][0] if k not in ("customers", "changed")]
    medians = {side: {k: statistics.median(r[k] for r in rs) for k in keys}
               for side, rs in runs.items()}
    result = {"base": args.base, "customers": args.customers, "changed": args.changed,
              "rounds": args.rounds, "median": medians, "runs": runs}
    print(json.dumps(result["median"], indent=2))
    if args.write:
        from bench.__main__ import add_result

        add_result("sweep_index", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
