"""Hand-built customer histories for the detector and policy tests."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from anomon.core.alerts import Alert
from anomon.core.engine import Engine
from anomon.replay import Replayer

START = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)


def bench_module(name: str) -> ModuleType:
    """``bench/<name>.py`` loaded by its path (``bench`` is not installed with the package)."""
    path = Path(__file__).resolve().parents[2] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


class History:
    """Builds events for customers on a day timeline and replays them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def add(self, customer: str, day: float, type_: str, **fields: Any) -> History:
        ts = START + timedelta(days=day)
        self.events.append({"event_id": f"e{next(self._ids)}", "customer_id": customer,
                            "type": type_, "ts": ts.isoformat(), **fields})
        return self

    def purchases(self, customer: str, days: list[float], amount: float | Callable[[int], float]
                  = 50.0) -> History:
        for i, day in enumerate(days):
            value = amount(i) if callable(amount) else amount
            self.add(customer, day, "purchase", amount=value)
        return self

    def replay(self, until_day: float | None = None, engine: Engine | None = None) -> list[Alert]:
        alerts: list[Alert] = []
        replayer = Replayer(engine=engine or Engine(), on_alert=alerts.append)
        until = (START + timedelta(days=until_day)).timestamp() if until_day is not None else None
        replayer.run((orjson.dumps(e) for e in self.events), until=until)
        assert replayer.summary.accounted
        self.replayer = replayer
        return alerts


def weekly(weeks: int, start: float = 0.0, jitter: tuple[float, ...] = (0.0, 1.0, -1.0, 0.5)
           ) -> list[float]:
    """Purchase days roughly every seven days, with a small repeating jitter."""
    return [start + 7 * i + jitter[i % len(jitter)] for i in range(weeks)]


@pytest.fixture
def history() -> History:
    return History()
