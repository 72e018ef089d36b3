"""Argument checking for the ``anomon`` command: a mistake is one line that names the fix.

Each type below raises :class:`argparse.ArgumentTypeError` with a message that
says what is accepted (and the nearest valid choice), and :class:`Parser`
prints it as ``anomon tail: argument --kind: 'dropoff' is not a kind; did you
mean drop_off? (see anomon tail --help)``, exit code 2, no usage block.

>>> kind = Choice("kind", ("drop_off", "churn_risk"))
>>> kind("Drop_Off")
'drop_off'
>>> try:
...     kind("dropoff")
... except argparse.ArgumentTypeError as err:
...     print(err)
'dropoff' is not a kind; did you mean drop_off? (one of: drop_off, churn_risk)
>>> IntRange(28, 3650, "days")("5")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: 5 days is too few: at least 28
>>> segment("high/at_risk"), segment("loyal")
('high/at_risk', 'loyal')
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

from anomon.core.alerts import ALERT_KINDS
from anomon.core.segments import STAGES, TIERS
from anomon.exits import EXIT_USAGE
from anomon.ops.tail import SEVERITIES

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


class Choice:
    """One of ``choices``, case-insensitive; a near miss is named in the error."""

    def __init__(self, what: str, choices: Iterable[str]) -> None:
        self.what = what
        self.choices = tuple(choices)
        self.__name__ = what  # argparse names the type in some messages

    def __call__(self, text: str) -> str:
        value = text.strip().lower()
        if value in self.choices:
            return value
        near = difflib.get_close_matches(value, self.choices, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a {self.what}{hint} (one of: {', '.join(self.choices)})")

    @property
    def metavar(self) -> str:
        return "{" + ",".join(self.choices) + "}"


class IntRange:
    """An integer within ``[low, high]`` (``high`` None: no upper bound)."""

    def __init__(self, low: int, high: int | None = None, unit: str = "") -> None:
        self.low, self.high, self.unit = low, high, unit
        self.__name__ = "integer"

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        unit = f" {self.unit}" if self.unit else ""
        if value < self.low:
            raise argparse.ArgumentTypeError(f"{value}{unit} is too few: at least {self.low}")
        if self.high is not None and value > self.high:
            raise argparse.ArgumentTypeError(f"{value}{unit} is too many: at most {self.high}")
        return value


def positive_float(text: str) -> float:
    """A number above zero (a rate, a duration)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def port(text: str) -> int:
    """A TCP port, 0 (pick a free one) to 65535."""
    return IntRange(0, 65535)(text)


SEGMENTS = (*TIERS, *STAGES, *(f"{t}/{s}" for t in TIERS for s in STAGES))

kind = Choice("kind", ALERT_KINDS)
severity = Choice("severity", SEVERITIES)
log_level = Choice("log level", [level.lower() for level in LOG_LEVELS])


def segment(text: str) -> str:
    """A value tier (``high``), a lifecycle stage (``at_risk``) or both (``high/at_risk``)."""
    value = text.strip().lower()
    if value in SEGMENTS:
        return value
    near = difflib.get_close_matches(value, SEGMENTS, n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]}?" if near else ""
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a segment{hint} (a tier: {', '.join(TIERS)}; a stage: "
        f"{', '.join(STAGES)}; or TIER/STAGE)")


def existing_file(text: str) -> Path:
    """A file that exists (checked before any work starts)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    return path


def new_file(text: str) -> Path:
    """A file to write, in a folder that exists (anomon creates no folders unasked)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; name a file in it")
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(
            f"folder {folder} does not exist; create it first (mkdir -p {folder})")
    return path
