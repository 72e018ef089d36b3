"""Errors of the evaluation package."""

from __future__ import annotations

from anomon.core.errors import AnomonError


class EvaluationUnavailable(AnomonError):
    """An optional dependency or data file of an evaluation is missing."""
