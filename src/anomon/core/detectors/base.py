"""The detector protocol, the verdict it returns and the one score scale of all kinds.

Scores are *surprise*: ``-log10`` of the probability of what is seen for an
unchanged customer (a probability of 1e-4 is a surprise of 4). Each detector
states its threshold in the same unit, so an alert's ``score`` and
``threshold`` compare across kinds (see :func:`surprise`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from anomon.core.alerts import Reason
from anomon.core.detection_config import DetectionConfig
from anomon.core.population import PopulationBaseline

if TYPE_CHECKING:
    from anomon.core.events import Event
    from anomon.core.state import CustomerState

NEVER = math.inf
MAX_SURPRISE = 300.0


def surprise(p: float) -> float:
    """``-log10(p)``, capped at ``MAX_SURPRISE`` (the one score scale).

    >>> surprise(1e-4), surprise(1.0), surprise(0.0)
    (4.0, -0.0, 300.0)
    """
    if p <= 0.0:
        return MAX_SURPRISE
    return min(MAX_SURPRISE, -math.log10(min(p, 1.0)))


@dataclass(slots=True)
class Verdict:
    """A detector's judgement: the change holds (``firing``) or the customer recovered.

    ``score`` and ``threshold`` are surprises (see the module docstring). ``tag``
    names the evidence (e.g. ``silence`` or ``decline``) so the recovery rule can
    depend on it.
    """

    kind: str
    firing: bool
    score: float = 0.0
    threshold: float = 0.0
    reasons: list[Reason] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    tag: str = ""


@dataclass(frozen=True, slots=True)
class Score:
    """A detector's current score and threshold for one customer (surprise units)."""

    score: float | None
    threshold: float
    note: str = ""

    def to_dict(self) -> dict[str, float | str | None]:
        out: dict[str, float | str | None] = {
            "score": None if self.score is None else round(self.score, 4),
            "threshold": round(self.threshold, 4)}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(slots=True)
class DetectionContext:
    """What detectors share: configuration and the population baseline."""

    config: DetectionConfig
    population: PopulationBaseline


class Detector(Protocol):
    """One kind of change, with all of its logic. See :mod:`anomon.core.detectors`."""

    kind: str
    name: str
    version: str
    event_types: frozenset[str]
    """The event types ``on_event`` looks at; the engine calls it for no others."""
    judges: Literal["before", "after"]
    """Whether ``on_event`` sees the state before or after the event is folded in."""

    def on_event(
        self, state: CustomerState, event: Event, ctx: DetectionContext
    ) -> Verdict | None: ...

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        ...

    def next_check(self, state: CustomerState, now: float, ctx: DetectionContext) -> float:
        """The earliest event time after which ``on_sweep`` could say something new."""
        ...

    def score(self, state: CustomerState, now: float, ctx: DetectionContext) -> Score:
        """The current score against the threshold, as the profile shows it."""
        ...


class BoundedDetector(Detector, Protocol):
    """A detector whose :meth:`next_check` is costly, with a cheap lower bound of it.

    The engine schedules such a customer at the bound when it comes before every
    other detector's check, and works the exact time out only if the customer is
    still silent when the bound arrives: most customers act again before it. A
    sweep due for another detector does not call its ``on_sweep`` before the bound.
    """

    def earliest_check(self, state: CustomerState, now: float, ctx: DetectionContext) -> float:
        """A lower bound of :meth:`next_check` (``-inf`` when none is cheap)."""
        ...
