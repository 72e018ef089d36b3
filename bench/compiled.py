"""A compiled build of the work tree (``ANOMON_COMPILE=1``, see ``setup.py``), unpacked.

The wheel is built from a copy of the sources (the work tree gets no build
files) and unpacked into a directory that runs as ``PYTHONPATH``: the package as
``pip install`` would lay it out, compiled modules beside their ``.py`` files::

    python -m bench.compiled build/compiled     # then PYTHONPATH=build/compiled
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("setup.py", "pyproject.toml", "README.md", "src")


def build_compiled(target: Path, root: Path = ROOT) -> Path:
    """Build the compiled wheel of ``root`` and unpack it into ``target``; return ``target``.

    Needs a C compiler and the Python headers; raises ``CalledProcessError`` with
    pip's output when the build fails.
    """
    with tempfile.TemporaryDirectory(prefix="anomon-compile-") as tmp:
        copy, wheels = Path(tmp) / "src", Path(tmp) / "wheels"
        copy.mkdir()
        for name in SOURCES:
            source = root / name
            if source.is_dir():
                shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns(
                    "__pycache__", "*.so", "*.egg-info"))
            else:
                shutil.copy2(source, copy / name)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                        "--wheel-dir", str(wheels), str(copy)],
                       check=True, capture_output=True, text=True,
                       env={**os.environ, "ANOMON_COMPILE": "1"})
        (wheel,) = wheels.glob("anomon-*.whl")
        shutil.rmtree(target, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compiled", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="directory to unpack the build into")
    args = parser.parse_args(argv)
    try:
        build_compiled(args.target)
    except subprocess.CalledProcessError as err:
        print(f"compiled build failed:\n{err.stdout}{err.stderr}", file=sys.stderr)
        return 1
    print(args.target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
