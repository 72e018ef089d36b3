"""Run the benchmark and write ``bench/RESULTS.md`` and ``bench/results.json``.

``python -m bench --help`` for the options. Figures are medians of repeated runs;
on a shared machine compare ratios rather than absolute numbers. Entries of
``results.json`` that other commands add (``python -m bench.replay_speed --write``:
``replay_vs_base``) and that this run does not measure are kept.
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


def kept_entries(path: Path, results: dict[str, Any]) -> dict[str, Any]:
    """The entries of the results file at ``path`` that ``results`` does not replace.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     old = Path(tmp) / "results.json"
    ...     _ = old.write_text('{"replay": 1, "replay_vs_base": 2}')
    ...     kept_entries(old, {"replay": 3}), kept_entries(Path(tmp) / "none.json", {})
    ({'replay_vs_base': 2}, {})
    """
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in old.items() if k not in results} if isinstance(old, dict) else {}


def add_result(key: str, value: Any) -> None:
    """Set ``key`` of ``bench/results.json`` to ``value`` and re-render ``bench/RESULTS.md``
    (what the other bench commands measure)."""
    path = HERE / "results.json"
    results = json.loads(path.read_text())
    results[key] = value
    path.write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "RESULTS.md").write_text(render(results))


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
    parser.add_argument("--e2e-events", type=int, default=100_000,
                        help="events for replay vs one and two workers (100000)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds of replay, one worker, two workers (2)")
    parser.add_argument("--kill-runs", type=int, default=20,
                        help="exactly-once SIGKILL runs on Apache Kafka (20)")
    parser.add_argument("--recovery-customers", type=int, default=1_000_000,
                        help="customers recovered from the changelog (1000000; 0: skip)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="length of the latency run at 70%% of the sustained rate")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.days, args.runs, args.memory = 100, 120, 1, [2000]
        args.brokers, args.e2e_events, args.rounds = args.brokers[:1], 5000, 1
        args.kill_runs, args.recovery_customers, args.seconds = 1, 0, 5.0
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
    if args.brokers:
        from bench.hot_path import run as hot_path

        results["hot_path"] = hot_path(args.rounds, args.e2e_events, args.brokers,
                                       args.kill_runs, args.seconds, args.recovery_customers)
    print(json.dumps(results, indent=2))
    if not args.no_write and not args.quick:
        results = {**kept_entries(HERE / "results.json", results), **results}
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
    if r.get("replay_vs_base"):
        b = r["replay_vs_base"]
        lines += ["", "## `anomon replay` against a base revision (`python -m bench.replay_speed`)",
                  "", f"The same synthetic file ({b['customers']:,} customers, {b['days']} days), "
                  f"{b['rounds']} interleaved rounds; replay's own events/s (imports excluded). "
                  f"Load average at the end: {b['load_average']}.", "",
                  "| revision | events/s per round | median |", "| --- | --- | --- |",
                  f"| base `{b['base']}` | {', '.join(f'{x:,.0f}' for x in b['base_per_s'])} | "
                  f"{b['base_median']:,} |",
                  f"| this version | {', '.join(f'{x:,.0f}' for x in b['head_per_s'])} | "
                  f"{b['head_median']:,} |"]
        if b.get("compiled_median"):
            lines += [f"| this version, compiled (`ANOMON_COMPILE=1`) | "
                      f"{', '.join(f'{x:,.0f}' for x in b['compiled_per_s'])} | "
                      f"{b['compiled_median']:,} |"]
        if b.get("jobs"):
            lines += [f"| this version, `--jobs {b['jobs']}` | "
                      f"{', '.join(f'{x:,.0f}' for x in b['jobs_per_s'])} | "
                      f"{b['jobs_median']:,} |"]
        lines += ["", f"This version / base: **{b['ratio']}** (one engine)."]
        if b.get("compiled_median"):
            lines += ["", f"Compiled / base: **{b['compiled_ratio']}** (one engine; "
                      f"{b['compiled_vs_head']}x this version as Python, the same alerts: "
                      "`tests/unit/test_compiled_build.py`)."]
        if b.get("jobs"):
            lines += ["", f"With `--jobs {b['jobs']}` / base: **{b['jobs_ratio']}** "
                      f"({b['jobs']} engines on {b['cores']} cores, each with a share of the "
                      f"customers, as {b['jobs']} workers would run them; the alerts are close "
                      "to one engine's, not the same)."]
    if r.get("hot_path"):
        lines += render_hot_path(r["hot_path"])
    if r.get("hot_path_compiled"):
        lines += render_hot_path(r["hot_path_compiled"], title=(
            "The same with the core compiled (`python -m bench.compiled DIR`, then "
            "`PYTHONPATH=DIR python -m bench.hot_path`)"))
    if r.get("worker_at_scale"):
        lines += render_worker_at_scale(r["worker_at_scale"])
    if r.get("sweep_index"):
        lines += render_sweep_index(r["sweep_index"])
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


def _broker_share(run: dict[str, Any]) -> str:
    """``0.45 (0.12)``: the broker's CPU share in a run, its compiler's in brackets."""
    if "broker_cpu_share" not in run:
        return "-"
    compiler = run.get("broker_threads_share", {}).get("compiler")
    return f"{run['broker_cpu_share']}" + (f" ({compiler})" if compiler is not None else "")


def render_hot_path(h: dict[str, Any], title: str = "The worker against the engine alone "
                    "(`python -m bench.hot_path`)") -> list[str]:
    """The tables of :mod:`bench.hot_path`."""
    lines = ["", f"## {title}", "",
             f"{h['events']:,} synthetic events on {h['partitions']} partitions; per broker, "
             f"{h['rounds']} interleaved rounds of `anomon replay` (the engine alone, file "
             "order), one worker, two workers of one group. Load average: the machine's, "
             "1 minute, at the end of each run (2 cores, shared).", "",
             "| broker | run | replay events/s | one worker events/s | CPU us/event | "
             "waiting for a CPU | broker on a CPU (compiler) | two workers events/s | "
             "waiting for a CPU | broker on a CPU (compiler) | load average |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, b in h["brokers"].items():
        for i, (rep, one, two) in enumerate(zip(b["replay"], b["one"], b["two"], strict=True)):
            lines.append(f"| {name} | {i + 1} | {rep['events_per_s']:,.0f} | "
                         f"{one['events_per_s']:,} | {one['cpu_us_per_event']} | "
                         f"{one.get('runqueue_wait_share', '-')} | {_broker_share(one)} | "
                         f"{two['events_per_s']:,} | "
                         f"{two.get('runqueue_wait_share', '-')} | {_broker_share(two)} | "
                         f"{one['load_average']:.1f} / {two['load_average']:.1f} |")
    lines += ["", "*Waiting for a CPU*: seconds the worker processes were runnable but not "
              "running, per second of the run, summed over the workers "
              "(`/proc/PID/schedstat`): the share of the machine other processes took from "
              "them. *Broker on a CPU*: its CPU seconds per second of the run; in brackets, "
              "those of its JVM's compiler threads (a fresh broker's JIT compiles for "
              "minutes; Tansu is native: no figure)."]
    lines += ["", "| broker | one worker / replay | two workers / one | one worker on the "
              "latency run's events (events/s, customers) | latency at 70% "
              "(events/s) | load share | p50 ms | p99 ms | worker on CPU / waiting | load "
              "average before / after |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, b in h["brokers"].items():
        s, lat = b["summary"], b["latency_at_70pct"]
        sustained = lat.get("sustained")
        on_events = (f"{sustained['events_per_s']:,.0f} ({sustained['customers']:,})"
                     if sustained else "-")
        lines.append(f"| {name} | {s['one_vs_replay']} | {s['two_vs_one']} | {on_events} | "
                     f"{lat['offered_per_s']:,.0f} | {lat.get('load_share', '-')} | "
                     f"{lat.get('p50_ms', '-')} | "
                     f"{lat.get('p99_ms', '-')} | {lat.get('worker_cpu_share', '-')} / "
                     f"{lat.get('worker_runqueue_wait_share', '-')} | "
                     f"{lat.get('load_average')} |")
    lines += ["", "*Latency at 70%*: a latency run draws its events from a history sized to "
              "them (rate x seconds), with more customers than the 100,000 events above, "
              "and one worker sustains less on them; it is offered 70% of what one worker "
              "sustains on those events (`--latency-at-70` redoes only this). A '-' in that "
              "column: 70% of the rate above, as measured before. The machine's speed "
              "drifts by up to 1.5x within minutes, so drains and latency runs alternate: "
              "each run is offered 70% of the drain before it, and its *load share* is "
              "that over the mean of the drains before and after it; medians of the rounds "
              "below."]
    rounds = [(name, r) for name, b in h["brokers"].items()
              for r in b["latency_at_70pct"].get("rounds", [])]
    if rounds:
        lines += ["", "| broker | offered events/s | drains before / after (events/s) | "
                  "load share | p50 ms | p99 ms | worker on CPU / waiting | broker on CPU |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {name} | {r['offered_per_s']:,.0f} | "
                  f"{' / '.join(f'{x:,}' for x in r['sustained_before_after'])} | "
                  f"{r['load_share']} | {r.get('p50_ms', '-')} | {r.get('p99_ms', '-')} | "
                  f"{r.get('worker_cpu_share', '-')} / "
                  f"{r.get('worker_runqueue_wait_share', '-')} | "
                  f"{r.get('broker_cpu_share', '-')} |" for name, r in rounds]
    more = [(name, x) for name, b in h["brokers"].items() for x in b.get("latency_more", [])]
    if more:
        lines += ["", "Latency at lower offered loads (`python -m bench.hot_path --latency-only`, "
                  "run after the above):", "",
                  "| broker | offered events/s | probes | p50 ms | p99 ms | worker on CPU / "
                  "waiting | broker / load generator on CPU | load average before / after |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {name} | {x['offered_per_s']:,.0f} | {x['probes']} | "
                  f"{x.get('p50_ms', '-')} | {x.get('p99_ms', '-')} | "
                  f"{x.get('worker_cpu_share', '-')} / {x.get('worker_runqueue_wait_share', '-')}"
                  f" | {x.get('broker_cpu_share', '-')} / {x.get('load_generator_cpu_share', '-')}"
                  f" | {x.get('load_average')} |" for name, x in more]
        lines += ["", "*Broker / load generator on CPU*: CPU seconds per second of the run of "
                  "the broker and of the process that sends the load and reads the alerts, "
                  "on the same 2 cores as the worker."]
    for name, b in h["brokers"].items():
        kills = b.get("exactly_once_kill_runs")
        if kills:
            lines += ["", f"Exactly once on {name}, {kills['runs']} runs in which one of two "
                      "workers is killed mid-stream (SIGKILL), read back `read_committed`: "
                      f"{kills['missing_alerts']} missing alerts, {kills['duplicate_alerts']} "
                      f"duplicate alerts, {kills['state_problems']} customers whose state "
                      "misses or double-counts an event."]
        rec = b.get("recovery")
        if rec:
            lines += ["", f"Recovery of {rec['customers']:,} customers from the changelog "
                      f"({rec.get('state_bytes_per_customer')} state bytes each; worker "
                      f"with no customers: {rec.get('empty_worker_rss_mib')} MiB):", "",
                      "| store | seconds to ready | RSS MiB | RSS bytes per customer | "
                      "restart s |", "| --- | --- | --- | --- | --- |"]
            for store in ("memory", "rocksdb"):
                if store in rec:
                    x = rec[store]
                    lines.append(f"| {store} | {x['recovery_s']} | {x['rss_mib']} | "
                                 f"{x['rss_bytes_per_customer']} | {x.get('restart_s', '-')} |")
    return lines


def render_worker_at_scale(runs: dict[str, Any]) -> list[str]:
    """``bench.worker_at_scale`` runs, one row per revision and run."""
    lines = ["", "## One worker by the customers it holds (`python -m bench.worker_at_scale`)", "",
             "Per run, interleaved rounds of `anomon replay`, one worker of a base revision "
             "and one of this version on the same events; then event-to-alert latency at a "
             "fixed offered rate, base and this version interleaved. Medians.", "",
             "| broker | customers | events | revision | one worker events/s | / replay "
             "| CPU us/event | latency at (events/s) | p50 ms | p99 ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for run in runs.values():
        s = run["summary"]
        for side, name in (("base", f"base `{run['base']}`"), ("head", "this version")):
            x = s[side]
            lines.append(
                f"| {run['broker']} | {run['customers']:,} | {run['events']:,} | {name} | "
                f"{x['one_worker_per_s']:,.0f} | {x['one_vs_replay']} | {x['cpu_us_per_event']} "
                f"| {run['rate']:,.0f} | {x['latency_p50_ms']:.0f} | {x['latency_p99_ms']:.0f} |")
    return lines


def render_sweep_index(s: dict[str, Any]) -> list[str]:
    """``bench.sweep_index``: what a worker's sweep bookkeeping costs at many customers."""
    b, h = s["median"]["base"], s["median"]["head"]
    rows = [("a round's start: who is due", "round_start_ms", "ms"),
            ("the customer gauge at a round's end", "gauge_ms", "ms"),
            ("`/stats`: customers held", "stats_ms", "ms"),
            ("segments of the changed customers: longest wait of the records",
             "resegment_longest_ms", "ms"),
            ("segments of the changed customers: in all", "resegment_total_ms", "ms"),
            ("noting a changed customer (its check moved)", "note_due_us", "us"),
            ("index memory per customer", "bytes_per_customer", "bytes")]
    lines = ["", "## The sweep index at many customers (`python -m bench.sweep_index`)", "",
             f"{s['customers']:,} customers, 1% of them due, {s['changed']:,} changed since "
             f"the last round; medians of {s['rounds']} interleaved rounds.", "",
             f"| | base `{s['base']}` | this version |", "| --- | --- | --- |"]
    lines += [f"| {label} | {b[k]} {unit} | {h[k]} {unit} |" for label, k, unit in rows]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
