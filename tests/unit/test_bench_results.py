"""``python -m bench`` keeps the results other bench commands added to ``results.json``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.conftest import bench_module

bench_main = bench_module("__main__")


def test_entries_this_run_does_not_measure_are_kept(tmp_path: Path) -> None:
    old = tmp_path / "results.json"
    old.write_text(json.dumps({"replay": {"events_per_s": 1.0}, "replay_vs_base": {"ratio": 1.2},
                               "hot_path_later_machine": {"note": "kept"}}))
    kept = bench_main.kept_entries(old, {"replay": {"events_per_s": 2.0}, "memory": []})
    assert kept == {"replay_vs_base": {"ratio": 1.2}, "hot_path_later_machine": {"note": "kept"}}


def test_a_missing_or_unreadable_file_keeps_nothing(tmp_path: Path) -> None:
    assert bench_main.kept_entries(tmp_path / "absent.json", {}) == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert bench_main.kept_entries(broken, {}) == {}
