"""The detector protocol and the verdict it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from anomon.core.alerts import Reason
from anomon.core.detection_config import DetectionConfig
from anomon.core.population import PopulationBaseline

if TYPE_CHECKING:
    from anomon.core.events import Event
    from anomon.core.state import CustomerState


@dataclass(slots=True)
class Verdict:
    """A detector's judgement: the change holds (``firing``) or the customer recovered.

    ``tag`` names the evidence (e.g. ``silence`` or ``decline``) so the recovery
    rule can depend on it.
    """

    kind: str
    firing: bool
    score: float = 0.0
    threshold: float = 0.0
    reasons: list[Reason] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    tag: str = ""


@dataclass(slots=True)
class DetectionContext:
    """What detectors share: configuration and the population baseline."""

    config: DetectionConfig
    population: PopulationBaseline


class Detector(Protocol):
    """One kind of change. See :mod:`anomon.core.detectors`."""

    kind: str
    name: str
    version: str
    event_types: frozenset[str]
    """The event types ``on_event`` looks at; the engine calls it for no others."""

    def on_event(
        self, state: CustomerState, event: Event, ctx: DetectionContext
    ) -> Verdict | None: ...

    def on_sweep(self, state: CustomerState, now: float, ctx: DetectionContext) -> Verdict | None:
        ...
