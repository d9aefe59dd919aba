"""Welch's t interval for a difference of two means, with Student's t quantile computed here
(the regularized incomplete beta function by its continued fraction, then bisection), so no
statistics library is needed and the interval is exact for small groups as well as large ones."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    difference: float
    low: float
    high: float
    df: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def _beta_fraction(a: float, b: float, x: float) -> float:
    # Lentz's method for the continued fraction of the incomplete beta function
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)), -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return f


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(value: float, df: float) -> float:
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + value * value))
    return 1.0 - tail if value >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The value below which a share `p` (0.5 < p < 1) of Student's t with `df` degrees lies."""
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def welch(n1: int, sum1: float, squares1: float, n2: int, sum2: float, squares2: float, level: float = 0.95) -> Interval | None:
    """The interval for mean1 - mean2 from each group's count, sum and sum of squares; None when a
    group has fewer than two members or neither varies."""
    if n1 < 2 or n2 < 2:
        return None
    mean1, mean2 = sum1 / n1, sum2 / n2
    var1 = max(squares1 - n1 * mean1 * mean1, 0.0) / (n1 - 1)
    var2 = max(squares2 - n2 * mean2 * mean2, 0.0) / (n2 - 1)
    a, b = var1 / n1, var2 / n2
    if a + b == 0:
        return None
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    half = t_quantile(0.5 + level / 2.0, df) * math.sqrt(a + b)
    diff = mean1 - mean2
    return Interval(diff, diff - half, diff + half, df)
