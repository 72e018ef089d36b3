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
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.days, args.runs, args.memory = 100, 120, 1, [2000]
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
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
