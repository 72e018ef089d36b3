"""The engine: one event (or a sweep at an event time) in, alerts out.

The engine is the whole pure core: it knows nothing of Kafka or files. Callers
own the customer states (a dict in a replay, a changelog-backed table in the
worker) and hand each one in with the event; the engine returns the updated
state and the alerts to publish. Models shared by all customers (the population
baseline, the HalfSpaceTrees behaviour model and the churn model) live in the
engine and are checkpointed with :meth:`Engine.models_state`.

>>> from anomon.core.events import EVENT_ADAPTER
>>> engine = Engine()
>>> ev = EVENT_ADAPTER.validate_python({"event_id": "e1", "customer_id": "c1",
...     "type": "purchase", "ts": "2026-01-05T10:00:00+00:00", "amount": 42.5})
>>> step = engine.process(None, ev)
>>> step.outcome, step.alerts, step.state.n_purchases
('processed', [], 1)
>>> engine.process(step.state, ev).outcome
'duplicate'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from anomon.core import seen
from anomon.core.alerts import Alert, ModelRef, Segment
from anomon.core.detection_config import DetectionConfig
from anomon.core.detectors.base import NEVER, BoundedDetector, DetectionContext, Detector, Verdict
from anomon.core.detectors.churn_risk import ChurnRiskDetector
from anomon.core.detectors.complaint_spike import ComplaintSpikeDetector
from anomon.core.detectors.drop_off import DropOffDetector
from anomon.core.detectors.payment_arrears import PaymentArrearsDetector
from anomon.core.detectors.refund_abuse import RefundAbuseDetector
from anomon.core.detectors.rhythm import rhythm_of
from anomon.core.detectors.spend_anomaly import SpendAnomalyDetector
from anomon.core.events import EVENT_TYPES, Event
from anomon.core.features import (
    add_complaint,
    add_payment,
    add_purchase,
    add_refund,
    add_visit,
    decayed_value,
)
from anomon.core.population import PopulationBaseline
from anomon.core.segments import lifecycle_stage, value_tier
from anomon.core.state import MAX_SEEN_IDS, CustomerState

MODELS_VERSION = 3  # 2: churn model trained by rehearsal, surprise features; 3: silence unscaled
DEFAULT_LATENESS_S = 48 * 3600.0
MIN_DELAY_S = 60.0  # a check due now is set this much later (event time)


@dataclass(slots=True)
class StepResult:
    """What one event did: the new state, the alerts, and the outcome.

    ``outcome`` is ``processed``, ``duplicate`` (event id seen before: no effect)
    or ``late`` (older than the lateness bound: not applied; see the docs).
    """

    state: CustomerState
    alerts: list[Alert]
    outcome: str


class Engine:
    """Features, detectors and alert policy for every customer.

    Parameters
    ----------
    config
        Detector, policy and segment parameters (``models/detectors.toml``).
    lateness_bound_s
        An event older than the customer's newest event by more than this is late.
    """

    def __init__(
        self, config: DetectionConfig | None = None, lateness_bound_s: float = DEFAULT_LATENESS_S
    ) -> None:
        from anomon.core.policy import AlertPolicy

        self.config = config or DetectionConfig()
        self.lateness_bound_s = lateness_bound_s
        seg = self.config.segments
        self.population = PopulationBaseline(seg.high_quantile, seg.mid_quantile)
        self.ctx = DetectionContext(self.config, self.population)
        self.spend = SpendAnomalyDetector(self.config.spend_anomaly)
        self.churn = ChurnRiskDetector(self.config.churn_risk)
        self.drop_off = DropOffDetector()
        self.detectors: list[Detector] = [
            self.spend,
            self.drop_off,
            ComplaintSpikeDetector(),
            RefundAbuseDetector(),
            PaymentArrearsDetector(),
            self.churn,
        ]
        self._before: dict[str, list[Detector]] = {
            t: [d for d in self.detectors if t in d.event_types and d.judges == "before"]
            for t in EVENT_TYPES
        }
        self._after: dict[str, list[Detector]] = {
            t: [d for d in self.detectors if t in d.event_types and d.judges == "after"]
            for t in EVENT_TYPES
        }
        self._bounded = [cast(BoundedDetector, d) for d in self.detectors
                         if hasattr(d, "earliest_check")]
        self._exact = [d for d in self.detectors if not hasattr(d, "earliest_check")]
        self._sweep_order: list[tuple[Detector, BoundedDetector | None]] = [
            (d, cast(BoundedDetector, d) if hasattr(d, "earliest_check") else None)
            for d in self.detectors]
        self.models = {
            d.kind: ModelRef(name=d.name, version=f"{d.version}.{MODELS_VERSION}")
            for d in self.detectors
        }
        self.policy = AlertPolicy(self.config.policy.cooldown_days)

    # -- events -------------------------------------------------------------

    def process(
        self, state: CustomerState | None, event: Event, partition: int = -1
    ) -> StepResult:
        """Fold ``event`` into ``state`` (``None`` for a new customer) and judge it."""
        now = event.epoch
        if state is None:
            state = CustomerState.new(event.customer_id, now, partition)
        event_key = seen.key(event.event_id)
        if seen.has(state.seen_ids, event_key):
            return StepResult(state, [], "duplicate")
        if now < state.last_ts - self.lateness_bound_s:
            return StepResult(state, [], "late")
        state.seen_ids = seen.remember(state.seen_ids, event_key, MAX_SEEN_IDS)
        if partition >= 0:
            state.partition = partition
        verdicts: list[Verdict] = []
        ctx = self.ctx
        kind = event.type
        for detector in self._before[kind]:
            verdict = detector.on_event(state, event, ctx)
            if verdict is not None:
                verdicts.append(verdict)
        self._fold(state, event, now)
        for detector in self._after[kind]:
            verdict = detector.on_event(state, event, ctx)
            if verdict is not None:
                verdicts.append(verdict)
        alerts = self._apply(state, verdicts, now) if verdicts else []
        if kind == "purchase" or verdicts or state.next_check_ts <= now:
            self._schedule(state, max(now, state.last_ts))
        return StepResult(state, alerts, "processed")

    def _fold(self, state: CustomerState, event: Event, now: float) -> None:
        pop = self.population
        if event.type == "interaction":  # most events
            add_visit(state, now)
        elif event.type == "purchase":
            amount = float(event.amount)
            log_gap = add_purchase(state, now, amount, learn_amount=False)  # spend learns sizes
            if log_gap is not None:
                pop.observe_gap(log_gap)
            add_visit(state, now)
            pop.observe_value(decayed_value(state, now))
            pop.observe_refund_share(amount, 0.0)
        elif event.type == "refund":
            add_refund(state, now, float(event.amount))
            pop.observe_refund_share(0.0, float(event.amount))
        elif event.type == "complaint":
            add_complaint(state, now, event.severity or 2)
            add_visit(state, now)
        elif event.type == "survey":
            if state.nps_ts is None or now >= state.nps_ts:
                state.nps, state.nps_ts = event.score, now
        elif event.type == "payment":
            add_payment(state, event.status.value, event.days_overdue)  # arrears keeps what is owed
        if now > state.last_ts:
            state.last_ts = now
        elif now < state.first_ts:  # arrived after a newer event of theirs (within the bound)
            state.first_ts = now

    # -- silence ------------------------------------------------------------

    def due(self, state: CustomerState, now: float) -> bool:
        """Whether a sweep at ``now`` has anything to look at for this customer."""
        return now >= state.next_check_ts

    def sweep(self, state: CustomerState, now: float) -> list[Alert]:
        """Judge silence as of event time ``now``; mutates ``state``.

        A customer woken at a lower bound (see :meth:`_schedule`) first gets the
        exact time, scheduled from where the bound was; only if that has come
        too are the detectors asked.
        """
        if now < state.next_check_ts:
            return []
        if state.bound_from_ts is not None:
            due = self._next_check(state, state.bound_from_ts)
            state.bound_from_ts = None
            state.next_check_ts = due
            if now < due:
                return []
        ctx = self.ctx
        verdicts = []
        for detector, bounded in self._sweep_order:
            # another detector is due: one whose cheap bound has not come cannot say
            # anything new (its next check is later still), and is not asked
            if bounded is not None and bounded.earliest_check(state, now, ctx) > now:
                continue
            verdict = detector.on_sweep(state, now, ctx)
            if verdict is not None:
                verdicts.append(verdict)
        alerts = self._apply(state, verdicts, now) if verdicts else []
        self._schedule(state, now)
        return alerts

    def _schedule(self, state: CustomerState, now: float) -> None:
        """Set the customer's next check: exact, or a lower bound where that is much cheaper.

        A detector with a costly next check (:class:`BoundedDetector`) offers a
        cheap lower bound. When the bound comes before every other detector's
        check, the customer is scheduled at the bound: most customers act again
        before it, and the exact time is never needed. Otherwise the exact time
        is the earliest of all.
        """
        ctx = self.ctx
        due = bound = NEVER
        for detector in self._exact:  # loops, not min() of generators: this runs per order
            check = detector.next_check(state, now, ctx)
            if check < due:
                due = check
        for bounded in self._bounded:
            check = bounded.earliest_check(state, now, ctx)
            if check < bound:
                bound = check
        if bound < due:
            if bound > now + MIN_DELAY_S:
                state.next_check_ts, state.bound_from_ts = bound, now
                return
            for bounded in self._bounded:
                due = min(due, bounded.next_check(state, now, ctx))
        state.next_check_ts, state.bound_from_ts = self._later_than_now(due, now), None

    def _next_check(self, state: CustomerState, now: float) -> float:
        """The earliest event time at which a sweep could change something: each detector's."""
        ctx = self.ctx
        return self._later_than_now(min(d.next_check(state, now, ctx) for d in self.detectors), now)

    @staticmethod
    def _later_than_now(due: float, now: float) -> float:
        return max(due, now + MIN_DELAY_S) if due <= now else due

    # -- alerts -------------------------------------------------------------

    def segment(self, state: CustomerState, now: float) -> Segment:
        """Value tier and lifecycle stage of the customer at ``now``."""
        rhythm = rhythm_of(state, self.population, self.config.drop_off.prior_weight)
        return Segment(
            tier=value_tier(state, now, self.population),
            stage=lifecycle_stage(state, now, self.config.segments, rhythm.mean_days),
        )

    def _apply(self, state: CustomerState, verdicts: list[Verdict], now: float) -> list[Alert]:
        alerts = []
        segment: Segment | None = None
        for verdict in verdicts:
            if not verdict.firing and not state.is_open(verdict.kind):
                continue
            if segment is None:
                segment = self.segment(state, now)
            alert = self.policy.apply(state, verdict, now, segment, self.models[verdict.kind])
            if alert is not None:
                alerts.append(alert)
        return alerts

    # -- checkpoints --------------------------------------------------------

    def models_state(self) -> dict[str, Any]:
        """The shared models, for a checkpoint (picklable)."""
        return {
            "version": MODELS_VERSION,
            "population": self.population.state_dict(),
            "spend": self.spend.state_dict(),
            "churn": self.churn.state_dict(),
        }

    def load_models_state(self, data: dict[str, Any]) -> None:
        """Restore :meth:`models_state`; raises ``ValueError`` on another version."""
        if data.get("version") != MODELS_VERSION:
            raise ValueError(f"models checkpoint version {data.get('version')!r}")
        self.population.load_state_dict(data["population"])
        self.spend.load_state_dict(data["spend"])
        self.churn.load_state_dict(data["churn"])
