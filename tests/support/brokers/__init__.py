"""Real Kafka-compatible brokers on loopback, for tests, the demo and by hand.

:class:`TansuBroker` is the embedded broker (memory only, starts in a blink);
:class:`ApacheKafkaBroker` is Apache Kafka 4.x in KRaft mode, fetched from Maven
Central on first use. Both share one interface (:class:`Broker`)::

    with TansuBroker() as broker:
        app = faust.App("demo", broker=broker.url)   # kafka://127.0.0.1:PORT
        client = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)

The two broker classes are imported on first use, so that
``python -m brokers.tansu`` and ``python -m brokers.apache_kafka``
run their modules cleanly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from brokers.base import Broker
from brokers.errors import (
    BrokerError,
    BrokerStartFailed,
    BrokerUnavailable,
    DownloadFailed,
    JavaNotFound,
    MavenNotFound,
)
from brokers.kafka_libs import KAFKA_VERSION
from brokers.ports import LOOPBACK, free_port

if TYPE_CHECKING:
    from brokers.apache_kafka import ApacheKafkaBroker
    from brokers.tansu import TansuBroker

#: Module and class of every broker kind, by its :attr:`Broker.name`.
_KINDS = {"tansu": ("brokers.tansu", "TansuBroker"),
          "kafka": ("brokers.apache_kafka", "ApacheKafkaBroker")}

#: The broker kinds, by name.
BROKER_NAMES: tuple[str, ...] = tuple(_KINDS)


def broker_class(name: str) -> type[Broker]:
    """The class of broker kind ``name`` (``"tansu"`` or ``"kafka"``).

    >>> broker_class("kafka").__name__
    'ApacheKafkaBroker'
    """
    try:
        module, attribute = _KINDS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown broker {name!r}; known: {', '.join(_KINDS)}") from None
    kind: type[Broker] = getattr(importlib.import_module(module), attribute)
    return kind


def broker_named(name: str) -> Broker:
    """A new, unstarted broker of kind ``name`` (``"tansu"`` or ``"kafka"``).

    >>> broker_named("tansu").name
    'tansu'
    """
    return broker_class(name)()


def __getattr__(name: str) -> Any:
    for module, attribute in _KINDS.values():
        if name == attribute:
            return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BROKER_NAMES",
    "KAFKA_VERSION",
    "LOOPBACK",
    "ApacheKafkaBroker",
    "Broker",
    "BrokerError",
    "BrokerStartFailed",
    "BrokerUnavailable",
    "DownloadFailed",
    "JavaNotFound",
    "MavenNotFound",
    "TansuBroker",
    "broker_class",
    "broker_named",
    "free_port",
]
