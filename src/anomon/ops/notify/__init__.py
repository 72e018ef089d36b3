"""Alerts for people's tools: webhook payloads (Alertmanager, PagerDuty) and retry timing.

Pure: no HTTP and no Kafka here; ``anomon forward`` (:mod:`anomon.ops.forward`)
does the I/O.
"""
