"""Blur corruptions: defocus, glass, motion, zoom and (held out) Gaussian blur."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robustbench_bilateral.corruptions.filters import (
    directional_blur,
    filter2d,
    gather_pixels,
    gaussian_blur as gaussian_filter,
    pixel_grid,
    zoom_centre,
)
from robustbench_bilateral.corruptions.severity import level
from robustbench_bilateral.rng import ExampleRNG

ALIAS_KERNEL_SMALL, ALIAS_KERNEL_LARGE, ALIAS_LARGE_RADIUS = 3, 5, 8


def disk_kernel(radius: float, alias_sigma: float) -> torch.Tensor:
    """Anti-aliased disk of ``radius`` px, normalised to sum 1 (ImageNet-C ``disk``).

    Each tap weighs ``clip(radius + 1/2 - d, 0, 1)`` at distance ``d`` px from the centre (a disk
    with a one-pixel soft rim, so the kernel grows continuously with a scaled radius), and the
    disk is then smoothed by a Gaussian of ``alias_sigma`` px on a 3x3 grid (5x5 above 8 px).
    """
    size = ALIAS_KERNEL_SMALL if radius <= ALIAS_LARGE_RADIUS else ALIAS_KERNEL_LARGE
    pad = size // 2
    reach = math.ceil(radius + 0.5) + pad
    coords = torch.arange(-reach, reach + 1, dtype=torch.float64)
    distance = torch.hypot(coords.view(-1, 1), coords.view(1, -1))
    disk = (radius + 0.5 - distance).clamp(0.0, 1.0)
    disk = disk / disk.sum()
    taps = torch.arange(size, dtype=torch.float64) - pad
    alias = torch.exp(-0.5 * (taps / alias_sigma) ** 2)
    alias = alias / alias.sum()
    smoothed = F.conv2d(disk[None, None], torch.outer(alias, alias)[None, None], padding=pad)
    return smoothed[0, 0]


def defocus_blur(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """Convolution with ``disk_kernel(radius s, alias s)`` (reflect-101 border)."""
    (radius, alias), scale = level("defocus_blur", severity, images)
    return filter2d(images, disk_kernel(radius * scale, alias * scale)).clamp(0.0, 1.0)


def glass_blur(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """Gaussian blur, local pixel shuffles, Gaussian blur again.

    Blur sigma ``sigma s`` px (edge repeated). A shuffle moves to every pixel the pixel at a
    random offset ``(dy, dx)``, each uniform in ``[-delta, delta - 1]`` with
    ``delta = max(1, round(delta_table s))`` px (clamped at the border), all pixels at once as
    one gather, repeated ``iterations`` times. ImageNet-C swaps pixel pairs one after another
    instead, which can carry a pixel several steps in one pass; the gather moves each pixel by one
    offset per pass and may repeat or drop pixels.
    """
    (sigma, delta, iterations), scale = level("glass_blur", severity, images)
    delta = max(1, round(delta * scale))
    blurred = gaussian_filter(images, sigma * scale)
    rows, cols = pixel_grid(images)
    for _ in range(iterations):
        offsets = rng.randint(-delta, delta, 2, *images.shape[-2:]).to(images.device)
        blurred = gather_pixels(blurred, rows + offsets[:, 0], cols + offsets[:, 1])
    return gaussian_filter(blurred, sigma * scale).clamp(0.0, 1.0)


def motion_blur(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """One-sided Gaussian motion blur (radius s, sigma s px) at an angle uniform in [-45, 45) deg."""
    (radius, sigma), scale = level("motion_blur", severity, images)
    angles = 90.0 * rng.rand() - 45.0
    return directional_blur(images, radius * scale, sigma * scale, angles).clamp(0.0, 1.0)


def zoom_blur(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """``(x + sum_k zoom(x, z_k)) / (K + 1)`` over factors ``z_k = 1 + k step`` up to the table's
    largest factor, each a centred bilinear magnification that keeps the size."""
    (largest, step), _ = level("zoom_blur", severity, images)
    count = round((largest - 1.0) / step) + 1
    total = images.clone()
    for k in range(count):
        total += zoom_centre(images, 1.0 + k * step)
    return (total / (count + 1)).clamp(0.0, 1.0)


def gaussian_blur(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """Gaussian blur of sigma ``sigma s`` px, taps to 4 sigma, edge pixels repeated."""
    sigma, scale = level("gaussian_blur", severity, images)
    return gaussian_filter(images, sigma * scale).clamp(0.0, 1.0)
