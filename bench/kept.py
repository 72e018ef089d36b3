"""Worker settings compared: configurations from the command line, runs kept in a JSON file.

A configuration is a comma-separated list of worker settings (``--config
commit_interval_ms=100``; empty: the defaults). With ``--write`` a bench's
result is kept in its JSON file under ``--label``, with the commit and the
machine it ran on.

>>> parse_config("commit_interval_ms=100, commit_encode_slice_ms=0")
{'commit_interval_ms': '100', 'commit_encode_slice_ms': '0'}
>>> parse_config(""), label_of({})
({}, 'defaults')
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any


def parse_config(text: str) -> dict[str, str]:
    """``key=value`` pairs, comma-separated, into worker settings."""
    pairs = [part.strip() for part in text.split(",") if part.strip()]
    return dict(pair.split("=", 1) for pair in pairs)


def label_of(config: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in config.items()) or "defaults"


def add_arguments(parser: argparse.ArgumentParser, out: Path) -> None:
    """``--config`` (repeated), ``--write`` and ``--label``."""
    parser.add_argument("--config", action="append", default=[], metavar="K=V,...",
                        help="worker settings of one configuration (repeat; empty: defaults)")
    parser.add_argument("--write", action="store_true", help=f"keep the runs in {out.name}")
    parser.add_argument("--label", default="", help="the entry's name in the JSON")


def configs_of(args: argparse.Namespace) -> list[dict[str, str]]:
    """The configurations asked for (the defaults alone if none)."""
    return [parse_config(c) for c in args.config] or [{}]


def finish(args: argparse.Namespace, out: Path, result: dict[str, Any], medians: str) -> int:
    """Print ``result[medians]`` per configuration; keep ``result`` if ``--write``."""
    for name, med in result[medians].items():
        print(f"median {name:40} {med}")
    if args.write:
        keep(out, args.label, result)
    return 0


def keep(path: Path, label: str, result: dict[str, Any]) -> None:
    """Add ``result`` to the JSON object in ``path`` under ``label`` (default: the time).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = Path(tmp) / "runs.json"
    ...     keep(out, "first", {"p50_ms": 8.0}); keep(out, "second", {"p50_ms": 9.0})
    ...     sorted(json.loads(out.read_text())), json.loads(out.read_text())["first"]["p50_ms"]
    (['first', 'second'], 8.0)
    """
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parent,
                            check=False).stdout.strip()
    kept = json.loads(path.read_text()) if path.exists() else {}
    kept[label or time.strftime("%Y-%m-%d %H:%M")] = {
        "commit": commit, "machine": platform.machine(), "cpus": os.cpu_count(), **result}
    path.write_text(json.dumps(kept, indent=1) + "\n")
