"""Benchmarks: ``python -m bench`` writes bench/RESULTS.md and bench/results.json."""

import sys
from pathlib import Path

# the real brokers and worker helpers the tests use (tests/support)
_SUPPORT = Path(__file__).resolve().parent.parent / "tests" / "support"
if str(_SUPPORT) not in sys.path:
    sys.path.insert(0, str(_SUPPORT))
