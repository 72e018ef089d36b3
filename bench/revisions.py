"""What the revision comparisons share: one synthetic file, and a revision checked out beside."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def synthetic_file(workdir: Path, customers: int, days: int) -> Path:
    """``anomon generate`` with the work tree's code; the events file."""
    events, truth = workdir / "events.jsonl.gz", workdir / "truth.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-m", "anomon", "generate", "--events", str(events),
                    "--truth", str(truth), "--customers", str(customers),
                    "--days", str(days)], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return events


@contextmanager
def checked_out(revision: str, path: Path) -> Iterator[Path]:
    """``revision`` in a temporary git worktree at ``path``, removed afterwards."""
    subprocess.run(["git", "worktree", "add", "--detach", str(path), revision],
                   check=True, cwd=ROOT, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT,
                       capture_output=True)
