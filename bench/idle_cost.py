"""What an idle worker costs, and how soon it handles the first records after a quiet spell.

Per broker (Apache Kafka and Tansu by default), ``--rounds`` interleaved rounds of
each configuration of worker settings (as in :mod:`bench.latency_settings`;
empty: the defaults):

* **idle**: a worker of a fresh group, ready and without records, is watched for
  ``--seconds``: its CPU seconds per second and its broker's (the broker's own idle
  share is measured once at the end, with no worker);
* **sparse**: a latency run with nothing but probes (three severe complaints of
  a new customer, a complaint spike), one every ``--probe-every`` seconds: each
  probe finds the worker after a quiet spell. Event-to-alert p50 and max
  (:func:`bench.end_to_end.latency`).

Medians per broker and configuration are printed; with ``--write`` every run is
kept in ``idle_cost.json`` under ``--label``::

    python -m bench.idle_cost --config "" --config fetch_idle_wait_ms=0

>>> share(2.0, 1.5, 10.0)
0.05
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import bench.end_to_end as e2e
from bench.end_to_end import cpu_seconds
from bench.kept import add_arguments, configs_of, finish, label_of
from brokers import broker_named
from workerkit import Names, WorkerProcess, worker_env

HERE = Path(__file__).resolve().parent
OUT = HERE / "idle_cost.json"
SETTLE_S = 3.0
"""After ready: the worker's start-up work (and its first quiet second) is not measured."""


def share(after: float, before: float, seconds: float) -> float:
    """CPU seconds per second between two readings."""
    return round((after - before) / seconds, 3)


def idle(broker: Any, workdir: Path, seconds: float, config: dict[str, str]) -> dict[str, Any]:
    """CPU shares of an idle worker and of its broker over ``seconds``."""
    names = Names()
    worker = WorkerProcess(worker_env(broker, names, workdir, log_level="WARNING", **config),
                           workdir / f"idle-{names.suffix}.log", HERE.parent)
    try:
        worker.wait_ready(90)
        time.sleep(SETTLE_S)
        pid = getattr(broker, "pid", None)
        broker0, worker0, began = cpu_seconds(pid), cpu_seconds(worker.pid), time.monotonic()
        time.sleep(seconds)
        took = time.monotonic() - began
        return {"worker_cpu_share": share(cpu_seconds(worker.pid), worker0, took),
                "broker_cpu_share": share(cpu_seconds(pid), broker0, took)}
    finally:
        worker.stop()


def sparse(broker: Any, workdir: Path, seconds: float, config: dict[str, str],
           probe_every_s: float) -> dict[str, Any]:
    """Event-to-alert latency of probes alone, each after a quiet spell."""
    every = e2e.PROBE_EVERY_S
    e2e.PROBE_EVERY_S = probe_every_s
    try:
        got = e2e.latency(broker, 1e-3, seconds, workdir, settings=config, history=[])
    finally:
        e2e.PROBE_EVERY_S = every
    return {k: got.get(k) for k in ("probes", "p50_ms", "max_ms", "worker_cpu_share")}


def run(brokers: list[str], rounds: int, configs: list[dict[str, str]], seconds: float,
        probe_every_s: float) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    alone: dict[str, float] = {}
    for name in brokers:
        with tempfile.TemporaryDirectory() as tmp, broker_named(name) as broker:
            workdir = Path(tmp)
            (workdir / "models").mkdir()
            for r in range(rounds):
                for config in configs if r % 2 == 0 else configs[::-1]:
                    row = {"broker": name, "round": r, "config": label_of(config),
                           **idle(broker, workdir, seconds, config),
                           "sparse": sparse(broker, workdir, 3 * seconds, config,
                                            probe_every_s)}
                    runs.append(row)
                    print(json.dumps(row), flush=True)
            pid = getattr(broker, "pid", None)
            before = cpu_seconds(pid)
            time.sleep(seconds)
            alone[name] = share(cpu_seconds(pid), before, seconds)
    medians: dict[str, dict[str, Any]] = {}
    for name in brokers:
        for config in configs:
            mine = [x for x in runs if x["broker"] == name and x["config"] == label_of(config)]
            medians[f"{name} {label_of(config)}"] = {
                "worker_cpu_share": statistics.median(x["worker_cpu_share"] for x in mine),
                "broker_cpu_share": statistics.median(x["broker_cpu_share"] for x in mine),
                "broker_alone": alone[name],
                "first_records_p50_ms": statistics.median(x["sparse"]["p50_ms"] for x in mine),
                "first_records_max_ms": max(x["sparse"]["max_ms"] for x in mine)}
    return {"rounds": rounds, "seconds": seconds, "probe_every_s": probe_every_s,
            "medians": medians, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", nargs="*", default=["kafka", "tansu"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of an idle run")
    parser.add_argument("--probe-every", type=float, default=2.5,
                        help="seconds between the probes of a sparse run")
    add_arguments(parser, OUT)
    args = parser.parse_args(argv)
    result = run(args.brokers, args.rounds, configs_of(args), args.seconds, args.probe_every)
    return finish(args, OUT, result, "medians")


if __name__ == "__main__":
    raise SystemExit(main())
