"""Synthetic customers and their events, with the ground truth of injected changes.

>>> from anomon.lab.synthetic import SyntheticConfig, generate, ground_truth
>>> cfg = SyntheticConfig(customers=100, days=120, seed=3)
>>> sum(1 for _ in generate(cfg)) > 1000, sorted({r["kind"] for r in ground_truth(cfg)})[:2]
(True, ['churn_risk', 'complaint_spike'])
"""

from anomon.lab.synthetic.changes import CHANGE_KINDS, TRUTH_KINDS, Change
from anomon.lab.synthetic.generator import (
    EVENT_TYPES,
    DatasetSummary,
    SyntheticConfig,
    generate,
    ground_truth,
    write_dataset,
)
from anomon.lab.synthetic.population import CustomerProfile

__all__ = [
    "CHANGE_KINDS",
    "EVENT_TYPES",
    "TRUTH_KINDS",
    "Change",
    "CustomerProfile",
    "DatasetSummary",
    "SyntheticConfig",
    "generate",
    "ground_truth",
    "write_dataset",
]
