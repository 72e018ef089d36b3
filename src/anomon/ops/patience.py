"""Waiting for a broker that went away: back off, say so once, give up in the end.

``anomon tail`` and ``anomon forward`` keep reading while the broker restarts, and
exit with one line naming the fix when it stays away longer than they accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from anomon.exits import error_text
from anomon.kafka.logs import kv
from anomon.kafka.topics import TopicSetupError, bootstrap_servers

log = logging.getLogger("anomon.ops.patience")

GIVE_UP_S = 60.0
BACKOFF_CAP_S = 8.0
PROBE_EVERY_S = 2.0


class BrokerAway(RuntimeError):
    """The broker could not be reached for longer than the caller accepts."""


class OncePer(logging.Filter):
    """Let each message template through at most once per ``seconds`` (for chatty clients).

    >>> f = OncePer(60.0)
    >>> r = logging.LogRecord("aiokafka", logging.ERROR, "", 0, "Unable connect to %s", ("n",),
    ...                       None)
    >>> f.filter(r), f.filter(r)
    (True, False)
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.last: dict[object, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = (record.name, record.msg)
        if now - self.last.get(key, -1e18) < self.seconds:
            return False
        self.last[key] = now
        return True


def quiet_kafka_client_logs(seconds: float = 30.0) -> None:
    """Each aiokafka complaint at most once per ``seconds`` (a lost broker is retried often)."""
    for name in ("aiokafka", "aiokafka.conn", "aiokafka.client", "aiokafka.consumer.fetcher",
                 "aiokafka.consumer.group_coordinator"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, OncePer) for f in logger.filters):
            logger.addFilter(OncePer(seconds))


async def reachable(broker: str, timeout_s: float = 1.0) -> bool:
    """Whether any bootstrap server of ``broker`` accepts a TCP connection now."""
    for server in bootstrap_servers(broker).split(","):
        host, _, port = server.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]") or "127.0.0.1", int(port)), timeout_s)
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


class Patience:
    """Back-off delays while a broker is away, and when to give up.

    >>> p = Patience(give_up_s=10.0, now=lambda: 0.0)
    >>> [p.next_delay() for _ in range(6)]
    [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    """

    def __init__(self, give_up_s: float = GIVE_UP_S,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.give_up_s = give_up_s
        self.now = now
        self.away_since: float | None = None
        self.delay = 0.5

    def away(self) -> float:
        """Note the broker is away; returns for how long (seconds)."""
        if self.away_since is None:
            self.away_since = self.now()
        return self.now() - self.away_since

    def back(self) -> None:
        self.away_since = None
        self.delay = 0.5

    @property
    def exhausted(self) -> bool:
        return self.away_since is not None and self.now() - self.away_since >= self.give_up_s

    def next_delay(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, BACKOFF_CAP_S)
        return delay


async def check_broker(broker: str, patience: Patience) -> None:
    """While nothing arrives: is the broker still there? Give up after the patience runs out."""
    if await reachable(broker):
        if patience.away_since is not None:
            log.warning("broker back %s", kv(broker=bootstrap_servers(broker)))
        patience.back()
        return
    away = patience.away()
    if patience.exhausted:
        raise BrokerAway(f"broker {bootstrap_servers(broker)} unreachable for "
                         f"{away:.0f} s")
    if away < PROBE_EVERY_S:
        log.warning("broker unreachable, waiting %s", kv(
            broker=bootstrap_servers(broker), gives_up_in_s=round(patience.give_up_s)))


async def wait_for_broker(broker: str, patience: Patience) -> None:
    """Return once ``broker`` accepts connections, backing off meanwhile; or raise BrokerAway."""
    while not await reachable(broker):
        away = patience.away()
        if patience.exhausted:
            raise BrokerAway(f"broker {bootstrap_servers(broker)} unreachable for {away:.0f} s")
        delay = patience.next_delay()
        log.warning("broker unreachable, retrying %s", kv(
            broker=bootstrap_servers(broker), retry_in_s=delay,
            gives_up_in_s=round(patience.give_up_s - away)))
        await asyncio.sleep(delay)
    patience.back()


async def start_consumer(make: Callable[[], AIOKafkaConsumer], broker: str, patience: Patience,
                         before: Callable[[], Awaitable[object]] | None = None,
                         stop: asyncio.Event | None = None) -> AIOKafkaConsumer | None:
    """A started consumer from ``make``, retrying with back-off while the broker is away.

    ``before`` runs first on each try (e.g. creating topics). Raises :class:`BrokerAway`
    once ``patience`` runs out; ``None`` when ``stop`` was set meanwhile.
    """
    while True:
        consumer = make()
        try:
            if before is not None:
                await before()
            await consumer.start()
            patience.back()
            return consumer
        except (KafkaError, OSError, TopicSetupError) as err:
            await consumer.stop()
            away = patience.away()
            if patience.exhausted:
                raise BrokerAway(f"broker {bootstrap_servers(broker)} unreachable for "
                                 f"{away:.0f} s ({error_text(err)})") from err
            delay = patience.next_delay()
            log.warning("broker unreachable, retrying %s", kv(
                broker=bootstrap_servers(broker), retry_in_s=delay,
                gives_up_in_s=round(patience.give_up_s - away)))
            if stop is None:
                await asyncio.sleep(delay)
                continue
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return None
            except TimeoutError:
                pass
