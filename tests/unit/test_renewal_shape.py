"""The decline CUSUM weighs completed gaps by an established rhythm, and only by one."""

from __future__ import annotations

import math

from anomon.core.detectors.renewal import ESTABLISHED, POISSON_LOG_VAR, renewal

PRIOR = (1.5, 30.0)
SHAPE_4_LOG_VAR = 0.2838  # trigamma(4): log gaps of a gamma shape 4 rhythm


def test_a_regular_rhythm_weighs_its_gaps_by_its_own_shape() -> None:
    model = renewal(n=12, mu=math.log(10.0), var=SHAPE_4_LOG_VAR, prior=PRIOR)
    assert model.rhythm_shape >= ESTABLISHED > model.shape


def test_a_poisson_or_short_rhythm_keeps_the_cautious_tail_shape() -> None:
    poisson = renewal(n=12, mu=math.log(10.0), var=POISSON_LOG_VAR, prior=PRIOR)
    assert poisson.rhythm_shape == poisson.shape
    newcomer = renewal(n=0, mu=0.0, var=0.0, prior=PRIOR)
    assert newcomer.rhythm_shape == newcomer.shape
