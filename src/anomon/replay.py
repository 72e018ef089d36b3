"""Replay a file of events through the engine, offline, in event-time order.

The same :class:`~anomon.core.engine.Engine` as the live worker; the customer
states live in a dict and the sweep for silent customers runs whenever event
time crosses a sweep boundary (every ``sweep_every_s`` of event time). A bad
line is rejected with a reason (as the worker would dead-letter it), never
fatal.

>>> import io
>>> lines = [b'{"event_id":"e1","customer_id":"c1","type":"survey",'
...          b'"ts":"2026-01-01T00:00:00Z","score":9}', b'not json']
>>> summary = Replayer().run(lines)
>>> summary.events_in, summary.processed, dict(summary.rejected)
(2, 1, {'invalid_json': 1})
"""

from __future__ import annotations

import gzip
import io
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from anomon.core.alerts import Alert
from anomon.core.decoding import EventDecoder
from anomon.core.engine import Engine
from anomon.core.errors import EventRejected
from anomon.core.events import Event
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY


@dataclass
class ReplaySummary:
    """Counts that prove every line was either processed or rejected."""

    events_in: int = 0
    processed: int = 0
    duplicate: int = 0
    late: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    customers: int = 0
    seconds: float = 0.0

    @property
    def accounted(self) -> bool:
        """``in == processed + duplicate + late + rejected``."""
        total = self.processed + self.duplicate + self.late + sum(self.rejected.values())
        return self.events_in == total

    @property
    def events_per_s(self) -> float:
        return self.events_in / self.seconds if self.seconds > 0 else 0.0

    def add(self, part: dict[str, Any]) -> None:
        """Add the counts of another summary's :meth:`to_dict` (a shard of the same input)."""
        self.events_in += part["events_in"]
        self.processed += part["processed"]
        self.duplicate += part["duplicate"]
        self.late += part["late"]
        self.rejected.update(part["rejected"])
        self.alerts.update(part["alerts"])
        self.customers += part["customers"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "events_in": self.events_in,
            "processed": self.processed,
            "duplicate": self.duplicate,
            "late": self.late,
            "rejected": dict(self.rejected),
            "alerts": dict(self.alerts),
            "customers": self.customers,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events_per_s, 1),
            "accounted": self.accounted,
        }


def read_lines(path: Path) -> Iterator[bytes]:
    """Lines of a ``.jsonl`` or ``.jsonl.gz`` file, without the newline; blank lines skipped."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as fh:  # lines from a C buffer: GzipFile's own are slow
            yield from _non_blank(io.BufferedReader(fh))
    else:
        with path.open("rb") as fh:
            yield from _non_blank(fh)


def _non_blank(fh: Iterable[bytes]) -> Iterator[bytes]:
    for line in fh:
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield line


class Replayer:
    """Runs lines of JSON events through an engine.

    Parameters
    ----------
    engine
        The engine; a default one if not given.
    decoder
        Validation settings; note the default rejects event times in the future.
    sweep_every_s
        Event-time interval between sweeps for silent customers.
    on_alert, on_reject
        Callbacks for each alert and each rejected line (``reason, detail, raw``).
    """

    def __init__(
        self,
        engine: Engine | None = None,
        decoder: EventDecoder | None = None,
        sweep_every_s: float = DAY,
        on_alert: Callable[[Alert], None] | None = None,
        on_reject: Callable[[str, str, bytes], None] | None = None,
    ) -> None:
        self.engine = engine or Engine()
        self.decoder = decoder or EventDecoder(max_future_s=float("inf"))
        self.sweep_every_s = sweep_every_s
        self.on_alert = on_alert
        self.on_reject = on_reject
        self.states: dict[str, CustomerState] = {}
        self.summary = ReplaySummary()
        self._next_sweep: float | None = None

    def run(
        self,
        lines: Iterable[bytes],
        sort: bool = True,
        until: float | None = None,
        progress: Callable[[int], None] | None = None,
        end: Callable[[float | None], float | None] | None = None,
    ) -> ReplaySummary:
        """Decode, order by event time (``sort``), process, sweep; return the summary.

        The final sweep is at ``until``, else at the last event; ``end``, when
        given, is told that time and returns the one to use instead (a shard of
        a file sweeps at the whole file's end).
        """
        started = time.perf_counter()
        events: Iterable[Event]
        if sort:
            events = sorted(self._decode_all(lines, progress), key=lambda ev: ev.epoch)
        else:
            events = self._decode_iter(lines)
        last = None
        for n, event in enumerate(events, 1):
            now = event.epoch
            if self._next_sweep is None or now >= self._next_sweep:
                self._sweep_until(now)
            self._process(event)
            if last is None or now > last:
                last = now
            if progress is not None and not sort and n % 10000 == 0:
                progress(n)
        final = until if until is not None else last
        if end is not None:
            final = end(final)
        if final is not None:
            self._sweep_until(final, final=True)
        self.summary.customers = len(self.states)
        self.summary.seconds = time.perf_counter() - started
        return self.summary

    def _decode_one(self, raw: bytes) -> Event | None:
        self.summary.events_in += 1
        try:
            return self.decoder.decode(raw)
        except EventRejected as err:
            self.summary.rejected[err.reason] += 1
            if self.on_reject is not None:
                self.on_reject(err.reason, err.detail, raw)
            return None

    def _decode_all(
        self, lines: Iterable[bytes], progress: Callable[[int], None] | None
    ) -> list[Event]:
        out = []
        for n, raw in enumerate(lines, 1):
            event = self._decode_one(raw)
            if event is not None:
                out.append(event)
            if progress is not None and n % 10000 == 0:
                progress(n)
        return out

    def _decode_iter(self, lines: Iterable[bytes]) -> Iterator[Event]:
        for raw in lines:
            event = self._decode_one(raw)
            if event is not None:
                yield event

    def _process(self, event: Event) -> None:
        cid = event.customer_id
        step = self.engine.process(self.states.get(cid), event)
        self.states[cid] = step.state
        if step.outcome == "processed":
            self.summary.processed += 1
        elif step.outcome == "duplicate":
            self.summary.duplicate += 1
        else:
            self.summary.late += 1
        if step.alerts:
            self._emit(step.alerts)

    def _sweep_until(self, now: float, final: bool = False) -> None:
        if self._next_sweep is None:
            self._next_sweep = (now // self.sweep_every_s + 1) * self.sweep_every_s
            return
        while self._next_sweep <= now:
            self.sweep(self._next_sweep)
            self._next_sweep += self.sweep_every_s
        if final:
            self.sweep(now)

    def sweep(self, now: float) -> None:
        """Sweep every customer that is due at event time ``now``."""
        engine = self.engine
        for state in self.states.values():
            if now >= state.next_check_ts:
                self._emit(engine.sweep(state, now))

    def _emit(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.summary.alerts[f"{alert.kind}:{alert.status}"] += 1
            if self.on_alert is not None:
                self.on_alert(alert)


def reject_record(reason: str, detail: str, raw: bytes) -> bytes:
    """A rejected line as one JSON line: reason, detail and the raw text."""
    return orjson.dumps({"reason": reason, "detail": detail,
                         "raw": raw.decode("utf-8", errors="replace")})


def file_writers(
    out: IO[bytes], rejects: IO[bytes] | None
) -> tuple[Callable[[Alert], None], Callable[[str, str, bytes], None]]:
    """``on_alert`` and ``on_reject`` for a :class:`Replayer` writing JSON lines to files.

    Alerts go to ``out``; rejected lines, as :func:`reject_record`, to
    ``rejects`` (dropped when it is ``None``).
    """

    def on_alert(alert: Alert) -> None:
        out.write(alert.to_bytes() + b"\n")

    def on_reject(reason: str, detail: str, raw: bytes) -> None:
        if rejects is not None:
            rejects.write(reject_record(reason, detail, raw) + b"\n")

    return on_alert, on_reject
