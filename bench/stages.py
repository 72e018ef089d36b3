"""Cost of each stage of the pure engine, per event, measured on decoded events."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson

from anomon.core.decoding import EventDecoder
from anomon.core.engine import Engine
from anomon.core.events import EVENT_ADAPTER


def _timed(fn: Callable[..., Any], bucket: dict[str, float], name: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket[name] += time.perf_counter() - t0

    return wrapper


def stage_costs(lines: list[bytes]) -> dict[str, float]:
    """Microseconds per input event spent in each stage (one pass each)."""
    n = len(lines)
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    dicts = [orjson.loads(line) for line in lines]
    out["json_decode"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for d in dicts:
        EVENT_ADAPTER.validate_python(d)
    out["validate"] = (time.perf_counter() - t0) / n * 1e6
    decoder = EventDecoder(max_future_s=float("inf"))
    events = sorted((decoder.decode(line) for line in lines), key=lambda e: e.epoch)

    engine = Engine()
    spent: dict[str, float] = defaultdict(float)
    for det in engine.detectors:
        det.on_event = _timed(det.on_event, spent, f"detector:{det.kind}")  # type: ignore[method-assign]
        det.on_sweep = _timed(det.on_sweep, spent, f"sweep:{det.kind}")  # type: ignore[method-assign]
    engine._fold = _timed(engine._fold, spent, "features")  # type: ignore[method-assign]
    engine._apply = _timed(engine._apply, spent, "policy")  # type: ignore[method-assign]
    engine._schedule = _timed(engine._schedule, spent, "scheduling")  # type: ignore[method-assign]
    engine._next_check = _timed(engine._next_check, spent, "scheduling")  # type: ignore[method-assign]
    states: dict[str, Any] = {}
    t0 = time.perf_counter()
    next_sweep = events[0].epoch + 86400.0
    for ev in events:
        while ev.epoch >= next_sweep:
            for st in states.values():
                if next_sweep >= st.next_check_ts:
                    engine.sweep(st, next_sweep)
            next_sweep += 86400.0
        step = engine.process(states.get(ev.customer_id), ev)
        states[ev.customer_id] = step.state
    total = time.perf_counter() - t0
    out["engine_total"] = total / n * 1e6
    for name, seconds in sorted(spent.items()):
        out[name] = seconds / n * 1e6
    return out
