"""One worker holding many customers, at a base revision and at the work tree, interleaved.

``bench.hot_path`` runs 100,000 events of 1,000 customers: every customer is
in each commit many times over. A worker in production holds far more
customers than it sees events between two commits, and what it does per
customer held (the sweep's bookkeeping, the ``/stats`` count, one state
written per changed customer) shows only there. This runs ``--events`` events
of ``--customers`` customers on one broker, per round: ``anomon replay`` (the
engine alone), one worker of the base revision and one of the work tree; then
event-to-alert latency at ``--rate`` events/s (the same for both, histories of
``--customers`` customers, or more where the run needs more events), base and work
tree, interleaved, each first in every other round::

    python -m bench.worker_at_scale --base df128b8 --write   # into bench/results.json, RESULTS.md
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

import orjson

from bench.end_to_end import history_customers, latency, latency_events, synthetic_events
from bench.hot_path import encoded, replay, workers_rate
from bench.revisions import ROOT, checked_out
from brokers import broker_named


def _order(round_: int) -> tuple[str, str]:
    """Base first in even rounds, this version first in odd ones: neither always runs on a
    machine the other has just warmed or loaded."""
    return ("base", "head") if round_ % 2 == 0 else ("head", "base")


def run(base_rev: str, broker_name: str, events: int, customers: int, rounds: int,
        rate: float, seconds: float) -> dict[str, Any]:
    """Every figure of the module docstring."""
    evs = synthetic_events(events, customers)
    out: dict[str, Any] = {"base": base_rev, "broker": broker_name, "events": events,
                           "customers": customers, "rounds": rounds, "cores": os.cpu_count(),
                           "replay": [], "one": {"base": [], "head": []},
                           "latency": {"base": [], "head": []}}
    with (tempfile.TemporaryDirectory(prefix="anomon-scale-") as tmp,
          checked_out(base_rev, Path(tmp) / "base") as base, broker_named(broker_name) as broker):
        workdir = Path(tmp)
        (workdir / "models").mkdir()
        path = workdir / "events.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(e) for e in evs) + b"\n")
        records = encoded(evs)
        sources = {"base": base / "src", "head": ROOT / "src"}
        workers_rate(broker, records, 1, workdir)  # warm-up, not kept
        for i in range(rounds):
            out["replay"].append(replay(path)["events_per_s"])
            for side in _order(i):
                out["one"][side].append(workers_rate(broker, records, 1, workdir,
                                                     source=sources[side]))
            print(f"round {i + 1}: replay {out['replay'][-1]:,.0f}/s, one worker: base "
                  f"{out['one']['base'][-1]['events_per_s']:,}/s, head "
                  f"{out['one']['head'][-1]['events_per_s']:,}/s", file=sys.stderr)
        # histories of the run's customers, or of as many as the latency run's events need
        out["latency_customers"] = history_customers(latency_events(rate, seconds), customers)
        for i in range(rounds):
            for side in _order(i):
                lat = latency(broker, rate, seconds, workdir,
                              customers=out["latency_customers"], source=sources[side])
                out["latency"][side].append(lat)
                print(f"latency round {i + 1} {side}: {lat}", file=sys.stderr)
    summary: dict[str, Any] = {"replay_per_s": statistics.median(out["replay"])}
    for side in ("base", "head"):
        one = statistics.median(r["events_per_s"] for r in out["one"][side])
        summary[side] = {
            "one_worker_per_s": one,
            "one_vs_replay": round(one / summary["replay_per_s"], 2),
            "cpu_us_per_event": statistics.median(r["cpu_us_per_event"]
                                                  for r in out["one"][side]),
            "latency_p50_ms": statistics.median(r["p50_ms"] for r in out["latency"][side]),
            "latency_p99_ms": statistics.median(r["p99_ms"] for r in out["latency"][side]),
            "latency_max_ms": statistics.median(r["max_ms"] for r in out["latency"][side]),
        }
    out["rate"] = rate
    out["summary"] = summary
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_at_scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the revision to compare with")
    parser.add_argument("--broker", default="tansu", choices=["tansu", "kafka"])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--customers", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rate", type=float, default=15_000.0,
                        help="offered events/s of the latency runs")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of a latency run")
    parser.add_argument("--write", action="store_true",
                        help="add to bench/results.json (one entry per broker and customers) and "
                             "re-render bench/RESULTS.md")
    args = parser.parse_args(argv)
    result = run(args.base, args.broker, args.events, args.customers, args.rounds, args.rate,
                 args.seconds)
    print(json.dumps(result["summary"], indent=2))
    if args.write:
        from bench.__main__ import HERE, add_result

        results = json.loads((HERE / "results.json").read_text())
        runs = results.get("worker_at_scale", {})
        runs[f"{args.broker} {args.customers}"] = result
        add_result("worker_at_scale", runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
