"""Sanity flags on result rows, and the checks across every stored row of a run.

A flag marks a number that may show false robustness. The engine puts the flags of its model
checks (``engine.model_checks``) on the rows of the cells it computes; the checks here compare
the stored accuracy rows of one evaluation (checkpoint, dataset, split, ``n`` and seed), whichever
command wrote them, and put a flag on every row of the flagged cell:

- ``pgd>fgsm``: PGD (L-inf) correct count above FGSM's at the same ``eps``, space and labels
  (flag on the PGD cell);
- ``non-monotone-eps``: an attack's correct count above its count at a smaller ``eps`` with all
  other settings equal, clean accuracy counting as ``eps = 0`` (flag on the larger-eps cell);
- ``above-chance``: an L-inf attack in pixel space at ``eps >= CHANCE_EPS`` (0.5) against the
  ground truth leaves accuracy above ``1 / K + CHANCE_MARGIN`` (0.1). At such a radius every
  image in [0, 1] can be moved to the uniform grey image 0.5 (no pixel is further than 0.5 from
  it), so a working attack can make all images identical: the model then predicts one class for
  all of them and accuracy is that class's share of the examples, ``1 / K`` on a balanced split
  (chance). The margin 0.1 allows for the first ``n`` examples of a balanced split not being
  balanced (one class's share has standard deviation ``sqrt((1/K)(1 - 1/K) / n)``, 0.03 at K = 10
  and n = 100, so 0.1 is more than 3 standard deviations there) and for an attack that stops
  close to grey. ``K`` is the ``n_classes`` the row records (both AutoAttacks record the model's
  output width), else one recorded by another row of the same checkpoint, else 2: chance is at
  most 1/2 for every classifier, so a row of unknown ``K`` is held to ``1/2 + 0.1`` (flag on that
  cell);
- ``white-box>gradient-free``: a gradient-free attack (``GRADIENT_FREE``: spsa, square) reaches an
  accuracy more than ``GRADIENT_FREE_MARGIN`` (0.002, AutoAttack's ``check_square_sr`` alpha)
  below the lowest accuracy of the white-box attacks (``WHITE_BOX``: fgsm, pgd, both AutoAttacks)
  at the same ``eps``, norm, space and labels: the gradients mislead the white-box attacks
  (gradient masking), so their numbers overstate robustness (flag on every white-box cell there).

The checks are monotone in the rows: a row added to a run can add flags, never remove one, so
flags stored after each command stay true as the run grows. ``store_flags_and_export`` stores
them after every evaluating command; a report recomputes them (``reconcile``) without writing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from robustbench_bilateral.results.export import export_all
from robustbench_bilateral.results.row import ResultRow, canonical_json
from robustbench_bilateral.results.store import ResultStore

GRADIENT_MASKING = "gradient-masking"
NONDETERMINISTIC_FORWARD = "nondeterministic-forward"
PGD_ABOVE_FGSM = "pgd>fgsm"
NON_MONOTONE_EPS = "non-monotone-eps"
ABOVE_CHANCE = "above-chance"
WHITE_BOX_ABOVE_GRADIENT_FREE = "white-box>gradient-free"

CROSS_CELL_FLAGS = (PGD_ABOVE_FGSM, NON_MONOTONE_EPS, ABOVE_CHANCE, WHITE_BOX_ABOVE_GRADIENT_FREE)
"""The flags this module computes from the stored rows (the others come from the model checks)."""

FLAG_MEANINGS = {
    GRADIENT_MASKING: "zero or non-finite input gradients: gradient attacks are unreliable, trust spsa/square",
    NONDETERMINISTIC_FORWARD: "two forward passes disagree: the model is randomised, attack its expectation",
    PGD_ABOVE_FGSM: "PGD accuracy above FGSM at the same eps: the attack did not converge",
    NON_MONOTONE_EPS: "accuracy rises with eps: the attack is too weak at the larger eps",
    ABOVE_CHANCE: "accuracy above chance (1/classes + 0.1) at an L-inf eps >= 0.5, where every image can be made grey: "
                  "the attack fails or gradients are masked",
    WHITE_BOX_ABOVE_GRADIENT_FREE: "a gradient-free attack (spsa, square) beats every white-box attack at the same eps by "
                                   "more than 0.002: gradient masking, the white-box numbers overstate robustness",
}

CHANCE_EPS = 0.5
CHANCE_MARGIN = 0.1
UNKNOWN_CLASSES = 2
GRADIENT_FREE = ("spsa", "square")
WHITE_BOX = ("fgsm", "pgd", "autoattack", "autoattack-torchattacks")
GRADIENT_FREE_MARGIN = 0.002
PGD_ONLY = ("steps", "step_size", "random_start", "batch_size")
"""PGD parameters FGSM lacks: without them a PGD setting is its FGSM twin's."""


def _evaluation(row: ResultRow) -> tuple:
    """What must be equal for two rows to be compared at all: checkpoint, data and seed."""
    return row.checkpoint_sha256, row.dataset, row.split, row.n, row.seed


def _setting(row: ResultRow, *, without: tuple[str, ...]) -> tuple:
    """The evaluation and the threat parameters except those named in ``without``."""
    params = {key: value for key, value in row.params.items() if key not in without}
    return *_evaluation(row), canonical_json(params)


def _radius(row: ResultRow) -> tuple:
    """The evaluation and where an attack acts: eps, norm, space and labels."""
    return *_evaluation(row), *(row.params.get(key) for key in ("eps", "norm", "space", "labels"))


def _n_correct(row: ResultRow) -> int:
    """The correct count of an accuracy row, which always carries one (only perplexity rows have none)."""
    assert row.n_correct is not None
    return row.n_correct


def _pgd_above_fgsm(accuracy: Sequence[ResultRow]) -> Iterable[str]:
    fgsm = {_setting(row, without=()): _n_correct(row) for row in accuracy if row.threat == "fgsm"}
    for row in accuracy:
        if row.threat == "pgd":
            twin = fgsm.get(_setting(row, without=PGD_ONLY))
            if twin is not None and _n_correct(row) > twin:
                yield row.cell_key


def _non_monotone_eps(accuracy: Sequence[ResultRow]) -> Iterable[str]:
    clean = {_evaluation(row): _n_correct(row) for row in accuracy if row.threat == "clean"}
    series: dict[tuple, list[ResultRow]] = defaultdict(list)
    for row in accuracy:
        if row.threat != "clean" and isinstance(row.params.get("eps"), (int, float)):
            series[(row.threat, _setting(row, without=("eps",)))].append(row)
    for members in series.values():
        lowest = clean.get(_evaluation(members[0]))
        for row in sorted(members, key=lambda member: member.params["eps"]):
            if lowest is not None and _n_correct(row) > lowest:
                yield row.cell_key
            lowest = _n_correct(row) if lowest is None else min(lowest, _n_correct(row))


def class_counts(rows: Iterable[ResultRow]) -> dict[str, int]:
    """The number of classes each checkpoint (by sha256) is recorded with: the largest ``n_classes`` of its rows."""
    counts: dict[str, int] = {}
    for row in rows:
        recorded = row.params.get("n_classes")
        if isinstance(recorded, int):
            counts[row.checkpoint_sha256] = max(recorded, counts.get(row.checkpoint_sha256, 0))
    return counts


def chance_limit(row: ResultRow, counts: Mapping[str, int]) -> float | None:
    """The highest accuracy ``row`` may show if the ``above-chance`` check applies to it (an L-inf
    pixel-space attack on the ground truth at ``eps >= CHANCE_EPS``): ``1 / K + CHANCE_MARGIN``
    with ``K`` from the row, its checkpoint's other rows, else ``UNKNOWN_CLASSES``; ``None`` if not."""
    params = row.params
    eps = params.get("eps")
    applies = (params.get("norm") == "Linf" and params.get("space") == "pixel" and params.get("labels") == "true"
               and isinstance(eps, (int, float)) and eps >= CHANCE_EPS)
    if not applies:
        return None
    recorded = params.get("n_classes")
    classes = recorded if isinstance(recorded, int) else counts.get(row.checkpoint_sha256, UNKNOWN_CLASSES)
    return 1 / classes + CHANCE_MARGIN


def _above_chance(accuracy: Sequence[ResultRow]) -> Iterable[str]:
    counts = class_counts(accuracy)
    for row in accuracy:
        limit = chance_limit(row, counts)
        if limit is not None and row.value > limit:
            yield row.cell_key


def _white_box_above_gradient_free(accuracy: Sequence[ResultRow]) -> Iterable[str]:
    white: dict[tuple, list[ResultRow]] = defaultdict(list)
    free: dict[tuple, float] = {}
    for row in accuracy:
        if row.threat in WHITE_BOX:
            white[_radius(row)].append(row)
        elif row.threat in GRADIENT_FREE:
            free[_radius(row)] = min(row.value, free.get(_radius(row), row.value))
    for radius, members in white.items():
        if radius in free and free[radius] < min(row.value for row in members) - GRADIENT_FREE_MARGIN:
            yield from (row.cell_key for row in members)


CHECKS = {
    PGD_ABOVE_FGSM: _pgd_above_fgsm,
    NON_MONOTONE_EPS: _non_monotone_eps,
    ABOVE_CHANCE: _above_chance,
    WHITE_BOX_ABOVE_GRADIENT_FREE: _white_box_above_gradient_free,
}
"""Each cross-cell flag and the check that yields the keys of the cells it flags, given the accuracy rows."""


def cross_cell_flags(rows: Iterable[ResultRow]) -> dict[str, tuple[str, ...]]:
    """Flags by cell key from comparing the accuracy rows of different cells (see the module docstring),
    each cell's flags in ``CROSS_CELL_FLAGS`` order."""
    accuracy = [row for row in rows if row.metric == "accuracy"]
    flags: dict[str, list[str]] = defaultdict(list)
    for flag, check in CHECKS.items():
        for key in dict.fromkeys(check(accuracy)):
            flags[key].append(flag)
    return {key: tuple(values) for key, values in flags.items()}


def missing_flags(rows: Sequence[ResultRow]) -> dict[str, tuple[str, ...]]:
    """The cross-cell flags ``rows`` imply that some row of the cell does not carry yet, by cell key."""
    implied = cross_cell_flags(rows)
    missing: dict[str, tuple[str, ...]] = {}
    for row in rows:
        lacking = tuple(flag for flag in implied.get(row.cell_key, ()) if flag not in row.flags)
        if lacking:
            missing[row.cell_key] = tuple(dict.fromkeys([*missing.get(row.cell_key, ()), *lacking]))
    return missing


def store_flags_and_export(store: ResultStore, out_dir: Path) -> list[ResultRow]:
    """Store the cross-cell flags of every row of ``store``, export it into ``out_dir`` and return its rows.

    The export runs under the store's write lock once no flag is missing, so what it shows is
    checked over every row stored then, even while other processes add cells to the run.
    """
    while True:
        with store.exclusive():
            rows = store.rows()
            missing = missing_flags(rows)
            if not missing:
                export_all(store, out_dir)
                return rows
        store.add_flags(missing)


@dataclass(frozen=True)
class Reconciled:
    """A run's rows with the flags they imply, and every cell whose stored flags differ: ``(a row of
    the cell as stored, implied cross-cell flags the store lacks, stored ones its rows no longer imply)``."""

    rows: list[ResultRow]
    differences: list[tuple[ResultRow, tuple[str, ...], tuple[str, ...]]]


def reconcile(rows: Sequence[ResultRow]) -> Reconciled:
    """``rows`` (one run's, as stored) with the cross-cell flags they imply: the stored flags in stored
    order, then the implied ones the store lacks; a stored flag the rows no longer imply stays (a flag
    is never dropped silently) and is named in ``differences``. Nothing is written; for a store whose
    flags agree with its rows, the rows come back unchanged."""
    implied = cross_cell_flags(rows)
    shown, differences, seen = [], [], set()
    for row in rows:
        own = implied.get(row.cell_key, ())
        lacking = tuple(flag for flag in own if flag not in row.flags)
        stale = tuple(flag for flag in row.flags if flag in CROSS_CELL_FLAGS and flag not in own)
        shown.append(replace(row, flags=(*row.flags, *lacking)))
        if (lacking or stale) and row.cell_key not in seen:
            seen.add(row.cell_key)
            differences.append((row, lacking, stale))
    return Reconciled(shown, differences)
