"""Run the benchmark and write ``bench/RESULTS.md`` and ``bench/results.json``.

``python -m bench --help`` for the options. Figures are medians of repeated runs;
on a shared machine compare ratios rather than absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGES = ("anomon", "river", "faust-streaming", "aiokafka", "pydantic", "orjson", "scipy")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "-"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "packages": versions}


def generate(workdir: Path, customers: int, days: int) -> tuple[Path, int]:
    events = workdir / "events.jsonl"
    truth = workdir / "truth.jsonl"
    subprocess.run([sys.executable, "-m", "anomon", "generate", "--events", str(events),
                    "--truth", str(truth), "--customers", str(customers), "--days", str(days)],
                   check=True, capture_output=True)
    with events.open("rb") as fh:
        count = sum(1 for _ in fh)
    return events, count


def replay_rate(events: Path, count: int, runs: int) -> dict[str, Any]:
    """Whole-process ``anomon replay`` wall time, median of ``runs``."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "anomon", "replay", str(events), "--out",
                            str(Path(tmp) / "alerts.jsonl")], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"events": count, "runs": runs, "median_s": round(med, 3),
            "events_per_s": round(count / med, 1), "all_s": [round(t, 3) for t in times]}


def memory(customers: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.memory", str(customers)], check=True,
                         capture_output=True, text=True, cwd=HERE.parent)
    return dict(json.loads(out.stdout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--customers", type=int, default=1000,
                        help="synthetic customers for the throughput file (1000: ~100k events)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=3, help="repetitions for medians (3)")
    parser.add_argument("--memory", type=int, nargs="*", default=[100_000, 1_000_000],
                        help="customer counts for the memory probe (100000 1000000)")
    parser.add_argument("--brokers", nargs="*", default=["tansu", "kafka"],
                        help="brokers for the end-to-end runs (tansu kafka; none: skip)")
    parser.add_argument("--e2e-events", type=int, default=50_000,
                        help="events for the sustained end-to-end rate (50000)")
    parser.add_argument("--rates", type=float, nargs="*", default=[1000.0, 5000.0],
                        help="offered loads for the latency runs, events/s (1000 5000); "
                             "70%% of the sustained rate is always run, higher ones are not")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.days, args.runs, args.memory = 100, 120, 1, [2000]
        args.brokers, args.e2e_events, args.rates = args.brokers[:1], 2000, [200.0]
    from bench.stages import stage_costs

    results: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as tmp:
        events, count = generate(Path(tmp), args.customers, args.days)
        print(f"synthetic file: {count:,} events", file=sys.stderr)
        results["replay"] = replay_rate(events, count, args.runs)
        print(f"replay: {results['replay']['events_per_s']:,.0f} events/s", file=sys.stderr)
        lines = events.read_bytes().splitlines()
        results["stages_us_per_event"] = {k: round(v, 2) for k, v in stage_costs(lines).items()}
    results["memory"] = [memory(n) for n in args.memory]
    from bench.end_to_end import run as end_to_end

    results["end_to_end"] = []
    for name in args.brokers:
        e2e = end_to_end(name, args.e2e_events, args.rates, 5.0 if args.quick else 20.0)
        results["end_to_end"].append(e2e)
        rate = e2e["sustained"]["events_per_s"]
        print(f"end to end on {name}: {rate:,.0f} events/s; "
              f"{rate / results['replay']['events_per_s']:.2f} of the pure engine", file=sys.stderr)
    print(json.dumps(results, indent=2))
    if not args.no_write and not args.quick:
        (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (HERE / "RESULTS.md").write_text(render(results))
    return 0


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Benchmark results", "",
        f"Measured {r['date']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + ".", "",
        "Reproduce: `make bench` (or `python -m bench`). Figures are medians.", "",
        "## Pure engine (`anomon replay`, whole process, one core)", "",
        "| events | median s | events/s | runs |", "| --- | --- | --- | --- |",
        f"| {r['replay']['events']:,} | {r['replay']['median_s']} | "
        f"{r['replay']['events_per_s']:,.0f} | {r['replay']['all_s']} |", "",
        "## Cost per stage (microseconds per input event)", "",
        "| stage | us/event |", "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in r["stages_us_per_event"].items()]
    lines += ["", "## Memory per tracked customer", "",
              "| customers | state bytes | RSS bytes per customer | peak RSS MiB |",
              "| --- | --- | --- | --- |"]
    lines += [f"| {x['customers']:,} | {x['state_bytes_per_customer']} | "
              f"{x['rss_bytes_per_customer']} | {x['peak_rss_mib']} |" for x in r["memory"]]
    if r.get("end_to_end"):
        engine = r["replay"]["events_per_s"]
        lines += ["", "## End to end, one worker (`python -m bench.end_to_end`)", "",
                  "| broker | events | events/s | / pure engine | ready after s |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {e['broker']} | {e['sustained']['events']:,} | "
                  f"{e['sustained']['events_per_s']:,} | "
                  f"{e['sustained']['events_per_s'] / engine:.2f} | "
                  f"{e['sustained']['ready_after_s']} |" for e in r["end_to_end"]]
        lines += ["", "Event-to-alert latency (probe complaint spikes among synthetic traffic):",
                  "", "| broker | offered events/s | probes | p50 ms | p99 ms | p99.9 ms |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {e['broker']} | {x['offered_per_s']:,.0f} | {x['probes']} | "
                  f"{x.get('p50_ms', '-')} | {x.get('p99_ms', '-')} | {x.get('p999_ms', '-')} |"
                  for e in r["end_to_end"] for x in e["latency"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
