"""Kafka adapters around the pure core: the only part of anomon that talks to a broker.

========================  ==========================================================
module                    what it holds
========================  ==========================================================
:mod:`.worker`            the Faust agent, sweep timer and web routes; ``run_worker``
:mod:`.app`               the Faust app factory, tuned for a fast, loopback-safe start
:mod:`.topics`            topic names, broker URLs, creating topics beforehand
:mod:`.customer_table`    the changelog-backed table of customer states
:mod:`.recovery`          table recovery that reads the changelog to its real end
:mod:`.sweep`             who is due for the silence sweep, and the sweep's clock
:mod:`.dead_letter`       dead-letter records (JSON value, Kafka Connect style headers)
:mod:`.stats`             the counters behind ``/stats`` and Prometheus
:mod:`.checkpoint`        saving and loading the engine's shared models
:mod:`.logs`              ``key=value`` logs; hashed customer references
:mod:`.producer`          sending event dicts to the input topic (``anomon produce``)
:mod:`.tail`              following the alerts topic (``anomon tail``)
:mod:`.demo`              broker + worker + simulated customers (``anomon demo``)
========================  ==========================================================

Import the submodules directly; this package imports nothing heavy itself.
"""
