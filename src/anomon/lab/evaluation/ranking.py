"""Rank metrics for scores against binary truth, without extra dependencies.

>>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
0.75
>>> roc_auc([1.0, 1.0], [0, 1])
0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def roc_auc(scores: Sequence[float], truth: Sequence[int]) -> float:
    """Area under the ROC curve (Mann-Whitney U; tied scores count one half)."""
    if len(scores) != len(truth):
        raise ValueError("scores and truth differ in length")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mid = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = mid
        i = j + 1
    positives = sum(1 for t in truth if t)
    negatives = len(truth) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("ROC AUC needs both classes")
    rank_sum = sum(r for r, t in zip(ranks, truth, strict=True) if t)
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def log_loss(probabilities: Sequence[float], truth: Sequence[int], eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of binary truth.

    >>> round(log_loss([0.9, 0.2], [1, 0]), 4)
    0.1643
    """
    total = 0.0
    for p, t in zip(probabilities, truth, strict=True):
        p = min(1.0 - eps, max(eps, p))
        total -= math.log(p) if t else math.log(1.0 - p)
    return total / len(truth)


def precision_at(scores: Sequence[float], truth: Sequence[int], share: float) -> float:
    """Share of positives among the top ``share`` of scores (ties broken by order).

    >>> precision_at([0.9, 0.8, 0.2, 0.1], [1, 0, 1, 0], 0.5)
    0.5
    """
    k = max(1, round(share * len(scores)))
    top = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
    return sum(truth[i] for i in top) / k
