"""Memory per tracked customer, as the worker holds it (state bytes in the table).

Run as ``python -m bench.memory N``: builds N customers of synthetic history
(a few purchases, a visit, a payment each) through the engine, keeps each state
as the bytes the worker's table stores, and prints JSON with the peak RSS and
the bytes per customer.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time

from anomon.core.engine import Engine
from anomon.core.events import Interaction, Payment, Purchase
from anomon.core.timeutil import DAY, to_rfc3339


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(customers: int, seed: int = 1) -> dict[str, float]:
    """Build ``customers`` states and return memory figures."""
    rng = random.Random(seed)
    engine = Engine()
    table: dict[bytes, bytes] = {}
    warm = Purchase(event_id="warm", customer_id="warm", type="purchase",
                    ts=to_rfc3339(1.7e9), amount=1.0)
    engine.sweep(engine.process(None, warm).state, 1.8e9)  # load lazy imports first
    base_rss = _rss_kib()
    started = time.perf_counter()
    start = 1.70e9
    n = 0
    serialised = 0
    for c in range(customers):
        cid = f"c{c:08d}"
        state = None
        t = start + rng.uniform(0, 30) * DAY
        for _ in range(4):
            n += 1
            ev = Purchase(event_id=f"e{n}", customer_id=cid, type="purchase",
                          ts=to_rfc3339(t), amount=round(rng.lognormvariate(3.5, 0.5), 2))
            state = engine.process(state, ev).state
            t += rng.gammavariate(2.0, 7.0) * DAY
        n += 1
        state = engine.process(state, Interaction(event_id=f"e{n}", customer_id=cid,
                                                  type="interaction", ts=to_rfc3339(t),
                                                  kind="visit")).state
        n += 1
        state = engine.process(state, Payment(event_id=f"e{n}", customer_id=cid, type="payment",
                                              ts=to_rfc3339(t), amount=30.0,
                                              status="paid")).state
        raw = state.to_bytes()
        serialised += len(raw)
        table[cid.encode()] = raw
    rss = _rss_kib() - base_rss
    return {
        "customers": customers,
        "events": n,
        "seconds": round(time.perf_counter() - started, 2),
        "state_bytes_per_customer": round(serialised / customers, 1),
        "rss_bytes_per_customer": round(rss * 1024 / customers, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
