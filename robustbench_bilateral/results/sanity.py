"""Sanity flags on result rows, and the checks across the stored rows of one evaluation.

A flag marks a number that may show false robustness. The engine puts the flags of its model
checks (``engine.model_checks``) on the rows of the cells it computes; the checks here compare
the stored accuracy rows of one checkpoint, dataset, split, ``n`` and seed:

- ``pgd>fgsm``: PGD (L-inf) correct count above FGSM's at the same ``eps``, space and labels
  (flag on the PGD cell);
- ``non-monotone-eps``: an attack's correct count above its count at a smaller ``eps`` with all
  other settings equal, clean accuracy counting as ``eps = 0`` (flag on the larger-eps cell).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from robustbench_bilateral.results.export import export_all
from robustbench_bilateral.results.row import ResultRow, canonical_json
from robustbench_bilateral.results.store import ResultStore

GRADIENT_MASKING = "gradient-masking"
NONDETERMINISTIC_FORWARD = "nondeterministic-forward"
PGD_ABOVE_FGSM = "pgd>fgsm"
NON_MONOTONE_EPS = "non-monotone-eps"

FLAG_MEANINGS = {
    GRADIENT_MASKING: "zero or non-finite input gradients: gradient attacks are unreliable, trust spsa/square",
    NONDETERMINISTIC_FORWARD: "two forward passes disagree: the model is randomised, attack its expectation",
    PGD_ABOVE_FGSM: "PGD accuracy above FGSM at the same eps: the attack did not converge",
    NON_MONOTONE_EPS: "accuracy rises with eps: the attack is too weak at the larger eps",
}


def _evaluation(row: ResultRow) -> tuple:
    """What must be equal for two rows to be compared at all: checkpoint, data and seed."""
    return row.checkpoint_sha256, row.dataset, row.split, row.n, row.seed


def _setting(row: ResultRow, *, without: tuple[str, ...]) -> tuple:
    """The evaluation and the threat parameters except those named in ``without``."""
    params = {key: value for key, value in row.params.items() if key not in without}
    return *_evaluation(row), canonical_json(params)


def _n_correct(row: ResultRow) -> int:
    """The correct count of an accuracy row, which always carries one (only perplexity rows have none)."""
    assert row.n_correct is not None
    return row.n_correct


def cross_cell_flags(rows: Iterable[ResultRow]) -> dict[str, tuple[str, ...]]:
    """Flags by cell key from comparing accuracy rows of different cells (see the module docstring)."""
    accuracy = [row for row in rows if row.metric == "accuracy"]
    flags: dict[str, list[str]] = defaultdict(list)
    fgsm = {_setting(row, without=()): row.n_correct for row in accuracy if row.threat == "fgsm"}
    for row in accuracy:
        if row.threat == "pgd":
            twin = fgsm.get(_setting(row, without=("steps", "step_size", "random_start", "batch_size")))
            if twin is not None and _n_correct(row) > twin:
                flags[row.cell_key].append(PGD_ABOVE_FGSM)
    clean = {_evaluation(row): row.n_correct for row in accuracy if row.threat == "clean"}
    series: dict[tuple, list[ResultRow]] = defaultdict(list)
    for row in accuracy:
        if row.threat != "clean":
            series[(row.threat, _setting(row, without=("eps",)))].append(row)
    for members in series.values():
        lowest = clean.get(_evaluation(members[0]))
        for row in sorted(members, key=lambda member: member.params["eps"]):
            if lowest is not None and _n_correct(row) > lowest:
                flags[row.cell_key].append(NON_MONOTONE_EPS)
            lowest = row.n_correct if lowest is None else min(lowest, _n_correct(row))
    return {key: tuple(values) for key, values in flags.items()}


def flag_stored_rows(out: Path, run: str, rows: Iterable[ResultRow]) -> list[ResultRow]:
    """Store the cross-cell flags of ``rows`` on their rows in run ``run``, rebuild the run's exports,
    and return those rows as stored now."""
    rows = list(rows)
    with ResultStore.for_run(out, run) as store:
        store.add_flags(cross_cell_flags(rows))
        export_all(store, store.path.parent)
        return store.rows(row.cell_key for row in rows)
