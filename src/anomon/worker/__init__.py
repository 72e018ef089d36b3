"""The stream worker: the core engine run over the input topic.

It reads records, calls :mod:`anomon.core`, writes alerts, dead letters and
state, and counts. Business logic lives in the core, not here.
"""
