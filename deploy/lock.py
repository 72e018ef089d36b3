"""Write ``requirements.lock``: every package of a production install, pinned, with hashes.

The image installs from it (``pip install --require-hashes -r requirements.lock``,
then anomon itself with ``--no-deps``), so a rebuild gets the same packages. It
covers ``[project] dependencies`` and the ``rocksdb`` extra, resolved by pip for the
Python that runs this script: run it with CPython 3.11 on Linux x86-64 (what
the ``python:3.11-slim`` image is) after changing the dependencies in
``pyproject.toml``::

    python3.11 deploy/lock.py        # needs PyPI
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = "rocksdb"
HEADER = """\
# anomon's production packages, pinned with their hashes: written by deploy/lock.py
# from pyproject.toml ([project] dependencies + the {extras} extra), for CPython 3.11 on
# Linux x86-64. The Dockerfile installs these, then anomon with --no-deps.
"""


def requirements() -> list[str]:
    """The requirement strings of a production install, from ``pyproject.toml``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"][EXTRAS]]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
                        "--ignore-installed", "--report", str(report),
                        *requirements()], cwd=ROOT, check=True)
        installs = json.loads(report.read_text())["install"]
    lines = [HEADER.format(extras=EXTRAS)]
    for item in sorted(installs, key=lambda i: i["metadata"]["name"].lower()):
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{digest}")
    (ROOT / "requirements.lock").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
