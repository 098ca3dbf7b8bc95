"""Which rows are one measurement: model groups (replicates pooled), settings and figure series.

A *model group* is the set of checkpoints of one variant whose training recipe is equal in
everything but the seed: their checkpoint metadata (``recipe``, ``model``, ``dataset``, ``task``,
``variant``, ``preprocessing``) when the file can be read, else their folder with ``seed<k>``
written ``seed*``. Checkpoints of one group are replicates and are pooled; two groups of one
variant are never pooled: each gets a label naming what differs, and a warning says so.

A pooled value is the mean over the group's checkpoints; with several its interval is the 95 %
t-interval over them (``results.seeds.summarize``: ``mean +- t_{0.975, k-1} s / sqrt(k)``, the
training seed as the unit, clipped to [0, 1] for accuracies); one checkpoint keeps its own
interval over examples.

A *setting* is everything a row's number depends on besides the model: dataset, split, threat,
its params without the ``DERIVED`` entries (``results.views.keyed_params``), metric, ``n`` and seed. A figure sweeps one parameter
(its x axis); every other differing part of the setting splits its lines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustbench_bilateral.checkpoint import read_metadata
from robustbench_bilateral.errors import BilatError
from robustbench_bilateral.results.row import ResultRow, canonical_json
from robustbench_bilateral.results.seeds import summarize
from robustbench_bilateral.results.views import folder_seed, keyed_params, param_text, seedless_folder

IDENTITY_KEYS = ("variant", "task", "dataset", "model", "recipe", "preprocessing")
"""Checkpoint metadata entries that replicates share (their seed, metrics and versions may differ)."""


@dataclass(frozen=True)
class ModelGroup:
    """Checkpoints of one variant and recipe: ``label`` is the variant, plus what differs from the
    variant's other groups when it has several."""

    variant: str
    label: str
    checkpoints: tuple[str, ...]
    seeds: Mapping[str, int | None] = field(default_factory=dict)
    """Training seed of each checkpoint (by SHA-256) where its metadata says."""


def seed_keys(group: ModelGroup, checkpoints: Sequence[str]) -> list[int]:
    """A key per checkpoint (SHA-256) of ``group``, in order: its training seed, or for a seed that
    is unknown or taken already ``-1 - index``, so seed-level tests pair it with nothing."""
    keys: list[int] = []
    for index, sha in enumerate(checkpoints):
        seed = group.seeds.get(sha)
        keys.append(seed if seed is not None and seed not in keys else -1 - index)
    return keys


@dataclass(frozen=True)
class Point:
    """One pooled value: the mean over ``k`` checkpoints and its interval (see the module docstring)."""

    value: float
    low: float
    high: float
    k: int
    rows: tuple[ResultRow, ...]


def recipe_identity(row: ResultRow) -> tuple[dict[str, Any], int | None]:
    """What replicates of ``row``'s checkpoint share, and its training seed: its metadata's
    ``IDENTITY_KEYS`` and ``seed`` when the file reads, else the variant, task and seedless folder
    and the folder's ``seed<k>``."""
    path = Path(row.checkpoint)
    if path.is_file():
        try:
            meta = read_metadata(path)
        except BilatError:
            meta = {}
        if meta:
            return {key: meta.get(key) for key in IDENTITY_KEYS}, meta.get("seed")
    return {"variant": row.variant, "task": row.task, "folder": seedless_folder(row.checkpoint)}, folder_seed(row.checkpoint)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b": leaf}``."""
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: value}


def model_groups(rows: Iterable[ResultRow]) -> tuple[dict[str, ModelGroup], list[str]]:
    """``({checkpoint sha256: its group}, warnings)``: checkpoints of one variant and task are split
    by recipe; one warning per variant and task with several groups, naming the entries that differ."""
    identities: dict[str, dict[str, Any]] = {}
    variants: dict[str, tuple[str, str]] = {}
    seeds: dict[str, int | None] = {}
    for row in rows:
        if row.checkpoint_sha256 not in identities:
            identity, seeds[row.checkpoint_sha256] = recipe_identity(row)
            identities[row.checkpoint_sha256] = _flatten(identity)
            variants[row.checkpoint_sha256] = (row.variant, row.task)
    by_variant: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for sha, identity in identities.items():
        by_variant[variants[sha]][canonical_json(identity)].append(sha)
    groups: dict[str, ModelGroup] = {}
    warnings = []
    for (variant, _), recipes in by_variant.items():
        flats = [identities[members[0]] for members in recipes.values()]
        differing = sorted(key for key in set().union(*flats) if len({canonical_json(flat.get(key)) for flat in flats}) > 1)
        for members, flat in zip(recipes.values(), flats):
            suffix = ", ".join(f"{key}={param_text(key, flat.get(key))}" for key in differing)
            group = ModelGroup(variant, f"{variant} ({suffix})" if suffix else variant, tuple(members),
                               {sha: seeds[sha] for sha in members})
            groups.update({sha: group for sha in members})
        if differing:
            warnings.append(f"{variant}: {len(recipes)} checkpoint recipes not pooled, they differ in {', '.join(differing)}")
    return groups, warnings


def setting_key(row: ResultRow) -> tuple:
    """Everything besides the model that ``row``'s number depends on (see the module docstring)."""
    return row.dataset, row.split, row.threat, canonical_json(keyed_params(row.params)), row.metric, row.n, row.seed


def pool(rows: Sequence[ResultRow]) -> Point:
    """The mean of ``rows`` (one per checkpoint) with the envelope of their intervals; a checkpoint
    measured twice in one setting (a store with an older cell key) counts with its last row."""
    last = list({row.checkpoint_sha256: row for row in rows}.values())
    if len(last) == 1:
        return Point(last[0].value, last[0].ci_low, last[0].ci_high, 1, tuple(last))
    summary = summarize([row.value for row in last])
    assert summary.low is not None and summary.high is not None
    low, high = summary.low, summary.high
    if last[0].metric == "accuracy":
        low, high = max(0.0, low), min(1.0, high)
    return Point(summary.mean, low, high, len(last), tuple(last))


@dataclass(frozen=True)
class Line:
    """One series of a figure: a model group in one setting, its points by x (ascending)."""

    group: ModelGroup
    describe: dict[str, Any]
    points: dict[float, Point]


def lines(rows: Iterable[ResultRow], groups: Mapping[str, ModelGroup], sweep: str,
          describe: Callable[[ResultRow], dict[str, Any]]) -> list[Line]:
    """The lines of rows swept over ``sweep``: rows with equal group label and ``describe(row)``
    (the setting without ``sweep``) form one line, in order of first appearance."""
    gathered: dict[tuple[str, str], dict[float, list[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    described: dict[tuple[str, str], tuple[ModelGroup, dict[str, Any]]] = {}
    for row in rows:
        group = groups[row.checkpoint_sha256]
        description = describe(row)
        key = (group.label, canonical_json(description))
        described.setdefault(key, (group, description))
        gathered[key][float(row.params[sweep])].append(row)
    return [Line(group, description, {x: pool(members) for x, members in sorted(gathered[key].items())})
            for key, (group, description) in described.items()]
