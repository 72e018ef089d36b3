"""How the core was built: compiled by mypyc (an ``ANOMON_COMPILE=1`` build, see
``setup.py``) or run as Python. The same code either way; only its speed differs.

>>> core_build() in ("compiled", "python")
True
"""

from __future__ import annotations

from importlib.util import find_spec


def core_build() -> str:
    """``compiled`` when the engine is a compiled extension module, else ``python``.

    Looks the module up without importing it (the engine's imports take a second).
    """
    spec = find_spec("anomon.core.engine")
    origin = "" if spec is None or spec.origin is None else spec.origin
    return "python" if origin.endswith(".py") else "compiled"
