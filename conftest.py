"""Collection settings for the whole suite (tests and the doctests under src/)."""

from __future__ import annotations

from importlib.util import find_spec

# Modules that need an optional extra are not collected (for their doctests) without it,
# so that `pytest -m "not integration"` runs on a plain `pip install anomon`.
_OPTIONAL = {
    "tests/support/querykit.py": ("promql_parser", "yaml"),
    "tests/support/payload_schemas.py": ("jsonschema",),
    "src/anomon/lab/evaluation/cdnow.py": ("lifetimes", "pandas"),
}

collect_ignore = [path for path, needs in _OPTIONAL.items()
                  if any(find_spec(module) is None for module in needs)]
