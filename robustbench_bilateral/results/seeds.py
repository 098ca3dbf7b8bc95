"""Statistics over training seeds: the checkpoints of one model group are the sample, one value each.

With values ``x_1 .. x_k`` of one group in one setting (one per training seed):

- mean ``m = sum x_i / k``, sample standard deviation ``s = sqrt(sum (x_i - m)^2 / (k - 1))``;
- 95 % interval ``m +- t_{0.975, k-1} * s / sqrt(k)`` (Student's t quantile with ``k - 1``
  degrees of freedom; none for ``k = 1``).

A variant's difference to the baseline, ``d = m_variant - m_baseline``, is tested with the seeds
as the unit:

- **paired t** when both groups hold the same training seeds (``k >= 2``): the differences
  ``d_i = x_variant,i - x_baseline,i`` of equal seeds (equal seeds share the data order),
  ``t = mean(d) / (s_d / sqrt(k))`` with ``k - 1`` degrees of freedom, interval
  ``mean(d) +- t_{0.975, k-1} * s_d / sqrt(k)``;
- **Welch's t** otherwise (each group ``k >= 2``): ``se = sqrt(s_v^2 / k_v + s_b^2 / k_b)``,
  ``t = d / se`` with the Welch-Satterthwaite degrees of freedom
  ``(s_v^2/k_v + s_b^2/k_b)^2 / ((s_v^2/k_v)^2/(k_v-1) + (s_b^2/k_b)^2/(k_b-1))``, interval
  ``d +- t_{0.975, df} * se``.

The p-value is two-sided. Degenerate samples: no spread and ``d = 0`` (identical inputs) give
``p = 1``; no spread and ``d != 0`` give ``p = 0``.

Many cells tested at once are corrected with Holm's step-down method: sort the ``m`` p-values
ascending, ``p_(j)`` gets ``max_{i <= j} min(1, (m - i + 1) p_(i))``.

The standardised effect size is Cohen's d: ``d / s_pooled`` with
``s_pooled = sqrt(((k_v - 1) s_v^2 + (k_b - 1) s_b^2) / (k_v + k_b - 2))`` (paired: ``mean(d) / s_d``),
infinite when there is no spread.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import t as student_t

ALPHA = 0.05
PAIRED = "paired-t (seeds)"
WELCH = "welch-t (seeds)"


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample standard deviation and 95 % t-interval of ``k`` values (``std`` and the
    interval are None for ``k = 1``)."""

    mean: float
    std: float | None
    low: float | None
    high: float | None
    k: int


@dataclass(frozen=True)
class SeedTest:
    """A variant against the baseline over seeds: the test's name, the difference of means, its 95 %
    interval, the two-sided p-value and Cohen's d."""

    test: str
    delta: float
    low: float
    high: float
    p_value: float
    effect_size: float


def summarize(values: Sequence[float]) -> SeedSummary:
    """``SeedSummary`` of ``values`` (at least one)."""
    if not values:
        raise ValueError("summarize needs at least one value")
    k = len(values)
    mean = statistics.fmean(values)
    if k == 1:
        return SeedSummary(mean, None, None, None, 1)
    std = statistics.stdev(values)
    half = student_t.ppf(0.975, k - 1) * std / math.sqrt(k)
    return SeedSummary(mean, std, mean - half, mean + half, k)


def _t_result(test: str, delta: float, se: float, df: float, spread: float) -> SeedTest:
    """The test of ``delta`` with standard error ``se`` at ``df`` degrees of freedom; ``spread`` is
    the standard deviation Cohen's d divides by."""
    if se == 0:
        p_value = 1.0 if delta == 0 else 0.0
        return SeedTest(test, delta, delta, delta, p_value, 0.0 if delta == 0 else math.copysign(math.inf, delta))
    statistic = delta / se
    half = float(student_t.ppf(0.975, df)) * se
    p_value = float(min(1.0, 2 * student_t.sf(abs(statistic), df)))
    return SeedTest(test, delta, delta - half, delta + half, p_value, delta / spread)


def seed_test(baseline: Mapping[int, float], variant: Mapping[int, float]) -> SeedTest | None:
    """The seed-level test of ``variant`` against ``baseline`` (``{training seed: value}`` each):
    paired t when both hold the same seeds, else Welch's t; None when a side has one seed."""
    if len(baseline) < 2 or len(variant) < 2:
        return None
    if set(baseline) == set(variant):
        differences = [variant[seed] - baseline[seed] for seed in sorted(baseline)]
        k = len(differences)
        delta, spread = statistics.fmean(differences), statistics.stdev(differences)
        return _t_result(PAIRED, delta, spread / math.sqrt(k), k - 1, spread)
    mine, theirs = list(variant.values()), list(baseline.values())
    k_v, k_b = len(mine), len(theirs)
    var_v, var_b = statistics.variance(mine), statistics.variance(theirs)
    delta = statistics.fmean(mine) - statistics.fmean(theirs)
    a, b = var_v / k_v, var_b / k_b
    se = math.sqrt(a + b)
    df = (a + b) ** 2 / (a * a / (k_v - 1) + b * b / (k_b - 1)) if se > 0 else 1.0
    pooled = math.sqrt(((k_v - 1) * var_v + (k_b - 1) * var_b) / (k_v + k_b - 2))
    return _t_result(WELCH, delta, se, df, pooled)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given (see the module docstring)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda index: p_values[index])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def verdict(delta: float, p_adjusted: float, higher_is_better: bool) -> str:
    """``better`` / ``worse`` when the Holm-adjusted p-value is below ``ALPHA`` (by the sign of
    ``delta`` and the metric's direction), else ``no evidence``."""
    if p_adjusted >= ALPHA or delta == 0:
        return "no evidence"
    return "better" if (delta > 0) == higher_is_better else "worse"
