"""Attack schedules: which examples a gradient attack spends its passes on, and which iterate it returns.

- ``full``: every example is attacked and the final iterate is returned (torchattacks' loop).
- ``early-exit`` (AutoAttack's practice): an example the model misclassifies clean is not attacked
  (it counts as not robust as it is); within PGD an example misclassified at any iterate is broken:
  that iterate is its adversarial image and it leaves the batch, which shrinks to the examples
  still classified correctly. Only they cost further forward and backward passes.

The early-exit PGD follows torchattacks' PGD / PGDL2 step for step. Its random start is drawn for
the whole batch exactly as torchattacks draws it (same generator calls, same shapes), then the
attacked rows are taken, so every example starts where the ``full`` schedule starts it and follows
the same iterates until it breaks. The loss is the cross-entropy summed over the batch, so an
example's gradient does not depend on which others are still in the batch (torchattacks averages;
the step direction is the same: the L-inf step takes the sign, the L2 step normalises). Hence an
example correct under ``early-exit`` is correct at its final iterate, which is ``full``'s up to
float rounding (a shrinking batch on one intra-op thread sums in another order than the whole
batch): ``early-exit`` reports no higher robust accuracy than ``full`` on the same examples, but
for an example whose gradient sign or prediction rounding flips.
"""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F
from torch import nn

L2_DIVISION_EPS = 1e-10
"""Added to a gradient's L2 norm before dividing by it, as torchattacks' PGDL2 does."""


class Schedule(str, Enum):
    """The attack schedules a gradient attack's rows state in their ``schedule`` parameter."""

    EARLY_EXIT = "early-exit"
    FULL = "full"


def _per_example(values: torch.Tensor) -> torch.Tensor:
    """A per-example value (N,) shaped to broadcast over images (N, 1, ..., 1)."""
    return values.view(-1, *([1] * 3))


def random_start(images: torch.Tensor, eps: float, norm: str, generator: torch.Generator) -> torch.Tensor:
    """torchattacks' random start for the whole batch, clamped to [0, 1], drawn from ``generator`` in
    the order torchattacks draws from torch's global one.

    L-inf: ``x + u``, u uniform in [-eps, eps] per value. L2: ``x + r eps d / ||d||``, d standard
    normal per value, r uniform in [0, 1) per example.
    """
    if norm == "Linf":
        return (images + torch.empty_like(images).uniform_(-eps, eps, generator=generator)).clamp(0.0, 1.0)
    delta = torch.empty_like(images).normal_(generator=generator)
    lengths = _per_example(delta.flatten(1).norm(p=2, dim=1))
    radius = torch.zeros_like(lengths).uniform_(0, 1, generator=generator)
    return (images + delta * (radius / lengths * eps)).clamp(0.0, 1.0)


def step(adversarial: torch.Tensor, images: torch.Tensor, grad: torch.Tensor, eps: float, alpha: float,
         norm: str) -> torch.Tensor:
    """One PGD step from ``adversarial`` projected back onto the eps-ball around ``images`` and [0, 1].

    L-inf: ``x' = clip(x0 + clip(x + alpha sign(g) - x0, -eps, eps), 0, 1)``. L2: ``x + alpha g / (||g|| + 1e-10)``,
    then the difference to ``x0`` scaled by ``min(1, eps / ||x' - x0||)`` and clamped to [0, 1].
    """
    if norm == "Linf":
        moved = adversarial + alpha * grad.sign()
        return (images + (moved - images).clamp(-eps, eps)).clamp(0.0, 1.0)
    lengths = _per_example(grad.flatten(1).norm(p=2, dim=1) + L2_DIVISION_EPS)
    delta = adversarial + alpha * (grad / lengths) - images
    factor = torch.clamp(eps / delta.flatten(1).norm(p=2, dim=1), max=1.0)
    return (images + delta * _per_example(factor)).clamp(0.0, 1.0)


def early_exit_pgd(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, attacked: torch.Tensor, eps: float,
                   alpha: float, steps: int, start_random: bool, norm: str, generator: torch.Generator) -> torch.Tensor:
    """PGD under the ``early-exit`` schedule: the adversarial images of the batch ``images`` (N, C, H, W).

    ``attacked`` (N,) bool marks the examples to attack (those classified correctly clean); the
    others are returned as they are. An attacked example is returned at the first iterate
    ``x_t`` (t = 0 the start, ..., ``steps`` - 1) whose prediction differs from its label, else at
    ``x_steps``. Each iteration costs one forward pass of the examples still correct and one
    backward pass of those it does not break. The random start comes from ``generator``.
    """
    result = images.clone()
    start = random_start(images, eps, norm, generator) if start_random else images.clone()
    active = attacked.nonzero().squeeze(1)
    adversarial, origin, targets = start[active], images[active], labels[active]
    for _ in range(steps):
        if not len(active):
            return result
        adversarial.requires_grad_(True)
        logits = model(adversarial)
        broken = logits.argmax(-1) != targets
        result[active[broken]] = adversarial[broken].detach()
        kept = ~broken
        active, origin, targets = active[kept], origin[kept], targets[kept]
        if not len(active):
            return result
        loss = F.cross_entropy(logits[kept], targets, reduction="sum")
        grad = torch.autograd.grad(loss, adversarial)[0][kept]
        adversarial = step(adversarial.detach()[kept], origin, grad, eps, alpha, norm)
    result[active] = adversarial.detach()
    return result
