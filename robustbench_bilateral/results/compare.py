"""Variants compared with a baseline on the same examples: aggregated values, deltas and paired tests.

Rows are matched across checkpoints by (dataset, split, threat with parameters, metric, n, seed).
Several checkpoints of one variant (training seeds) are aggregated as mean and sample standard
deviation. The paired test runs when the variant and the baseline each have one checkpoint:

- accuracy: exact McNemar test on the per-example outcomes, with ``b`` = examples only the
  baseline gets right and ``c`` = examples only the variant gets right,
  ``p = min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)])`` (``p = 1`` when ``b + c = 0``);
- perplexity: paired bootstrap over windows (``BOOTSTRAP_SAMPLES`` resamples of window indices
  drawn with seed 0): ``d* = log ppl_variant* - log ppl_baseline*`` and
  ``p = min(1, 2 * min(P[d* <= 0], P[d* >= 0]))``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from robustbench_bilateral.results.row import ResultRow
from robustbench_bilateral.results.views import PRIMARY_METRICS

BOOTSTRAP_SAMPLES = 2000
Outcomes = Callable[[ResultRow], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Comparison:
    """One variant under one threat: its value (mean over checkpoints), spread, and delta to the baseline."""

    variant: str
    threat: str
    threat_label: str
    metric: str
    value: float
    std: float | None
    n_checkpoints: int
    delta: float | None
    p_value: float | None
    test: str
    flags: tuple[str, ...]

    @property
    def higher_is_better(self) -> bool:
        return self.metric != "perplexity"


def mcnemar_p_value(baseline_correct: np.ndarray, variant_correct: np.ndarray) -> float:
    """Exact two-sided McNemar p-value of two paired boolean outcome vectors."""
    only_baseline = int(np.sum(baseline_correct & ~variant_correct))
    only_variant = int(np.sum(~baseline_correct & variant_correct))
    discordant = only_baseline + only_variant
    if discordant == 0:
        return 1.0
    return float(binomtest(min(only_baseline, only_variant), discordant, 0.5).pvalue)


def paired_bootstrap_p_value(baseline: dict[str, np.ndarray], variant: dict[str, np.ndarray]) -> float:
    """Two-sided paired-bootstrap p-value of the log-perplexity difference over shared windows."""
    counts = baseline["counts"]
    if len(counts) != len(variant["counts"]) or not np.array_equal(counts, variant["counts"]):
        return math.nan
    index = np.random.default_rng(0).integers(0, len(counts), size=(BOOTSTRAP_SAMPLES, len(counts)))
    words = counts[index].sum(axis=1)
    difference = (variant["nll"][index].sum(axis=1) - baseline["nll"][index].sum(axis=1)) / words
    return float(min(1.0, 2 * min(np.mean(difference <= 0), np.mean(difference >= 0))))


def compare(rows: Sequence[ResultRow], baseline: str, outcomes: Outcomes) -> list[Comparison]:
    """Comparisons of every variant (the baseline included, with no delta) under every threat."""
    primary = [row for row in rows if row.metric in PRIMARY_METRICS]
    groups: dict[tuple, dict[str, list[ResultRow]]] = {}
    for row in primary:
        key = (row.dataset, row.split, row.threat_label, row.metric, row.n, row.seed)
        groups.setdefault(key, {}).setdefault(row.variant, []).append(row)
    comparisons = []
    for by_variant in groups.values():
        reference = by_variant.get(baseline)
        for variant, matched in by_variant.items():
            comparisons.append(_comparison(variant, matched, None if variant == baseline else reference, outcomes))
    return comparisons


def _comparison(variant: str, rows: list[ResultRow], reference: list[ResultRow] | None, outcomes: Outcomes) -> Comparison:
    values = [row.value for row in rows]
    value = statistics.fmean(values)
    delta = p_value = None
    test = ""
    if reference:
        delta = value - statistics.fmean(row.value for row in reference)
        if len(rows) == 1 and len(reference) == 1:
            test, p_value = _paired_test(reference[0], rows[0], outcomes)
    first = rows[0]
    return Comparison(
        variant=variant,
        threat=first.threat,
        threat_label=first.threat_label,
        metric=first.metric,
        value=value,
        std=statistics.stdev(values) if len(values) > 1 else None,
        n_checkpoints=len(rows),
        delta=delta,
        p_value=p_value,
        test=test,
        flags=tuple(sorted({flag for row in rows for flag in row.flags})),
    )


def _paired_test(reference: ResultRow, row: ResultRow, outcomes: Outcomes) -> tuple[str, float | None]:
    if row.metric == "accuracy":
        return "mcnemar", mcnemar_p_value(outcomes(reference)["correct"], outcomes(row)["correct"])
    return "paired-bootstrap", paired_bootstrap_p_value(outcomes(reference), outcomes(row))
