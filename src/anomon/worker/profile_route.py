"""``GET /customers/{id}``: a customer's profile, answered by the worker that owns them.

Any worker can be asked. Faust's table route hashes the id like a keyed
producer does, finds the worker holding that partition of the customer table
(from the group's assignment), and forwards the request there; the owner
answers from its table (:func:`anomon.core.profile.customer_profile`). So the
answer is right for customers whose events are keyed by customer id, as the
input contract asks; for a mis-keyed customer the owner may answer 404.

Status codes: 200 with the profile, 404 for a customer the owner does not
hold, 503 while the group rebalances (no owner known yet).

The profile carries personal data: keep the web server on loopback or a
private network (``ANOMON_WEB_HOST``).
"""

from __future__ import annotations

import time
from typing import Any

import faust

from anomon.core.engine import Engine
from anomon.core.profile import customer_profile
from anomon.core.state import CustomerState
from anomon.worker.customer_table import CustomerTable
from anomon.worker.sweep import SweepClock

PATH = "/customers/{customer_id}"


def profile_now(clock: SweepClock, state: CustomerState) -> float:
    """The time the profile is judged at: the sweep's clock (wall, or newest event time)."""
    if clock.mode == "wall":
        return time.time()
    newest = clock.worker_newest
    return max(state.last_ts, newest) if newest is not None else state.last_ts


def add_profile_route(app: faust.App, customers: CustomerTable, engine: Engine,
                      clock: SweepClock) -> None:
    """Serve ``GET /customers/{customer_id}`` on the worker's web server."""

    async def customer_page(view: Any, request: Any, customer_id: str) -> Any:
        state = customers.load(customer_id)
        if state is None:
            return view.json({"error": "unknown customer", "customer_id": customer_id},
                             status=404)
        return view.json(customer_profile(engine, state, profile_now(clock, state)))

    routed = app.table_route(table=customers.table, match_info="customer_id")
    app.page(PATH, name="anomon-customer")(routed(customer_page))
