"""The sweep for silent customers, run by the loop in chunks between batches.

Every ``sweep_interval_s`` the sweep judges the due customers
(:class:`~anomon.worker.sweep.SweepIndex`) of the input partitions this worker
owns, as of their partition's now (:class:`~anomon.worker.sweep.SweepClock`);
so each customer is judged by exactly one worker. A customer silent longer
than ``state_ttl_days`` is forgotten there: state and changelog record deleted
(``expired`` in ``/stats``).

The work is cut in chunks of :data:`CHUNK_S` seconds; a round ends with the
segments (tier, stage) of the customers changed since the last one, for the
``anomon_customers_tracked`` gauge, in chunks too. Each chunk becomes a
:class:`~anomon.worker.batch.Batch` of its own (alerts and state writes of the
customers' own partitions, committed like any batch), so records keep flowing
during a long sweep. After a rebalance the index is rebuilt from the states
held, in chunks too (a restored state is decoded for it and not kept decoded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from anomon.core.engine import Engine
from anomon.core.state import CustomerState
from anomon.kafka.logs import customer_ref, kv
from anomon.worker import metrics
from anomon.worker.batch import Batch
from anomon.worker.drift import LabelDrift
from anomon.worker.handler import RecordHandler
from anomon.worker.stats import WorkerStats
from anomon.worker.store import UNREADABLE, PartitionStore
from anomon.worker.sweep import CHECK_EVERY, SweepClock, SweepIndex

log = logging.getLogger("anomon.worker.sweeper")

CHUNK_S = 0.004  # seconds of sweeping, or indexing, per loop iteration (records wait meanwhile)


class Sweeper:
    """Index upkeep and the sweep (see the module docstring)."""

    def __init__(self, engine: Engine, handler: RecordHandler, index: SweepIndex,
                 clock: SweepClock, stats: WorkerStats, stores: dict[int, PartitionStore],
                 highwater: Callable[[int], int | None]) -> None:
        self.engine = engine
        self.handler = handler
        self.index = index
        self.clock = clock
        self.stats = stats
        self.stores = stores
        self.highwater = highwater
        self.label_drift = LabelDrift()
        self._labels_exported: dict[int, int] = dict(engine.churn.labels)
        self._quality_drifts_exported = 0
        self._rebuild: Iterator[int] | None = None
        self._rebuild_started = 0.0
        self._deadline = 0.0
        self._due: list[str] = []
        self._now: dict[int, float] = {}
        self._round_started: float | None = None
        self._sweep_s: float | None = None  # how long the round's sweep took, once done
        self._swept = 0

    def reset_labels(self) -> None:
        """Models were loaded from a checkpoint: count labels from there on."""
        self._labels_exported = dict(self.engine.churn.labels)

    # -- the index ---------------------------------------------------------------

    def segment(self, state: CustomerState, now: float) -> tuple[str, str]:
        segment = self.engine.segment(state, now)
        return segment.tier, segment.stage

    def note(self, state: CustomerState, now: float) -> None:
        self.index.note(state, self.segment(state, now))

    def invalidate(self) -> None:
        """The partitions changed: rebuild the index before the next sweep."""
        self.index.stale = True
        self._rebuild = None
        self._due = []
        self._round_started = None

    def _rebuild_steps(self) -> Iterator[int]:
        self.index.clear()
        newest: dict[int, float] = {}
        indexed = 0
        n = 0
        for p, store in list(self.stores.items()):
            for customer_id in store.customers():
                state = store.live.get(customer_id)
                if state is None:
                    raw = store.backend.get(customer_id.encode())
                    if raw is None:
                        continue
                    try:
                        state = CustomerState.from_bytes(raw)
                    except UNREADABLE:
                        continue  # counted when the customer's next event reads it
                self.index.note(state, self.segment(state, state.last_ts))
                indexed += 1
                if state.last_ts > newest.get(p, float("-inf")):
                    newest[p] = state.last_ts
                n += 1
                if n % CHECK_EVERY == 0 and time.perf_counter() >= self._deadline:
                    yield n
        self.clock.restore(newest)
        self.index.stale = False
        log.info("sweep index rebuilt %s", kv(
            customers=indexed, partitions=sorted(self.stores),
            seconds=round(time.monotonic() - self._rebuild_started, 3)))

    def rebuilding(self) -> bool:
        """Advance an index rebuild by one chunk; whether it is still under way."""
        if not self.index.stale:
            return False
        self._deadline = time.perf_counter() + CHUNK_S
        if self._rebuild is None:
            self._rebuild_started = time.monotonic()
            self._rebuild = self._rebuild_steps()
        try:
            next(self._rebuild)
        except StopIteration:
            self._rebuild = None
            return False
        return True

    # -- the sweep ---------------------------------------------------------------

    @property
    def in_round(self) -> bool:
        return self._round_started is not None

    def begin(self) -> None:
        """Start a sweep round over the owned partitions."""
        self._round_started = time.perf_counter()
        self._sweep_s = None
        self._swept = 0
        self._now = self._now_by_partition(set(self.stores))
        self._due = self.index.due(self._now)
        self._due.reverse()  # popped from the end, in index order

    def step(self) -> Batch:
        """Sweep the next chunk of due customers; the batch of what it published and wrote."""
        batch = Batch()
        touched: set[int] = set()
        deadline = time.perf_counter() + CHUNK_S
        n = 0
        while self._due:
            n += 1
            if n % CHECK_EVERY == 0 and time.perf_counter() >= deadline:
                break
            customer_id = self._due.pop()
            entry = self.index.entries.get(customer_id)
            if entry is None:
                continue
            store = self.stores.get(entry[1])
            if store is None:
                continue
            try:
                batch.outputs.extend(self._sweep_one(customer_id, store))
            except Exception as exc:  # a bad state must not stop the sweeps: skip the customer
                self.index.forget(customer_id)  # until their next event
                self.stats.sweep_errors += 1
                log.exception("sweep failed %s", kv(customer=customer_ref(customer_id),
                                                     error=type(exc).__name__))
                continue
            touched.add(store.partition)
            self._swept += 1
        for p in touched:
            self.stores[p].take_fresh()  # noted above
        batch.touched = touched
        if not self._due:
            if self._sweep_s is None:
                started = self._round_started
                self._sweep_s = 0.0 if started is None else time.perf_counter() - started
            # then the segments of the customers changed since the last round, for the gauge
            if self.index.resegment(self._segment_of, until=deadline):
                self._finish()
        return batch

    def _sweep_one(self, customer_id: str, store: PartitionStore) -> list[Any]:
        state = store.get(customer_id)
        if state is None:
            self.index.forget(customer_id)
            return []
        now = self._now.get(store.partition)
        if now is not None and self.index.expired(state, now):
            store.pop(customer_id)  # long gone: forget here and in the changelog
            self.index.forget(customer_id)
            self.stats.record_expired()
            return []
        if now is None or not self.engine.due(state, now):
            self.note(state, state.last_ts)
            return []
        alerts = [(alert, alert.to_bytes()) for alert in self.engine.sweep(state, now)]
        store[customer_id] = state
        self.note(state, now)
        return self.handler.alert_records(alerts, store.partition)

    def _finish(self) -> None:
        self._round_started = None
        elapsed = self._sweep_s or 0.0
        self.stats.sweeps += 1
        self.stats.sweep_customers += self._swept
        metrics.SWEEP_CUSTOMERS.inc(self._swept)
        metrics.SWEEP_SECONDS.observe(elapsed)
        self.update_customer_gauge()
        self.export_labels()
        if self._swept:
            log.debug("sweep %s", kv(customers=self._swept, seconds=round(elapsed, 3)))

    def _now_by_partition(self, partitions: set[int]) -> dict[int, float]:
        out = {}
        for p in partitions:
            highwater = self.highwater(p) if self.clock.mode == "event" else None
            now = self.clock.now_for(p, highwater)
            if now is not None:
                out[p] = now
        return out

    # -- metrics -----------------------------------------------------------------

    def _segment_of(self, customer_id: str, partition: int) -> tuple[str, str] | None:
        store = self.stores.get(partition)
        state = store.live.get(customer_id) if store is not None else None
        return self.segment(state, state.last_ts) if state is not None else None

    def update_customer_gauge(self) -> None:
        """Customers of owned partitions by tier and stage (as of their last event or sweep)."""
        metrics.CUSTOMERS_TRACKED.clear()
        for (tier, stage), n in self.index.segments(set(self.stores)).items():
            metrics.CUSTOMERS_TRACKED.labels(tier, stage).set(n)

    def export_labels(self) -> None:
        """Churn labels learned since the last export (``anomon_model_labels``)."""
        churn = self.engine.churn
        new: dict[int, int] = {}
        for label, name in ((0, "bought_again"), (1, "silent")):
            learned = churn.labels.get(label, 0)
            delta = learned - self._labels_exported.get(label, 0)
            if delta > 0:
                metrics.MODEL_LABELS.labels(churn.name, name).inc(delta)
            new[label] = max(0, delta)
            self._labels_exported[label] = learned
        drifts = self.label_drift.update(silent=new[1], bought_again=new[0])
        if drifts:
            metrics.MODEL_DRIFT.labels(churn.name, "label_rate").inc(drifts)
            log.info("churn label rate changed %s", kv(model=churn.name, changes=drifts))
        health = churn.health()
        quality_drifts = int(health["drifts"]) - self._quality_drifts_exported
        if quality_drifts > 0:
            metrics.MODEL_DRIFT.labels(churn.name, "quality").inc(quality_drifts)
            self._quality_drifts_exported = int(health["drifts"])
        if health["labels_bought_again"] + health["labels_silent"] > 0:
            metrics.MODEL_QUALITY.labels(churn.name, "log_loss").set(health["rolling_log_loss"])
            metrics.MODEL_QUALITY.labels(churn.name, "roc_auc").set(health["rolling_roc_auc"])
