"""Procedural textures for fog and frost, one per example, drawn from the ``ExampleRNG``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robustbench_bilateral.rng import ExampleRNG

FROST_TINT = (217, 237, 255)
FROST_RIDGE_POWER = 4
FROST_OCTAVE_DECAY = 0.8
FROST_FIRST_CELLS = 4
FROST_HAZE = 0.3
FROST_HAZE_DECAY = 2.0


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


def _smooth_noise(rng: ExampleRNG, height: int, width: int, cells: int) -> torch.Tensor:
    """Uniform values on a (cells + 1)^2 lattice, bicubically interpolated to (N, height, width)."""
    lattice = rng.rand(1, cells + 1, cells + 1)
    smooth = F.interpolate(lattice, size=(height, width), mode="bicubic", align_corners=True)
    return smooth[:, 0].clamp(0.0, 1.0)


def frost_texture(rng: ExampleRNG, height: int, width: int) -> torch.Tensor:
    """Ice-crystal textures (N, height, width) in [0, 1], to be tinted with ``FROST_TINT``.

    Ridged multi-octave noise: octave k interpolates uniform noise on a lattice of
    ``4 * 2^k`` cells per side (octaves while the cells stay >= 2 px) and folds it into thin bright
    ridges ``(1 - |2n - 1|)^4`` where it crosses 1/2; octaves are summed with weights ``0.8^k``
    and scaled to peak 1, giving a web of crystal edges at every scale. A plasma fractal (decay
    2) adds patchy rime: ``t = 0.7 ridges + 0.3 plasma``; the mean of t is about 0.35-0.4.
    """
    ridges = torch.zeros(len(rng), height, width, device=rng.device)
    cells, weight = FROST_FIRST_CELLS, 1.0
    while cells == FROST_FIRST_CELLS or cells <= min(height, width) // 2:
        noise = _smooth_noise(rng, height, width, cells)
        ridges += weight * (1.0 - (2.0 * noise - 1.0).abs()).pow(FROST_RIDGE_POWER)
        cells, weight = 2 * cells, weight * FROST_OCTAVE_DECAY
    ridges = ridges / ridges.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    haze = plasma_fractal(rng, height, width, FROST_HAZE_DECAY)
    return (1.0 - FROST_HAZE) * ridges + FROST_HAZE * haze
