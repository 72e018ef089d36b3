"""``anomon replay`` at a base revision against the work tree, on the same file, interleaved.

Generates the default synthetic history once, checks ``--base`` out in a
temporary worktree and replays the file ``--rounds`` times with each, base and
work tree alternating so that both see the same machine. The figure is replay's
own events/s (imports excluded). This version also runs compiled (its
``ANOMON_COMPILE=1`` build, ``setup.py``) and with ``--jobs 2`` (two
engines in two processes, each with half of the customers, as two workers
would run them): the gain of the second core. Medians and their ratios are
printed and, with ``--write``, added to ``bench/results.json``
(``replay_vs_base``) and ``bench/RESULTS.md``::

    python -m bench.replay_speed --base 460ef70 --rounds 3 --write
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.compiled import build_compiled
from bench.revisions import ROOT, checked_out, synthetic_file

HERE = ROOT / "bench"


def _replay(src: Path, cwd: Path, events: Path, out: Path, jobs: int = 1) -> float:
    """Replay's own events/s (from its ``--summary``)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    summary = out.with_suffix(".summary.json")
    extra = ["--jobs", str(jobs)] if jobs > 1 else []
    subprocess.run([sys.executable, "-m", "anomon", "replay", str(events), "--out", str(out),
                    "--summary", str(summary), *extra], check=True, env=env, cwd=cwd,
                   stdout=subprocess.DEVNULL)
    return float(json.loads(summary.read_text())["events_per_s"])


def measure(base_rev: str, rounds: int, customers: int, days: int,
            jobs: int = 1, compiled: bool = True) -> dict[str, Any]:
    """Interleaved rounds of base, this version, (``compiled``) this version's compiled build
    and (``jobs`` > 1) this version sharded."""
    with tempfile.TemporaryDirectory(prefix="anomon-replay-speed-") as tmp:
        work = Path(tmp)
        events = synthetic_file(work, customers, days)
        built = build_compiled(work / "compiled") if compiled else None
        rates: dict[str, list[float]] = {"base": [], "head": [], "compiled": [], "jobs": []}
        with checked_out(base_rev, work / "base") as base:
            for i in range(rounds):
                rates["base"].append(_replay(base / "src", base, events, work / f"b{i}.jsonl"))
                rates["head"].append(_replay(ROOT / "src", ROOT, events, work / f"h{i}.jsonl"))
                line = (f"round {i + 1}: base {rates['base'][-1]:,.0f}/s, "
                        f"head {rates['head'][-1]:,.0f}/s")
                if built is not None:
                    rates["compiled"].append(_replay(built, ROOT, events, work / f"c{i}.jsonl"))
                    line += f", head compiled {rates['compiled'][-1]:,.0f}/s"
                if jobs > 1:
                    rates["jobs"].append(_replay(ROOT / "src", ROOT, events,
                                                 work / f"j{i}.jsonl", jobs))
                    line += f", head --jobs {jobs} {rates['jobs'][-1]:,.0f}/s"
                print(line, file=sys.stderr)
    base_median, head_median = (statistics.median(rates[k]) for k in ("base", "head"))
    result = {"base": base_rev, "customers": customers, "days": days, "rounds": rounds,
              "base_per_s": rates["base"], "head_per_s": rates["head"],
              "base_median": round(base_median), "head_median": round(head_median),
              "ratio": round(head_median / base_median, 2),
              "load_average": round(os.getloadavg()[0], 2)}
    if compiled:
        compiled_median = statistics.median(rates["compiled"])
        result.update({"compiled_per_s": rates["compiled"],
                       "compiled_median": round(compiled_median),
                       "compiled_ratio": round(compiled_median / base_median, 2),
                       "compiled_vs_head": round(compiled_median / head_median, 2)})
    if jobs > 1:
        jobs_median = statistics.median(rates["jobs"])
        result.update({"jobs": jobs, "jobs_per_s": rates["jobs"],
                       "jobs_median": round(jobs_median),
                       "jobs_ratio": round(jobs_median / base_median, 2),
                       "cores": os.cpu_count()})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--jobs", type=int, default=2,
                        help="also this version with replay --jobs JOBS (1: not)")
    parser.add_argument("--no-compiled", action="store_true",
                        help="without this version's compiled build (ANOMON_COMPILE=1)")
    parser.add_argument("--write", action="store_true",
                        help="add to bench/results.json and re-render bench/RESULTS.md")
    args = parser.parse_args(argv)
    result = measure(args.base, args.rounds, args.customers, args.days, args.jobs,
                     compiled=not args.no_compiled)
    print(json.dumps(result, indent=2))
    if args.write:
        from bench.__main__ import add_result

        add_result("replay_vs_base", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
