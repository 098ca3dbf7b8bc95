"""Where an attack's perturbation lives: pixel space (default) or the paper group's normalised space.

- ``pixel``: inputs in [0, 1]; perturbation bounded by ``eps`` in pixel units; adversarial
  images clamped to [0, 1] (RobustBench's convention). The model normalises inside ``forward``.
- ``normalized``: the perturbation is bounded by ``eps`` in normalised units
  ``z = (x - mean) / std`` and the result is not clamped to valid pixels, as in the paper group's
  scripts. torchattacks always clamps its iterates to [0, 1], so the attack runs on
  ``u = (z + R) / 2R`` with ``R = 64``: an affine map that keeps every reachable ``z`` strictly
  inside [0, 1], so that clamp never binds, with ``eps`` and step sizes divided by ``2R``. Sign
  and L2 steps are equivariant under this map, so the iterates equal those of the unclamped
  attack in ``z`` (up to float rounding).
"""

from __future__ import annotations

from enum import Enum
from typing import cast

import torch
from torch import nn

RANGE = 64.0


class AttackSpace(str, Enum):
    PIXEL = "pixel"
    NORMALIZED = "normalized"


class UnitBoxModel(nn.Module):
    """``model`` seen from ``u`` in [0, 1]: ``x = mean + std * (2R u - R)``, logits = ``model(x)``."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1))
        self.register_buffer("std", std.reshape(1, -1, 1, 1))

    def to_pixels(self, unit: torch.Tensor) -> torch.Tensor:
        return self.mean + self.std * (2 * RANGE * unit - RANGE)

    def to_unit(self, pixels: torch.Tensor) -> torch.Tensor:
        return ((pixels - self.mean) / self.std + RANGE) / (2 * RANGE)

    def forward(self, unit: torch.Tensor) -> torch.Tensor:
        return self.model(self.to_pixels(unit))


def model_normalization(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel ``mean``/``std`` buffers a bilat-eval vision model normalises with."""
    mean, std = cast(torch.Tensor, model.mean), cast(torch.Tensor, model.std)
    return mean.detach().flatten(), std.detach().flatten()
