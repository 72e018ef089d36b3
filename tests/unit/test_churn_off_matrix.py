"""Churn risk stays quiet on fast regular buyers when its first loss labels arrive.

Off the matrix (``bench/off_matrix.py``): fast regular buyers without visits.
Snapshots are taken mostly at orders, where the silence features are 0; while
they were standardised, a customer silent for a week stood 10-40 standard
deviations out, and the first loss labels sent such customers to a
probability of 1 (0.45 false alarms per 1000 customer-days at 1,000
customers, 0.32 at 2,000).
"""

from __future__ import annotations

import pytest
from tests.unit.conftest import bench_module

from anomon.core.detection_config import DetectionConfig
from anomon.lab.matrix import run_variant

pytestmark = pytest.mark.slow  # about 15 s

off_matrix = bench_module("off_matrix")


def test_churn_risk_raises_no_false_alarms_on_fast_regular_buyers() -> None:
    population = next(v for v in off_matrix.POPULATIONS if v.name == "shape-3-fast-absent")
    report = run_variant(population, DetectionConfig.load(off_matrix.MODELS), customers=1000).report
    assert report.kinds["churn_risk"].false_alarms_per_1000 <= 0.05
