"""Checks of a model that expose false robustness, by name; a failed check is a flag on the cell's rows.

The engine runs the checks a threat names in ``Threat.model_checks`` on the first
``SANITY_EXAMPLES`` examples of each of its cells (after AutoAttack's ``checks.py``):

- ``gradient-masking``: the input gradient of the summed cross-entropy loss (ground-truth labels)
  is all zero for some example, or has a non-finite entry (e.g. a rounding step in front of the
  model), so gradient-based attacks cannot move it;
- ``nondeterministic-forward``: two forward passes disagree: a predicted class differs, or the
  logits divided by their L1 norm differ by more than ``FORWARD_TOLERANCE`` (a randomised model).

What each flag means for the reader of a result is ``results.sanity.FLAG_MEANINGS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustbench_bilateral.registry import Registry
from robustbench_bilateral.results.sanity import GRADIENT_MASKING, NONDETERMINISTIC_FORWARD

SANITY_EXAMPLES = 32
FORWARD_TOLERANCE = 1e-6

ModelCheck = Callable[[nn.Module, Tensor, Tensor], bool]
"""``check(model, images, labels)``: True when the model fails the check on that batch."""

MODEL_CHECKS: Registry[ModelCheck] = Registry("model check")


@MODEL_CHECKS.decorator(GRADIENT_MASKING)
def gradient_masked(model: nn.Module, images: Tensor, labels: Tensor) -> bool:
    """Whether some example's gradient of ``sum_i CE(model(x)_i, y_i)`` w.r.t. ``x`` is all zero or non-finite."""
    inputs = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(inputs), labels, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, inputs)
    per_example = gradient.flatten(1)
    return bool((~torch.isfinite(per_example).all(dim=1) | (per_example.abs().sum(dim=1) == 0)).any())


@MODEL_CHECKS.decorator(NONDETERMINISTIC_FORWARD)
def forward_disagrees(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> bool:
    """Whether two forward passes differ in a predicted class or in L1-normalised logits by more than
    ``FORWARD_TOLERANCE`` (``labels`` are not needed)."""
    with torch.no_grad():
        first, second = model(images), model(images)
    if not torch.equal(first.argmax(dim=-1), second.argmax(dim=-1)):
        return True
    scaled = [logits / (logits.abs().sum(dim=-1, keepdim=True) + 1e-10) for logits in (first, second)]
    return bool((scaled[0] - scaled[1]).abs().max() > FORWARD_TOLERANCE)


def model_flags(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    device: torch.device | str,
    checks: Iterable[str] | None = None,
) -> tuple[str, ...]:
    """Names of the ``checks`` (default: every registered one) that fail on the first ``SANITY_EXAMPLES``
    examples, in the order given; puts ``model`` in eval mode. An unknown name is an ``InputError``."""
    model.eval()
    images = images[:SANITY_EXAMPLES].to(device)
    labels = labels[:SANITY_EXAMPLES].to(device)
    names = MODEL_CHECKS.names() if checks is None else tuple(checks)
    return tuple(name for name in names if MODEL_CHECKS.get(name)(model, images, labels))
