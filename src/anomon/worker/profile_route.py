"""``GET /customers/{id}``: a customer's profile, answered by the worker that owns them.

Any worker can be asked. The customer's partition is the one a keyed producer
picks for their id (murmur2, as Kafka's default partitioner); its owner is
known from the group's last assignment (:mod:`anomon.worker.assignor`: every
member learns every owner's profile address). The owner answers from its
store (:func:`anomon.core.profile.customer_profile`); any other worker forwards
the request there, once. So the answer is right for customers whose events are
keyed by customer id, as the input contract asks; for a mis-keyed customer the
owner may answer 404.

Status codes: 200 with the profile, 404 for a customer the owner does not
hold, 503 while the group rebalances or the owner cannot be reached.

The profile carries personal data: serve it on loopback or a private network
(``ANOMON_WEB_HOST``), or on an address of its own (``ANOMON_PROFILE_HOST`` and
``ANOMON_PROFILE_PORT``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
from aiohttp import web
from aiokafka.partitioner import murmur2

from anomon.core.engine import Engine
from anomon.core.profile import customer_profile
from anomon.core.state import CustomerState
from anomon.kafka.logs import kv
from anomon.worker.sweep import SweepClock

log = logging.getLogger("anomon.worker.profile")

PATH = "/customers/{customer_id}"
FORWARDED = "X-Anomon-Forwarded"
FORWARD_TIMEOUT_S = 10.0


def partition_of(customer_id: str, partitions: int) -> int:
    """The partition a keyed producer sends ``customer_id``'s events to.

    >>> partition_of("cust-00", 4) in range(4)
    True
    """
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


@dataclass
class ProfileSource:
    """What the route needs of the worker: its engine, clock, states and the owners map."""

    engine: Engine
    clock: SweepClock
    partitions: int
    #: this worker's profile address (``http://host:port``)
    address: str
    #: the customer's state if this worker holds it
    find: Callable[[str, int], CustomerState | None]
    #: partition -> owner's profile address, from the last assignment ({} while rebalancing)
    owners: Callable[[], dict[int, str]]


def profile_now(clock: SweepClock, state: CustomerState) -> float:
    """The time the profile is judged at: the sweep's clock (wall, or newest event time)."""
    if clock.mode == "wall":
        return time.time()
    newest = clock.worker_newest
    return max(state.last_ts, newest) if newest is not None else state.last_ts


def add_profile_route(app: web.Application, source: ProfileSource) -> None:
    """Serve ``GET /customers/{customer_id}`` on ``app``."""

    async def customer_page(request: web.Request) -> web.Response:
        customer_id = request.match_info["customer_id"]
        partition = partition_of(customer_id, source.partitions)
        owner = source.owners().get(partition)
        if owner and owner != source.address and FORWARDED not in request.headers:
            return await _forward(owner, customer_id)
        if not owner and FORWARDED not in request.headers:
            return web.json_response({"error": "no owner known yet, retry",
                                      "customer_id": customer_id}, status=503)
        state = source.find(customer_id, partition)
        if state is None:
            return web.json_response({"error": "unknown customer", "customer_id": customer_id},
                                     status=404)
        profile = customer_profile(source.engine, state, profile_now(source.clock, state))
        return web.json_response(profile)

    app.router.add_get(PATH, customer_page)


async def _forward(owner: str, customer_id: str) -> web.Response:
    url = f"{owner}/customers/{quote(customer_id, safe='')}"
    timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
                url, headers={FORWARDED: "1"}) as resp:
            body = await resp.read()
            return web.Response(body=body, status=resp.status,
                                content_type=resp.content_type or "application/json")
    except (aiohttp.ClientError, TimeoutError) as err:
        log.info("profile request not forwarded %s", kv(owner=owner, error=repr(err)[:200]))
        return web.json_response({"error": "owner unreachable, retry"}, status=503)
