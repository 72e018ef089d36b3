"""The Faust application, with settings tuned for a fast, quiet, loopback-safe start.

Faust's defaults are made for large clusters: a 60 s session timeout, a 60 s
rebalance timeout and a leader-election topic make the first group join of a
fresh worker take tens of seconds, and its web server binds every interface.
Here:

* the session timeout is ``session_timeout_s`` (6 s by default, the smallest
  Apache Kafka accepts by default) with a heartbeat every tenth of it, so a
  dead worker's partitions move within seconds. Tansu answers the first group
  join after half the session timeout: 30 s with Faust's defaults, 3 s here;
* the table manager does not sleep a second before registering the tables,
  and recovers tables to the real end of the changelog even on brokers whose
  ListOffsets answer is short (:class:`PromptTableManager`);
* no leader topic (no ``on_leader`` timers are used);
* the web server binds ``web_host`` (loopback by default), never ``0.0.0.0``;
  Faust's own debug pages (tables, router, graph, statistics) are off, so
  customer ids are not served over HTTP;
* topics are created beforehand by :func:`anomon.kafka.topics.ensure_topics`.
"""

from __future__ import annotations

import logging
import socket

import faust
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery

from anomon.kafka.ports import free_port
from anomon.kafka.security import faust_credentials
from anomon.settings import Settings
from anomon.worker.recovery import AccurateRecovery


class PromptTableManager(TableManager):
    """Faust's table manager, starting promptly and recovering to the real changelog end.

    Faust pauses a second before registering the tables, to give applications
    time to declare tables lazily; all of ours are declared when the app is
    built, so the pause only delays the first group join. Recovery is
    :class:`~anomon.worker.recovery.AccurateRecovery`.
    """

    logger = logging.getLogger("faust.tables.prompt_manager")

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = AccurateRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


def faust_broker_url(broker: str) -> str:
    """Faust's form of the broker URL (``kafka://`` is added where missing).

    >>> faust_broker_url("127.0.0.1:9092,127.0.0.1:9093")
    'kafka://127.0.0.1:9092;kafka://127.0.0.1:9093'
    """
    parts = [p.strip() for p in broker.replace(",", ";").split(";") if p.strip()]
    return ";".join(p if "://" in p else f"kafka://{p}" for p in parts)


def advertised_host(settings: Settings) -> str:
    """The host other workers reach this one's web server at (Faust's canonical URL).

    >>> advertised_host(Settings(web_host="127.0.0.1"))
    '127.0.0.1'
    >>> advertised_host(Settings(web_host="0.0.0.0")) == socket.gethostname()
    True
    """
    if settings.web_advertised_host:
        return settings.web_advertised_host
    if settings.web_host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return settings.web_host


def create_app(settings: Settings, partitions: int, web_port: int | None = None) -> faust.App:
    """A Faust app for ``settings`` whose topics have ``partitions`` partitions."""
    session = settings.session_timeout_s
    port = web_port if web_port is not None else settings.web_port
    if port == 0:
        port = free_port(settings.web_host)
    return faust.App(
        settings.app_id,
        broker=faust_broker_url(settings.broker),
        broker_credentials=faust_credentials(settings),
        autodiscover=False,
        datadir=str(settings.data_dir),
        store=settings.store,
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        topic_disable_leader=True,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=session,
        broker_heartbeat_interval=max(0.1, session / 10.0),
        broker_rebalance_timeout=max(15.0, 2 * session),
        broker_request_timeout=max(30.0, 3 * session),
        broker_commit_interval=1.0,
        broker_max_poll_interval=max(300.0, 10 * session),
        consumer_auto_offset_reset="earliest",
        stream_recovery_delay=0.0,
        stream_wait_empty=True,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=advertised_host(settings),
        web_port=port,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_tables_enabled=False,
        web_router_enabled=False,
        web_metrics_enabled=False,
        worker_redirect_stdouts=False,
        TableManager=PromptTableManager,
    )
