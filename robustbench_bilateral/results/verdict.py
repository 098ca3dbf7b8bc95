"""The one-glance verdict: does each variant beat the baseline under each threat group, over seeds?

A *threat group* is a dataset's rows of one threat and metric (``clean``, ``corruption``, ``pgd``,
...); where a threat was measured at several context lengths each length is a group of its own
(``clean ctx=512``). For a variant's model group and the baseline's, the group's *common settings*
are the settings (``results.series.setting_key``) in which every checkpoint of both has a row.
Each checkpoint's score is the mean of its values over the common settings (for perplexities the
geometric mean ``exp(mean log ppl)``, so the cells of one group weigh alike whatever their scale); the scores of the two
groups, one per training seed, go into the seed-level test of ``results.seeds.seed_test`` (paired t
over equal seeds, else Welch's t). The p-values of all cells of the verdict table are
Holm-corrected together, and a cell reads ``better`` / ``worse`` when its corrected p-value is
below 0.05 (the direction from the metric: accuracy up, perplexity down), else ``no evidence``.
Groups with one checkpoint on a side have no seed-level test and no verdict (their per-example
McNemar or bootstrap test is in ``comparison.csv``).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from robustbench_bilateral.results.row import ResultRow
from robustbench_bilateral.results.seeds import holm, seed_test, verdict
from robustbench_bilateral.results.series import ModelGroup, seed_keys, setting_key
from robustbench_bilateral.results.views import PRIMARY_METRICS


@dataclass(frozen=True)
class Verdict:
    """One cell of the verdict table: a variant's model group against the baseline's in one threat group."""

    variant: str
    dataset: str
    threat_group: str
    metric: str
    verdict: str
    settings: int
    seeds: int
    baseline_seeds: int
    value: float
    baseline_value: float
    delta: float
    delta_ci_low: float
    delta_ci_high: float
    effect_size: float
    test: str
    p_value: float
    p_holm: float

    @property
    def higher_is_better(self) -> bool:
        return self.metric != "perplexity"


def threat_group_names(rows: Sequence[ResultRow]) -> dict[str, str]:
    """The threat group of each cell key: the threat's name, with `` ctx=<L>`` where that threat
    (in one dataset) was measured at several context lengths."""
    contexts: dict[tuple[str, str], set] = defaultdict(set)
    for row in rows:
        contexts[(row.dataset, row.threat)].add(row.params.get("context"))
    return {row.cell_key: row.threat if len(contexts[(row.dataset, row.threat)]) < 2
            else f"{row.threat} ctx={row.params.get('context')}" for row in rows}


def verdicts(rows: Sequence[ResultRow], groups: Mapping[str, ModelGroup], baseline: str) -> list[Verdict]:
    """Every verdict cell (see the module docstring), in order of first appearance of each
    threat group and variant; Holm-corrected over the whole table."""
    primary = [row for row in rows if row.metric in PRIMARY_METRICS]
    names = threat_group_names(primary)
    # (dataset, threat group, metric) -> model group (by its checkpoints) -> setting -> checkpoint sha -> value
    table: dict[tuple[str, str, str], dict[tuple[str, ...], dict[tuple, dict[str, float]]]] = {}
    for row in primary:
        members = groups[row.checkpoint_sha256].checkpoints
        by_group = table.setdefault((row.dataset, names[row.cell_key], row.metric), {})
        by_group.setdefault(members, {}).setdefault(setting_key(row), {})[row.checkpoint_sha256] = row.value
    cells: list[Verdict] = []
    for where, by_group in table.items():
        reference = next((members for members in by_group if groups[members[0]].variant == baseline), None)
        if reference is None:
            continue
        for members, settings in by_group.items():
            if members != reference:
                cell = _verdict(groups[members[0]], groups[reference[0]], settings, by_group[reference], where)
                cells += [cell] if cell is not None else []
    adjusted = holm([cell.p_value for cell in cells])
    return [replace(cell, p_holm=p, verdict=verdict(cell.delta, p, cell.higher_is_better)) for cell, p in zip(cells, adjusted)]


def _scores(settings: Mapping[tuple, Mapping[str, float]], common: Sequence[tuple], group: ModelGroup,
            metric: str) -> dict[int, float]:
    """``{training seed: score over the common settings}`` of ``group``'s checkpoints
    (``series.seed_keys``): the mean, for perplexity the geometric mean."""
    scores: dict[int, float] = {}
    for key, sha in zip(seed_keys(group, group.checkpoints), group.checkpoints):
        values = [settings[setting][sha] for setting in common]
        scores[key] = math.exp(statistics.fmean(map(math.log, values))) if metric == "perplexity" else statistics.fmean(values)
    return scores


def _verdict(mine: ModelGroup, theirs: ModelGroup, settings: Mapping[tuple, Mapping[str, float]],
             reference: Mapping[tuple, Mapping[str, float]], where: tuple[str, str, str]) -> Verdict | None:
    """The cell of ``mine`` against ``theirs`` (the baseline) over their common settings, before Holm;
    None without common settings or without a seed-level test."""
    common = [setting for setting in settings if setting in reference
              and set(settings[setting]) == set(mine.checkpoints) and set(reference[setting]) == set(theirs.checkpoints)]
    if not common:
        return None
    dataset, name, metric = where
    variant_scores, baseline_scores = _scores(settings, common, mine, metric), _scores(reference, common, theirs, metric)
    test = seed_test(baseline_scores, variant_scores)
    if test is None:
        return None
    return Verdict(variant=mine.label, dataset=dataset, threat_group=name, metric=metric, verdict="", settings=len(common),
                   seeds=len(variant_scores), baseline_seeds=len(baseline_scores),
                   value=statistics.fmean(variant_scores.values()), baseline_value=statistics.fmean(baseline_scores.values()),
                   delta=test.delta, delta_ci_low=test.low, delta_ci_high=test.high, effect_size=test.effect_size,
                   test=test.test, p_value=test.p_value, p_holm=test.p_value)
