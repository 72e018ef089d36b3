"""The pure core: events in, alerts out, in event time. Nothing here knows of Kafka.

The data flows one way through these modules::

    events -> decoding -> state + features (population, segments)
           -> detectors/ (learners/) -> policy -> alerts

:mod:`.engine` wires them; :mod:`anomon.replay` runs the engine over a file and
:mod:`anomon.worker` runs it over a Kafka topic. The import contract in
``pyproject.toml`` ([tool.importlinter]) fails the build if a module here imports
anything above it (settings, kafka, worker, ops, cli, lab).
"""
