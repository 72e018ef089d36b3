"""Errors raised while getting, starting or stopping a local broker."""

from __future__ import annotations


class BrokerError(RuntimeError):
    """Base class of every error in :mod:`brokers`."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be had on this machine: a program or a download is missing.

    Nothing was started. Callers may choose to skip work that needs this broker.
    """


class JavaNotFound(BrokerUnavailable):
    """No usable ``java`` (Apache Kafka 4.x needs Java 17 or newer)."""


class MavenNotFound(BrokerUnavailable):
    """No ``mvn`` to fetch the Apache Kafka jars with."""


class DownloadFailed(BrokerUnavailable):
    """Fetching the Apache Kafka jars from Maven Central failed."""


class BrokerStartFailed(BrokerError):
    """The broker process was started but did not become ready; the message has its log tail."""
