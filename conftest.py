"""Collection settings for the whole suite (tests and the doctests under src/), and the
compiled build that unit and integration tests share."""

from __future__ import annotations

import shutil
from importlib.util import find_spec
from pathlib import Path

import pytest

# Modules that need an optional extra are not collected (for their doctests) without it,
# so that `pytest -m "not integration"` runs on a plain `pip install anomon`.
_OPTIONAL = {
    "tests/support/querykit.py": ("promql_parser", "yaml"),
    "tests/support/payload_schemas.py": ("jsonschema",),
    "src/anomon/lab/evaluation/cdnow.py": ("lifetimes", "pandas"),
}

collect_ignore = [path for path, needs in _OPTIONAL.items()
                  if any(find_spec(module) is None for module in needs)]


@pytest.fixture(scope="session")
def compiled_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The work tree built with its core compiled (``bench/compiled.py``), once per session:
    a directory to run as ``PYTHONPATH``. Skips the test where there is no C compiler."""
    from tests.unit.conftest import bench_module

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("the compiled build needs a C compiler")
    built: Path = bench_module("compiled").build_compiled(tmp_path_factory.mktemp("compiled"))
    return built
