"""One worker's and two workers' drains of worker settings against each other, on Apache Kafka.

One broker is started; one drain of one worker and one of two, not kept, warm
it up. Then each round drains the same 100,000 synthetic events with every
configuration, one worker and then two (:func:`bench.hot_path.workers_rate`),
the order of the configurations reversed every other round so that all of
them see the same machine. A configuration is a comma-separated list of worker
settings, as in :mod:`bench.latency_settings` (empty: the defaults). Per
configuration the medians over the rounds and each round's two / one are
printed, and with ``--write`` all runs are kept in ``drain_settings.json``
under ``--label``::

    python -m bench.drain_settings --rounds 5 --config "" --config producer_compression=lz4

``--kafka-jvm defaults`` starts the broker with the JVM's defaults instead of the
options of Kafka's start scripts (``brokers.apache_kafka.SCRIPT_JVM_OPTIONS``).

>>> summary([{"config": "defaults", "workers": w, "events_per_s": r, "broker_cpu_share": 0.3,
...           "cpu_us_per_event": 30.0} for w, r in ((1, 100), (2, 150), (1, 120), (2, 150))])
{'defaults': {'one_per_s': 110.0, 'two_per_s': 150.0, 'two_vs_one': 1.36, \
'two_vs_one_per_round': [1.5, 1.25], 'one_broker_cpu_share': 0.3, \
'two_broker_cpu_share': 0.3, 'one_cpu_us_per_event': 30.0}}
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.end_to_end import synthetic_events
from bench.hot_path import encoded, workers_rate
from bench.kept import add_arguments, configs_of, finish, label_of
from brokers import ApacheKafkaBroker
from brokers.apache_kafka import SCRIPT_JVM_OPTIONS

HERE = Path(__file__).resolve().parent
OUT = HERE / "drain_settings.json"
KEPT = ("events_per_s", "cpu_us_per_event", "broker_cpu_share", "broker_threads_share",
        "runqueue_wait_share", "load_average")


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per configuration: median rates of one and two workers, their ratio, the broker's share."""
    out: dict[str, dict[str, Any]] = {}
    for label in dict.fromkeys(r["config"] for r in runs):
        one = [r for r in runs if r["config"] == label and r["workers"] == 1]
        two = [r for r in runs if r["config"] == label and r["workers"] == 2]

        def median(rows: list[dict[str, Any]], key: str) -> float:
            return round(statistics.median(r[key] for r in rows), 2)

        out[label] = {
            "one_per_s": median(one, "events_per_s"), "two_per_s": median(two, "events_per_s"),
            "two_vs_one": round(median(two, "events_per_s") / median(one, "events_per_s"), 2),
            "two_vs_one_per_round": [round(b["events_per_s"] / a["events_per_s"], 2)
                                     for a, b in zip(one, two, strict=False)],
            "one_broker_cpu_share": median(one, "broker_cpu_share"),
            "two_broker_cpu_share": median(two, "broker_cpu_share"),
            "one_cpu_us_per_event": median(one, "cpu_us_per_event")}
    return out


def run(rounds: int, configs: list[dict[str, str]], events: int,
        kafka_jvm: str = "script") -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    jvm_options = SCRIPT_JVM_OPTIONS if kafka_jvm == "script" else ()
    with tempfile.TemporaryDirectory() as tmp, ApacheKafkaBroker(jvm_options=jvm_options) as broker:
        workdir = Path(tmp)
        (workdir / "models").mkdir()
        records = encoded(synthetic_events(events))
        for count in (1, 2):  # a warm-up, not kept: the broker's first clients and compiled code
            workers_rate(broker, records, count, workdir)
        for r in range(rounds):
            for config in configs if r % 2 == 0 else configs[::-1]:
                settings: dict[str, Any] = dict(config)
                for count in (1, 2):
                    got = workers_rate(broker, records, count, workdir, **settings)
                    row = {"round": r, "config": label_of(config), "workers": count,
                           **{k: got[k] for k in KEPT}}
                    runs.append(row)
                    print(f"round {r} {label_of(config):40} {count} worker(s) "
                          f"{got['events_per_s']:>7,}/s  {got['cpu_us_per_event']} us/event  "
                          f"broker on a CPU {got['broker_cpu_share']}", flush=True)
    return {"events": events, "rounds": rounds, "kafka_jvm": kafka_jvm, "summary": summary(runs),
            "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--kafka-jvm", choices=("script", "defaults"), default="script",
                        help="the broker's JVM options: those of Kafka's start scripts (default) "
                        "or the JVM's own")
    add_arguments(parser, OUT)
    args = parser.parse_args(argv)
    result = run(args.rounds, configs_of(args), args.events, args.kafka_jvm)
    return finish(args, OUT, result, "summary")


if __name__ == "__main__":
    raise SystemExit(main())
