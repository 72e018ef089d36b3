"""Build hook: pure Python by default; ``ANOMON_COMPILE=1`` compiles the core's hot modules.

The pure core's per-event modules (features, detectors, population, policy,
engine) are type-hinted throughout and mypy-clean, so mypyc can compile them to
C extension modules that run the same code about 1.4x faster
(``docs/hot-path.md``, *The core compiled*). Everything else, and every
module in a default build, stays Python. A compiled module shadows its ``.py``
file, so editable installs for development stay pure: build a compiled tree
with ``make compiled``, an installed one with ``ANOMON_COMPILE=1 pip install .``
(needs a C compiler and the Python headers).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from setuptools import setup

COMPILED = (
    "anomon/core/ewstat.py",
    "anomon/core/features.py",
    "anomon/core/seen.py",
    "anomon/core/population.py",
    "anomon/core/segments.py",
    "anomon/core/policy.py",
    "anomon/core/detectors/base.py",
    "anomon/core/detectors/rhythm.py",
    "anomon/core/detectors/renewal.py",
    "anomon/core/detectors/drop_off.py",
    "anomon/core/detectors/churn_risk.py",
    "anomon/core/detectors/complaint_spike.py",
    "anomon/core/detectors/payment_arrears.py",
    "anomon/core/detectors/refund_abuse.py",
    "anomon/core/detectors/spend_anomaly.py",
    "anomon/core/engine.py",
)
"""The modules compiled, relative to ``src/``: the pure core's per-event path."""

# Libraries are not analysed (their types are Any to the compiled code): with them the
# type analysis takes minutes, and the build needs none of them installed.
MYPY_CONFIG = """\
[mypy]
python_version = 3.11
ignore_missing_imports = True
follow_imports = silent
[mypy-river.*,scipy.*,numpy.*,pandas.*,orjson.*,pydantic.*,pydantic_core.*]
follow_imports = skip
"""


def compiled_extensions() -> list[Any]:
    """mypyc's extension modules with ``ANOMON_COMPILE=1``, else none."""
    if os.environ.get("ANOMON_COMPILE", "0") != "1":
        return []
    from mypyc.build import mypycify

    config = Path(tempfile.mkdtemp(prefix="anomon-mypyc-")) / "mypy.ini"
    config.write_text(MYPY_CONFIG)
    paths = [f"src/{module}" for module in COMPILED]  # module names from src/: anomon.core...
    return mypycify(["--config-file", str(config), *paths], opt_level="3",
                    group_name="anomon_core")


setup(ext_modules=compiled_extensions())
