"""anomon: streaming customer-change detection.

Events go one way: raw bytes -> validated event -> per-customer features ->
detectors -> alert policy -> alerts. Everything in this package outside
:mod:`anomon.stream` is plain Python that takes event time as input and knows
nothing of Kafka.
"""

__version__ = "0.1.0"
