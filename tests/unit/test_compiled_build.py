"""The compiled build (``ANOMON_COMPILE=1``, ``setup.py``) runs the same code as the pure one.

The wheel is built from the work tree and unpacked (the session's ``compiled_build``,
shared with ``tests/integration/test_compiled_worker.py``); ``anomon replay`` of one
synthetic history then runs on each build, and the alerts must be the same,
byte for byte. About 40 seconds: a mypyc build and two replays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from anomon.lab.synthetic import SyntheticConfig, write_dataset

ROOT = Path(__file__).resolve().parents[2]


def _replay(pythonpath: Path, events: Path, out: Path) -> dict[str, object]:
    summary = out.with_suffix(".summary.json")
    subprocess.run([sys.executable, "-m", "anomon", "replay", str(events), "--out", str(out),
                    "--summary", str(summary)], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(pythonpath)})
    result: dict[str, object] = json.loads(summary.read_text())
    return result


def test_compiled_core_alerts_as_the_python_one(compiled_build: Path, tmp_path: Path) -> None:
    built = compiled_build
    assert sorted(p.name.split(".")[0] for p in (built / "anomon" / "core").glob("*.so")) == [
        "engine", "ewstat", "features", "policy", "population", "seen", "segments"]
    events, truth = tmp_path / "events.jsonl.gz", tmp_path / "truth.jsonl"
    write_dataset(SyntheticConfig(customers=400, days=365, seed=11), events, truth)

    pure = _replay(ROOT / "src", events, tmp_path / "pure.jsonl")
    compiled = _replay(built, events, tmp_path / "compiled.jsonl")

    assert (pure["core"], compiled["core"]) == ("python", "compiled")
    alerts = (tmp_path / "pure.jsonl").read_bytes()
    assert alerts.count(b"\n") > 50  # a history with changes in it: many alerts to compare
    assert (tmp_path / "compiled.jsonl").read_bytes() == alerts
    assert compiled["processed"] == pure["processed"]
