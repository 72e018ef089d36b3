"""Errors raised by the core, each with a short machine-readable reason code."""

from __future__ import annotations


class AnomonError(Exception):
    """Base class of every error this package raises on purpose."""


class EventRejected(AnomonError):
    """An input record that cannot be processed and goes to the dead-letter topic.

    ``reason`` is a stable snake_case code (used as a metric label and in the
    dead-letter record); ``detail`` is a human-readable explanation naming the
    offending field where there is one.

    >>> err = EventRejected("invalid_json", "expecting value at line 1")
    >>> err.reason, str(err)
    ('invalid_json', 'invalid_json: expecting value at line 1')
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StateVersionError(AnomonError):
    """Serialised customer or model state written by an unknown format version."""
