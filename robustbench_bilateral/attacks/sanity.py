"""Sanity checks that expose false robustness; a failed check is a flag on the result rows.

Checks of a model, run by the engine on the first ``SANITY_EXAMPLES`` examples of every
adversarial cell (after AutoAttack's ``checks.py``):

- ``gradient-masking``: the input gradient of the summed cross-entropy loss (ground-truth labels)
  is all zero for some example, or has a non-finite entry (e.g. a rounding step in front of the
  model), so gradient-based attacks cannot move it;
- ``nondeterministic-forward``: two forward passes disagree: a predicted class differs, or the
  logits divided by their L1 norm differ by more than ``FORWARD_TOLERANCE`` (a randomised model).

Checks across the stored accuracy rows of one checkpoint, dataset, split, ``n`` and seed:

- ``pgd>fgsm``: PGD (L-inf) correct count above FGSM's at the same ``eps``, space and labels
  (flag on the PGD cell);
- ``non-monotone-eps``: an attack's correct count above its count at a smaller ``eps`` with all
  other settings equal, clean accuracy counting as ``eps = 0`` (flag on the larger-eps cell).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustbench_bilateral.results.export import export_all
from robustbench_bilateral.results.row import ResultRow, canonical_json
from robustbench_bilateral.results.store import ResultStore

SANITY_EXAMPLES = 32
FORWARD_TOLERANCE = 1e-6

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


def gradient_masked(model: nn.Module, images: Tensor, labels: Tensor) -> bool:
    """Whether some example's gradient of ``sum_i CE(model(x)_i, y_i)`` w.r.t. ``x`` is all zero or non-finite."""
    inputs = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(inputs), labels, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, inputs)
    per_example = gradient.flatten(1)
    return bool((~torch.isfinite(per_example).all(dim=1) | (per_example.abs().sum(dim=1) == 0)).any())


def forward_disagrees(model: nn.Module, images: Tensor) -> bool:
    """Whether two forward passes differ in a predicted class or in L1-normalised logits by more than the tolerance."""
    with torch.no_grad():
        first, second = model(images), model(images)
    if not torch.equal(first.argmax(dim=-1), second.argmax(dim=-1)):
        return True
    scaled = [logits / (logits.abs().sum(dim=-1, keepdim=True) + 1e-10) for logits in (first, second)]
    return bool((scaled[0] - scaled[1]).abs().max() > FORWARD_TOLERANCE)


def model_flags(model: nn.Module, images: Tensor, labels: Tensor, device: torch.device | str) -> tuple[str, ...]:
    """Flags of the per-model checks on the first ``SANITY_EXAMPLES`` examples; puts ``model`` in eval mode."""
    model.eval()
    images = images[:SANITY_EXAMPLES].to(device)
    labels = labels[:SANITY_EXAMPLES].to(device)
    flags = []
    if gradient_masked(model, images, labels):
        flags.append(GRADIENT_MASKING)
    if forward_disagrees(model, images):
        flags.append(NONDETERMINISTIC_FORWARD)
    return tuple(flags)


def _evaluation(row: ResultRow) -> tuple:
    """What must be equal for two rows to be compared at all: checkpoint, data and seed."""
    return row.checkpoint_sha256, row.dataset, row.split, row.n, row.seed


def _setting(row: ResultRow, *, without: tuple[str, ...]) -> tuple:
    """The evaluation and the threat parameters except those named in ``without``."""
    params = {key: value for key, value in row.params.items() if key not in without}
    return *_evaluation(row), canonical_json(params)


def cross_cell_flags(rows: Iterable[ResultRow]) -> dict[str, tuple[str, ...]]:
    """Flags by cell key from comparing accuracy rows of different cells (see the module docstring)."""
    accuracy = [row for row in rows if row.metric == "accuracy"]
    flags: dict[str, list[str]] = defaultdict(list)
    fgsm = {_setting(row, without=()): row.n_correct for row in accuracy if row.threat == "fgsm"}
    for row in accuracy:
        if row.threat == "pgd":
            twin = fgsm.get(_setting(row, without=("steps", "step_size", "random_start", "batch_size")))
            if twin is not None and row.n_correct > twin:
                flags[row.cell_key].append(PGD_ABOVE_FGSM)
    clean = {_evaluation(row): row.n_correct for row in accuracy if row.threat == "clean"}
    series: dict[tuple, list[ResultRow]] = defaultdict(list)
    for row in accuracy:
        if row.threat != "clean":
            series[(row.threat, _setting(row, without=("eps",)))].append(row)
    for members in series.values():
        lowest = clean.get(_evaluation(members[0]))
        for row in sorted(members, key=lambda member: member.params["eps"]):
            if lowest is not None and row.n_correct > lowest:
                flags[row.cell_key].append(NON_MONOTONE_EPS)
            lowest = row.n_correct if lowest is None else min(lowest, row.n_correct)
    return {key: tuple(values) for key, values in flags.items()}


def flag_stored_rows(out: Path, run: str, rows: Iterable[ResultRow]) -> list[ResultRow]:
    """Store the cross-cell flags of ``rows`` on their rows in run ``run``, rebuild the run's exports,
    and return those rows as stored now."""
    rows = list(rows)
    with ResultStore.for_run(out, run) as store:
        store.add_flags(cross_cell_flags(rows))
        export_all(store, store.path.parent)
        return store.rows(row.cell_key for row in rows)
