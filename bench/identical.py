"""Prove a change left detection untouched: replay alerts byte-identical to a base revision.

Generates the default synthetic history once, replays it with the code at
``--base`` (a git revision, checked out in a temporary worktree) and with the
work tree, and compares the alert files byte for byte::

    python -m bench.identical --base main~3

Exit 0 when identical, 1 otherwise (with the first differing line).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.revisions import ROOT, checked_out, synthetic_file


def _replay(src: Path, cwd: Path, events: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-m", "anomon", "replay", str(events), "--out", str(out)],
                   check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.identical", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="anomon-identical-") as tmp:
        work = Path(tmp)
        events = synthetic_file(work, args.customers, args.days)
        with checked_out(args.base, work / "base") as base:
            _replay(base / "src", base, events, work / "base.jsonl")
        _replay(ROOT / "src", ROOT, events, work / "head.jsonl")
        a, b = work / "base.jsonl", work / "head.jsonl"
        lines = sum(1 for _ in a.open("rb"))
        if a.read_bytes() == b.read_bytes():
            print(f"identical: {lines} alerts, sha256 {_digest(a)[:16]}")
            return 0
        for n, (x, y) in enumerate(zip(a.open("rb"), b.open("rb"), strict=False), 1):
            if x != y:
                print(f"differ at alert {n}:\n  base {x[:200]!r}\n  head {y[:200]!r}")
                break
        else:
            print(f"differ in length: base {lines}, head {sum(1 for _ in b.open('rb'))} alerts")
        return 1


if __name__ == "__main__":
    sys.exit(main())
