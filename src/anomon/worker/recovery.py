"""Table recovery that reads the changelog to its real end, without waiting on the fetcher.

Faust restores a table by reading each changelog partition up to the end
offset the broker reports through ListOffsets. Some Kafka-compatible brokers
(Tansu 0.6 among them) answer there with an offset short of the last record
once records were written in batches of several (the usual case: Faust's
producer batches; five records sent as one batch gave an end offset of 1), so
recovery stopped early and a restarted worker lost the newest customer states.
The high watermark carried by every Fetch response is right on every broker we
run on, so :class:`AccurateRecovery` takes the larger of the two
(:func:`log_offsets`). On Apache Kafka both agree.

Both offset look-ups also go through a short-lived client of their own: on the
worker's consumer they queue behind its long-polling fetch (1.5 s in Faust),
which delayed every start by up to that much.
"""

from __future__ import annotations

import logging
from collections import Counter

from aiokafka.structs import TopicPartition
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types import TP
from faust.types.transports import ConsumerT

from anomon.kafka.offsets import log_offsets
from anomon.kafka.topics import bootstrap_servers

log = logging.getLogger("anomon.worker.recovery")


class AccurateRecovery(Recovery):
    """Faust's recovery with changelog offsets from :func:`log_offsets`."""

    async def _offsets(self, tps: set[TP]) -> tuple[dict[TP, int], dict[TP, int]]:
        broker = ";".join(str(url) for url in self.app.conf.broker)
        by_key = {TopicPartition(tp.topic, tp.partition): tp for tp in tps}
        auth = credentials_to_aiokafka_auth(self.app.conf.broker_credentials,
                                            self.app.conf.ssl_context)
        earliest, ends = await log_offsets(bootstrap_servers(broker), by_key, **auth)
        return ({by_key[tp]: v for tp, v in earliest.items()},
                {by_key[tp]: v for tp, v in ends.items()})

    async def _build_highwaters(
        self, consumer: ConsumerT, tps: set[TP], destination: Counter[TP], title: str
    ) -> None:
        _, ends = await self._offsets(tps)
        # Faust's convention: the offset of the last record (-1 for an empty partition)
        highwaters = {tp: end - 1 for tp, end in ends.items()}
        if highwaters:
            self.log.info("Highwater for %s changelog partitions:\n%s", title,
                          self._highwater_logtable(highwaters, title=title))
        destination.clear()
        destination.update(highwaters)

    async def _build_offsets(
        self, consumer: ConsumerT, tps: set[TP], destination: Counter[TP], title: str
    ) -> None:
        earliest, _ = await self._offsets(tps)
        for tp in tps:
            # Faust's convention again: one before the first offset to read
            first = earliest[tp] - 1 if tp in earliest else None
            last = destination.get(tp)
            if first is None:
                destination[tp] = -1 if last is None else last
            else:
                destination[tp] = first if last is None else max(last, first)
