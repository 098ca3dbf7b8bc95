"""Variants compared with a baseline on the same examples: values, deltas with intervals and paired tests.

Rows are matched by setting (``results.series.setting_key``: dataset, split, threat with its
parameters, metric, ``n``, seed), so two settings are never merged, and by model group: the
checkpoints of one variant and recipe (``results.series.model_groups``) are replicates, their
value is the mean and ``std`` the sample standard deviation over checkpoints, their interval the
95 % t-interval over them (``results.series.pool``). With one checkpoint on each side the test is paired:

- accuracy: exact McNemar test on the per-example outcomes, with ``b`` = examples only the
  baseline gets right and ``c`` = examples only the variant gets right,
  ``p = min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)])`` (``p = 1`` when ``b + c = 0``); the
  delta ``d = (c - b) / n`` has the Wald interval of a paired difference,
  ``d +- 1.96 * sqrt(b + c - (c - b)^2 / n) / n``;
- perplexity: paired bootstrap over windows (``BOOTSTRAP_SAMPLES`` resamples of window indices
  drawn with seed 0): ``d* = log ppl_variant* - log ppl_baseline*`` and
  ``p = min(1, 2 * min(P[d* <= 0], P[d* >= 0]))``; the delta's interval is the 2.5th and 97.5th
  percentiles of ``ppl_variant* - ppl_baseline*``.

With several checkpoints (training seeds) on both sides the seeds are the unit
(``results.seeds``): paired t over equal seeds, else Welch's t, with the t-interval of the
difference and the standardised effect as ``effect_size`` (paired: Cohen's d_z, Welch: Cohen's d). Otherwise (one side replicated, the other not) there is
no test (``test`` empty, no p-value) and the delta's interval is the normal approximation
``d +- 1.96 * sqrt(s_v^2 + s_b^2)``, ``s = (high - low) / 3.92`` of each side's interval.

``p_holm`` is every p-value of one ``compare`` call Holm-corrected together (``results.seeds.holm``):
the family is the whole report.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import binomtest

from robustbench_bilateral.results.export import threat_labels
from robustbench_bilateral.results.row import ResultRow
from robustbench_bilateral.results.seeds import holm, seed_test
from robustbench_bilateral.results.series import ModelGroup, Point, model_groups, pool, seed_keys, setting_key
from robustbench_bilateral.results.stats import Z_95
from robustbench_bilateral.results.views import PRIMARY_METRICS

BOOTSTRAP_SAMPLES = 2000
Outcomes = Callable[[ResultRow], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Comparison:
    """One model group (``variant``: its label) in one setting against the baseline group in the same setting."""

    variant: str
    threat: str
    setting: str
    dataset: str
    split: str
    n: int
    seed: int
    metric: str
    value: float
    ci_low: float
    ci_high: float
    std: float | None
    n_checkpoints: int
    baseline_value: float | None
    baseline_ci_low: float | None
    baseline_ci_high: float | None
    delta: float | None
    delta_ci_low: float | None
    delta_ci_high: float | None
    test: str
    p_value: float | None
    sanity_flags: tuple[str, ...]
    effect_size: float | None = None
    p_holm: float | None = None

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


def paired_accuracy_delta(baseline_correct: np.ndarray, variant_correct: np.ndarray) -> tuple[float, float, float]:
    """``(d, low, high)``: the paired accuracy difference ``(c - b) / n`` and its Wald 95 % interval."""
    n = len(baseline_correct)
    only_baseline = int(np.sum(baseline_correct & ~variant_correct))
    only_variant = int(np.sum(~baseline_correct & variant_correct))
    delta = (only_variant - only_baseline) / n
    half = Z_95 * math.sqrt(max(0.0, only_baseline + only_variant - (only_variant - only_baseline) ** 2 / n)) / n
    return delta, delta - half, delta + half


def paired_bootstrap(baseline: dict[str, np.ndarray], variant: dict[str, np.ndarray]) -> tuple[float, float, float]:
    """``(p, low, high)``: the paired-bootstrap p-value of the log-perplexity difference over shared
    windows and the percentile 95 % interval of the perplexity difference; NaNs when the windows differ."""
    counts = baseline["counts"]
    if len(counts) != len(variant["counts"]) or not np.array_equal(counts, variant["counts"]):
        return math.nan, math.nan, math.nan
    index = np.random.default_rng(0).integers(0, len(counts), size=(BOOTSTRAP_SAMPLES, len(counts)))
    words = counts[index].sum(axis=1)
    log_variant, log_baseline = variant["nll"][index].sum(axis=1) / words, baseline["nll"][index].sum(axis=1) / words
    difference = log_variant - log_baseline
    p_value = float(min(1.0, 2 * min(np.mean(difference <= 0), np.mean(difference >= 0))))
    low, high = np.percentile(np.exp(log_variant) - np.exp(log_baseline), [2.5, 97.5])
    return p_value, float(low), float(high)


def compare(rows: Sequence[ResultRow], baseline: str, outcomes: Outcomes,
            groups: Mapping[str, ModelGroup] | None = None) -> list[Comparison]:
    """Comparisons of every model group (the baseline's included, with no delta) in every setting.

    ``groups`` maps checkpoint hashes to model groups (default: ``model_groups(rows)``); the
    baseline of a setting is the first group of variant ``baseline`` found there.
    """
    primary = [row for row in rows if row.metric in PRIMARY_METRICS]
    groups = groups if groups is not None else model_groups(primary)[0]
    labels = setting_labels(primary)
    settings: dict[tuple, dict[str, list[ResultRow]]] = {}
    for row in primary:
        settings.setdefault(setting_key(row), {}).setdefault(groups[row.checkpoint_sha256].label, []).append(row)
    comparisons = []
    for by_group in settings.values():
        reference = next((members for label, members in by_group.items()
                          if groups[members[0].checkpoint_sha256].variant == baseline), None)
        for members in by_group.values():
            against = None if members is reference else reference
            comparisons.append(_comparison(members, against, outcomes, labels, groups))
    tested = [index for index, comparison in enumerate(comparisons) if comparison.p_value is not None]
    for index, adjusted in zip(tested, holm([comparisons[index].p_value or 0.0 for index in tested])):
        comparisons[index] = replace(comparisons[index], p_holm=adjusted)
    return comparisons


def seed_values(point: Point, groups: Mapping[str, ModelGroup]) -> dict[int, float]:
    """``{training seed: value}`` of a pooled point's checkpoints (``series.seed_keys``)."""
    group = groups[point.rows[0].checkpoint_sha256]
    keys = seed_keys(group, [row.checkpoint_sha256 for row in point.rows])
    return {key: row.value for key, row in zip(keys, point.rows)}


def setting_labels(rows: Sequence[ResultRow]) -> dict[str, str]:
    """A column label per cell key: ``threat_labels``, plus dataset, split, ``n`` and seed where they
    differ between rows of one threat and metric (e.g. ``clean n=300`` and ``clean n=200``), so two
    settings never share a label."""
    labels = threat_labels(rows)
    extra: dict[str, list[str]] = {}
    for name in ("dataset", "split", "n", "seed"):
        by_threat: dict[tuple[str, str], set] = {}
        for row in rows:
            by_threat.setdefault((row.threat, row.metric), set()).add(getattr(row, name))
        for row in rows:
            if len(by_threat[(row.threat, row.metric)]) > 1:
                extra.setdefault(row.cell_key, []).append(f"{name}={getattr(row, name)}")
    return {key: " ".join([label, *extra.get(key, [])]) for key, label in labels.items()}


def _comparison(rows: list[ResultRow], reference: list[ResultRow] | None, outcomes: Outcomes,
                labels: Mapping[str, str], groups: Mapping[str, ModelGroup]) -> Comparison:
    label = groups[rows[0].checkpoint_sha256].label
    mine = pool(rows)
    values = [row.value for row in mine.rows]
    first = rows[0]
    base = pool(reference) if reference else None
    delta = delta_low = delta_high = p_value = effect = None
    test = ""
    if base is not None:
        delta = mine.value - base.value
        seeds = seed_test(seed_values(base, groups), seed_values(mine, groups)) if min(mine.k, base.k) > 1 else None
        if mine.k == 1 and base.k == 1:
            test, p_value, delta_low, delta_high = _paired_test(base.rows[0], mine.rows[0], outcomes)
        elif seeds is not None:
            test, p_value, delta_low, delta_high, effect = seeds.test, seeds.p_value, seeds.low, seeds.high, seeds.effect_size
        else:
            spread = Z_95 * math.hypot((mine.high - mine.low) / (2 * Z_95), (base.high - base.low) / (2 * Z_95))
            delta_low, delta_high = delta - spread, delta + spread
    return Comparison(
        variant=label, threat=first.threat, setting=labels[first.cell_key], dataset=first.dataset, split=first.split,
        n=first.n, seed=first.seed, metric=first.metric, value=mine.value, ci_low=mine.low, ci_high=mine.high,
        std=statistics.stdev(values) if len(values) > 1 else None, n_checkpoints=mine.k,
        baseline_value=None if base is None else base.value, baseline_ci_low=None if base is None else base.low,
        baseline_ci_high=None if base is None else base.high, delta=delta, delta_ci_low=delta_low,
        delta_ci_high=delta_high, test=test, p_value=p_value,
        sanity_flags=tuple(sorted({flag for row in rows for flag in row.flags})), effect_size=effect,
    )


def _paired_test(reference: ResultRow, row: ResultRow, outcomes: Outcomes) -> tuple[str, float, float, float]:
    """``(test, p, delta low, delta high)`` of two single checkpoints on the same examples."""
    if row.metric == "accuracy":
        baseline_correct, variant_correct = outcomes(reference)["correct"], outcomes(row)["correct"]
        _, low, high = paired_accuracy_delta(baseline_correct, variant_correct)
        return "mcnemar", mcnemar_p_value(baseline_correct, variant_correct), low, high
    return "paired-bootstrap", *paired_bootstrap(outcomes(reference), outcomes(row))
