"""anomon: streaming customer-change detection.

Events go one way: raw bytes -> validated event -> per-customer features ->
detectors -> alert policy -> alerts. The layers, each importing only those below:

=============  ==============================================================
package        what it holds
=============  ==============================================================
``core``       the pure engine: events, state, features, detectors, policy
``lab``        synthetic customers, evaluation, quality scoring (offline)
``replay``     the engine over a file, in event time
``settings``   ``ANOMON_*`` configuration
``kafka``      topics, client security, preflight, dead-letter format, logs
``worker``     the engine over the input topic: state, outputs, sweep, metrics
``ops``        operator tools: produce, tail, forward, dlq, the demo
``cli``        the ``anomon`` command
=============  ==============================================================

Only :mod:`anomon.kafka`, :mod:`anomon.worker` and :mod:`anomon.ops` talk to a broker.
"""

__version__ = "0.1.0"
