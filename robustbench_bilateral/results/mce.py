"""Corruption error (CE) and mean corruption error (mCE) from stored accuracy rows.

Errors are top-1 error rates in [0, 1]: ``err = 1 - accuracy`` of a stored ``accuracy`` row.
For a model ``f``, a reference ``b``, corruptions ``c`` and the evaluated severities ``s``
(Hendrycks et al., ICLR 2019)::

    CE_c          = sum_s err_f(s, c) / sum_s err_b(s, c)
    relative CE_c = sum_s (err_f(s, c) - err_f(clean)) / sum_s (err_b(s, c) - err_b(clean))
    mCE           = mean_c CE_c          (relative mCE: mean_c relative CE_c)

Both are ratios (1 = as corruption-sensitive as the reference). A CE whose denominator is 0 is
NaN, and so is any mCE averaging it; views print NaN as ``n/a``. The mean runs over the
corruptions evaluated for the model that the reference also has (NaN if none).

Rules (``measure_name``, ``alexnet_profile``, ``check_alexnet``):

- The name ``mCE`` belongs to Hendrycks' measure, whose sums run over all five severities: only
  when every corruption in the mean has severities 1-5. Over fewer severities ``S`` the same
  formulas are reported as ``CE (sev. S)``, e.g. ``CE (sev. 1,3)``, never as mCE.
- The reference is AlexNet only for ImageNet-C itself (corruption rows pre-rendered from an
  ImageNet-C folder, or corruptions rendered on the fly at 224 px with the explicit opt-in
  ``--imagenet-c-approx``, named ``AlexNet (ImageNet-C approx.)``), and only over all five
  severities: ``ALEXNET_ERRORS[c]`` is AlexNet's error averaged over severities 1-5, so
  ``sum_s err_b(s, c) = 5 * ALEXNET_ERRORS[c]`` exactly; anything else is refused.
- Otherwise the reference is a baseline checkpoint's own rows (by default the softmax checkpoint
  of the same run), named in the column: ``mCE vs softmax``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from robustbench_bilateral.corruptions import CORRUPTIONS, GROUPS, SEVERITIES
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.errors import BilatError, InputError
from robustbench_bilateral.results.row import ResultRow

ALEXNET_MIN_SIZE = 224
"""Input side (px) that on-the-fly corruptions need for the approximate AlexNet reference (ImageNet-C's size)."""

ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}
"""AlexNet's ImageNet-C top-1 error per corruption, averaged over severities 1-5."""

ALEXNET_CLEAN_ERROR = 0.435
"""AlexNet's clean ImageNet top-1 error (43.5 %, ImageNet-C paper, Table 1), for relative mCE."""

HELD_OUT = "held-out"
COLUMN_GROUPS: tuple[str, ...] = (*GROUPS, HELD_OUT)
"""Summary groups: the 15 ImageNet-C corruptions by their group, the 4 held-out ones together."""


@dataclass(frozen=True)
class ErrorProfile:
    """Top-1 errors of one model: ``clean`` and ``corrupted[corruption][severity]``.

    ``all_severities``: the profile is a reference only for CEs over all five severities (AlexNet's).
    """

    name: str
    clean: float
    corrupted: Mapping[str, Mapping[int, float]]
    all_severities: bool = False


def _accuracy_rows(rows: Iterable[ResultRow], checkpoint_sha256: str) -> list[ResultRow]:
    return [row for row in rows if row.metric == "accuracy" and row.checkpoint_sha256 == checkpoint_sha256]


def error_profile(rows: Iterable[ResultRow], checkpoint_sha256: str) -> ErrorProfile:
    """The errors ``1 - accuracy`` of the checkpoint with content hash ``checkpoint_sha256``.

    Needs its clean accuracy row; corruption rows fill ``corrupted``, other threats are ignored.
    """
    mine = _accuracy_rows(rows, checkpoint_sha256)
    clean = [row for row in mine if row.threat_family is ThreatFamily.CLEAN]
    if not clean:
        raise BilatError(f"no clean accuracy row of checkpoint {checkpoint_sha256[:12]}: evaluate it clean in the same run")
    corrupted: dict[str, dict[int, float]] = {}
    for row in mine:
        if row.threat_family is ThreatFamily.CORRUPTION:
            corrupted.setdefault(row.params["corruption"], {})[int(row.params["severity"])] = 1.0 - row.value
    return ErrorProfile(clean[0].variant, 1.0 - clean[0].value, corrupted)


def alexnet_profile(approximate: bool = False) -> ErrorProfile:
    """AlexNet's reference errors: its severity-averaged error at each of the five severities, so each
    of its sums is exact; ``approximate`` names it for corruptions rendered on the fly."""
    corrupted = {name: dict.fromkeys(SEVERITIES, error) for name, error in ALEXNET_ERRORS.items()}
    name = "AlexNet (ImageNet-C approx.)" if approximate else "AlexNet (ImageNet-C)"
    return ErrorProfile(name, ALEXNET_CLEAN_ERROR, corrupted, all_severities=True)


def check_alexnet(imagenet_c: bool, severities: Iterable[int]) -> None:
    """An ``InputError`` unless the AlexNet reference applies: ImageNet-C rows (pre-rendered, or the
    on-the-fly opt-in) at all five severities."""
    if not imagenet_c:
        raise InputError("AlexNet's errors are ImageNet-C's: evaluate an ImageNet-C folder (--dataset imagefolder:DIR), "
                         "add --imagenet-c-approx for on-the-fly corruptions at 224 px, or compare with --baseline CHECKPOINT")
    missing = sorted(set(SEVERITIES) - set(severities))
    if missing:
        raise InputError(f"an AlexNet-normalised mCE needs all five severities, {', '.join(map(str, missing))} missing: "
                         "pass --severities 1,2,3,4,5 or compare with --baseline CHECKPOINT")


def measure_name(severities: Iterable[int]) -> str:
    """``mCE`` when the evaluated ``severities`` of every corruption are 1-5, else ``CE (sev. S)``."""
    evaluated = sorted(set(severities))
    return "mCE" if evaluated == list(SEVERITIES) else f"CE (sev. {','.join(map(str, evaluated))})"


def _mean(values: Sequence[float]) -> float:
    """Arithmetic mean; NaN for no values."""
    return sum(values) / len(values) if values else math.nan


def corruption_errors(model: ErrorProfile, reference: ErrorProfile, relative: bool = False) -> dict[str, float]:
    """``CE_c`` (or relative ``CE_c``) for each corruption of ``model`` that ``reference`` has.

    The sums run over the model's severities of ``c``; the reference must have each of them, and a
    reference with ``all_severities`` needs all five. A zero denominator gives NaN.
    """
    errors = {}
    for name, by_severity in model.corrupted.items():
        if name not in reference.corrupted:
            continue
        if reference.all_severities and sorted(by_severity) != list(SEVERITIES):
            raise BilatError(f"{reference.name} normalises only CEs over severities 1-5 but {model.name} has {name} at "
                             f"{sorted(by_severity)}: evaluate all five severities or compare with a baseline checkpoint")
        missing = sorted(set(by_severity) - set(reference.corrupted[name]))
        if missing:
            raise BilatError(
                f"reference {reference.name} has no {name} error at severities {missing}: evaluate it on the same severities"
            )
        shift_model = model.clean if relative else 0.0
        shift_reference = reference.clean if relative else 0.0
        numerator = sum(error - shift_model for error in by_severity.values())
        denominator = sum(reference.corrupted[name][severity] - shift_reference for severity in by_severity)
        errors[name] = numerator / denominator if denominator != 0 else math.nan
    return errors


def mean_corruption_error(model: ErrorProfile, reference: ErrorProfile, relative: bool = False) -> float:
    """``mCE = mean_c CE_c`` over the corruptions both profiles have; NaN if any ``CE_c`` is or if they share none."""
    return _mean(list(corruption_errors(model, reference, relative).values()))


def column_group(corruption: str) -> str:
    """Summary group of a corruption: ``held-out`` for the 4 extra ones, else its ImageNet-C group."""
    entry = CORRUPTIONS.get(corruption)
    return HELD_OUT if entry.held_out else entry.group


@dataclass(frozen=True)
class CorruptionSummary:
    """One checkpoint's accuracies under corruption and its mCE against a reference.

    ``group_accuracy[g]``: mean accuracy over the corruptions of summary group ``g`` and the
    evaluated severities; ``noise_accuracy[kind]``: mean accuracy over the strengths of an
    additive noise; ``mean_accuracy``: mean over all corruption cells; ``mce`` and
    ``relative_mce`` as in the module docstring.
    """

    checkpoint: str
    variant: str
    clean_accuracy: float
    group_accuracy: dict[str, float]
    noise_accuracy: dict[str, float]
    mean_accuracy: float
    mce: float
    relative_mce: float


def summarize(rows: Sequence[ResultRow], reference: ErrorProfile) -> list[CorruptionSummary]:
    """One summary per checkpoint of ``rows`` (in order of first appearance) against ``reference``."""
    checkpoints = dict.fromkeys(row.checkpoint_sha256 for row in rows)
    summaries = []
    for sha256 in checkpoints:
        mine = _accuracy_rows(rows, sha256)
        profile = error_profile(mine, sha256)
        groups: dict[str, list[float]] = {}
        noises: dict[str, list[float]] = {}
        for row in mine:
            if row.threat_family is ThreatFamily.CORRUPTION:
                groups.setdefault(column_group(row.params["corruption"]), []).append(row.value)
            elif row.threat_family is ThreatFamily.NOISE:
                noises.setdefault(row.params["kind"], []).append(row.value)
        corrupted = [value for values in groups.values() for value in values]
        summaries.append(
            CorruptionSummary(
                checkpoint=mine[0].checkpoint,
                variant=profile.name,
                clean_accuracy=1.0 - profile.clean,
                group_accuracy={group: _mean(groups[group]) for group in COLUMN_GROUPS if group in groups},
                noise_accuracy={kind: _mean(values) for kind, values in noises.items()},
                mean_accuracy=_mean(corrupted),
                mce=mean_corruption_error(profile, reference),
                relative_mce=mean_corruption_error(profile, reference, relative=True),
            )
        )
    return summaries
