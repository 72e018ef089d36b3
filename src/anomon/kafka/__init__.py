"""Kafka plumbing shared by the worker and the operator tools.

Topic names and creation, client security settings, the connection preflight,
the dead-letter record format and the log format. Nothing here processes events;
nothing here imports :mod:`anomon.worker` or :mod:`anomon.ops`.
"""

from anomon.kafka import framing

# every process that talks to Kafka exports the framed-record counts on /metrics
framing.register()
