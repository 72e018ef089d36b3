"""The import-layer contract in pyproject.toml holds, and breaks when a layer imports upward."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
    "lint-imports")

pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter (dev extra) not installed")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run([str(LINT), "--config", str(tree / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_layers_hold_on_the_tree() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "imported"), [
    ("core.engine", "anomon.kafka.topics"),
    ("core.features", "anomon.settings"),
    ("kafka.topics", "anomon.worker.stats"),
    ("worker.stats", "anomon.ops.tail"),
    ("core.features", "aiokafka"),
    ("replay", "faust"),
])
def test_an_upward_import_breaks_the_contract(tmp_path: Path, module: str,
                                              imported: str) -> None:
    tree = _copy(tmp_path)
    target = tree / "src" / "anomon" / (module.replace(".", "/") + ".py")
    target.write_text(target.read_text() + f"\nimport {imported}  # inserted by the test\n")
    result = _lint(tree)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout, result.stdout
    assert f"anomon.{module} -> {imported}" in result.stdout, result.stdout
