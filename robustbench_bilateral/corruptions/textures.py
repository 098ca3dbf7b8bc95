"""The plasma fractal of fog, one per example, drawn from the ``ExampleRNG``."""

from __future__ import annotations

import torch

from robustbench_bilateral.rng import ExampleRNG


def _fractal_size(height: int, width: int) -> int:
    """The smallest power of two >= max(height, width)."""
    return 1 << (max(height, width) - 1).bit_length()


def plasma_fractal(rng: ExampleRNG, height: int, width: int, decay: float) -> torch.Tensor:
    """Diamond-square height maps (N, height, width) in [0, 1] (ImageNet-C ``plasma_fractal``).

    On a square map of side M = next power of two >= max(height, width), the square and diamond
    steps set each new point to the mean of its 4 neighbours (wrapping round) plus
    ``w * U(-w, w)``; ``w`` starts at 100 and is divided by ``decay`` at each halving of the
    step. The map is cropped to (height, width) and rescaled to [0, 1] per example. All uniforms
    of an example come from one draw.
    """
    size = _fractal_size(height, width)
    maps = torch.zeros(len(rng), size, size, dtype=torch.float64, device=rng.device)
    lattice_sizes = [4**level for level in range(size.bit_length() - 1) for _ in range(3)]
    draws = iter((2.0 * rng.rand(sum(lattice_sizes)).to(maps) - 1.0).split(lattice_sizes, dim=1))
    step, wibble = size, 100.0

    def wibbled(total: torch.Tensor) -> torch.Tensor:
        return total / 4 + wibble * wibble * next(draws).view_as(total)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0::step, 0::step]
        square = corners + corners.roll(-1, dims=1)
        square = square + square.roll(-1, dims=2)
        maps[:, half::step, half::step] = wibbled(square)
        centres = maps[:, half::step, half::step]
        corners = maps[:, 0::step, 0::step]
        top = centres + centres.roll(1, dims=1) + corners + corners.roll(-1, dims=2)
        left = centres + centres.roll(1, dims=2) + corners + corners.roll(-1, dims=1)
        maps[:, 0::step, half::step] = wibbled(top)
        maps[:, half::step, 0::step] = wibbled(left)
        step //= 2
        wibble /= decay
    maps = maps[:, :height, :width]
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    return ((maps - low) / (high - low).clamp_min(1e-12)).float()
