"""Procedural textures for fog and frost, one per example, drawn from the ``ExampleRNG``."""

from __future__ import annotations

import torch

from robustbench_bilateral.rng import ExampleRNG

FROST_TINT = (217, 237, 255)
FROST_VEIN_POWER = 3.0
FROST_VEIN_WEIGHT = 0.75
FROST_DECAY = 1.6


def _fractal_size(height: int, width: int) -> int:
    """The smallest power of two >= max(height, width)."""
    return 1 << (max(height, width) - 1).bit_length()


def plasma_fractal(rng: ExampleRNG, height: int, width: int, decay: float) -> torch.Tensor:
    """Diamond-square height maps (N, height, width) in [0, 1] (ImageNet-C ``plasma_fractal``).

    On a square map of side M = next power of two >= max(height, width), the square and diamond
    steps set each new point to the mean of its 4 neighbours (wrapping round) plus
    ``w * U(-w, w)``; ``w`` starts at 100 and is divided by ``decay`` at each halving of the
    step. The map is cropped to (height, width) and rescaled to [0, 1] per example.
    """
    size = _fractal_size(height, width)
    maps = torch.zeros(len(rng), size, size, dtype=torch.float64, device=rng.device)
    step, wibble = size, 100.0

    def wibbled(total: torch.Tensor) -> torch.Tensor:
        noise = 2.0 * rng.rand(*total.shape[1:]).to(total) - 1.0
        return total / 4 + wibble * wibble * noise

    while step >= 2:
        half = step // 2
        corners = maps[:, 0::step, 0::step]
        square = corners + corners.roll(-1, dims=1)
        square = square + square.roll(-1, dims=2)
        maps[:, half::step, half::step] = wibbled(square)
        centres = maps[:, half::step, half::step]
        corners = maps[:, 0::step, 0::step]
        maps[:, 0::step, half::step] = wibbled(centres + centres.roll(1, dims=1) + corners + corners.roll(-1, dims=2))
        maps[:, half::step, 0::step] = wibbled(centres + centres.roll(1, dims=2) + corners + corners.roll(-1, dims=1))
        step //= 2
        wibble /= decay
    maps = maps[:, :height, :width]
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    return ((maps - low) / (high - low).clamp_min(1e-12)).float()


def frost_texture(rng: ExampleRNG, height: int, width: int) -> torch.Tensor:
    """Ice-crystal textures (N, height, width) in [0, 1], to be tinted with ``FROST_TINT``.

    A plasma fractal ``p`` with slow decay ``FROST_DECAY`` = 1.6 (much fine detail) is folded into
    ridges ``r = 1 - |2p - 1|``, bright where ``p`` crosses its middle; the thin bright veins
    ``r^3`` form the crystal branches and ``p`` itself a faint rime:
    ``t = 0.75 r^3 + 0.25 p``.
    """
    plasma = plasma_fractal(rng, height, width, FROST_DECAY)
    ridges = 1.0 - (2.0 * plasma - 1.0).abs()
    return FROST_VEIN_WEIGHT * ridges.pow(FROST_VEIN_POWER) + (1.0 - FROST_VEIN_WEIGHT) * plasma
