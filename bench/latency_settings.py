"""Event-to-alert latency of worker settings against each other, interleaved on Apache Kafka.

One broker is started and warmed up (a latency run at 70% of the rate); then each
round runs every configuration once at the offered rate, the order reversed
every other round, so that all of them see the same machine. A configuration
is a comma-separated list of worker settings (``commit_interval_ms=100``;
empty: the defaults). Per configuration the medians over the rounds are
printed, and with ``--write`` all runs are kept in ``latency_settings.json``
under ``--label``::

    python -m bench.latency_settings 14000 --rounds 4 \\
        --config commit_interval_ms=100,commit_encode_slice_ms=0 --config ""
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.end_to_end import latency
from bench.kept import add_arguments, configs_of, finish, label_of
from brokers import broker_named

HERE = Path(__file__).resolve().parent
OUT = HERE / "latency_settings.json"
MEDIANS = ("p50_ms", "p99_ms", "worker_cpu_share", "broker_cpu_share")
COLLECTOR = ("p999_ms", "max_ms", "worker_rss_mb", *(f"gc{g}_{what}" for g in range(3)
             for what in ("collections", "seconds", "over_50ms")))
"""Also given as medians where every run has them (a worker that times its collections)."""


def run(rate: float, seconds: float, rounds: int, configs: list[dict[str, str]],
        customers: int | None = None) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, broker_named("kafka") as broker:
        workdir = Path(tmp)
        (workdir / "models").mkdir()
        warm = latency(broker, 0.7 * rate, seconds, workdir)
        print(f"warm-up at {0.7 * rate:,.0f}/s: p50 {warm.get('p50_ms')} ms", flush=True)
        for r in range(rounds):
            for config in configs if r % 2 == 0 else configs[::-1]:
                got = latency(broker, rate, seconds, workdir, config, customers)
                got.update(round=r, config=label_of(config), load_average=os.getloadavg()[0])
                runs.append(got)
                print(f"round {r} {label_of(config):60} p50 {got.get('p50_ms'):>8} ms  "
                      f"p99 {got.get('p99_ms'):>8} ms  worker on a CPU "
                      f"{got['worker_cpu_share']:.2f}  collections (s): "
                      f"{[got.get(f'gc{g}_seconds') for g in range(3)]}", flush=True)
    medians: dict[str, dict[str, float]] = {}
    for config in configs:
        mine = [x for x in runs if x["config"] == label_of(config) and x.get("probes")]
        if mine:
            keys = [*MEDIANS, *(k for k in COLLECTOR if all(x.get(k) is not None for x in mine))]
            medians[label_of(config)] = {
                key: round(statistics.median(x[key] for x in mine), 3) for key in keys}
    return {"offered_per_s": rate, "seconds": seconds, "rounds": rounds,
            "customers": customers, "medians": medians, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rate", type=float, help="offered events/s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of one run")
    parser.add_argument("--customers", type=int,
                        help="customers in the history (default: one per 100 events: "
                        "each acts several times a second, and a commit merges their changes)")
    add_arguments(parser, OUT)
    args = parser.parse_args(argv)
    result = run(args.rate, args.seconds, args.rounds, configs_of(args), args.customers)
    return finish(args, OUT, result, "medians")


if __name__ == "__main__":
    raise SystemExit(main())
