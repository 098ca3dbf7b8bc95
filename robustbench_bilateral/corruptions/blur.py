"""Blur corruptions: defocus, glass, motion, zoom and (held out) Gaussian blur."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robustbench_bilateral.corruptions.entry import corruption
from robustbench_bilateral.corruptions.filters import (
    directional_blur,
    filter2d,
    gather_pixels,
    pixel_grid,
    zoom_centre,
)
from robustbench_bilateral.corruptions.filters import gaussian_blur as gaussian_filter
from robustbench_bilateral.corruptions.severity import Level
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


@corruption("blur", is_random=False,
            small=((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
            large=((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)))
def defocus_blur(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Convolution with ``disk_kernel(radius s, alias s)`` (reflect-101 border); table: (disk
    radius [px], anti-alias sigma [px])."""
    (radius, alias), scale = level
    return filter2d(images, disk_kernel(radius * scale, alias * scale)).clamp(0.0, 1.0)


@corruption("blur", is_random=True,
            small=((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
            large=((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)))
def glass_blur(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Gaussian blur, local pixel shuffles, Gaussian blur again.

    Blur sigma ``sigma s`` px (edge repeated). A shuffle moves to every pixel the pixel at a
    random offset ``(dy, dx)``, each uniform in ``[-delta, delta - 1]`` with
    ``delta = max(1, round(delta_table s))`` px (clamped at the border), all pixels at once as
    one gather, repeated ``iterations`` times. ImageNet-C swaps pixel pairs one after another
    instead, which can carry a pixel several steps in one pass; the gather moves each pixel by one
    offset per pass and may repeat or drop pixels. Table: (sigma [px], max displacement [px],
    iterations).

    At CIFAR-10-C severities 3 and 5 it blurs more before it shuffles than at 2 and 4, so the
    shuffled pixels are more alike and the change shrinks; at 128 px displacements 1 and 2 px
    both round to 1 px.
    """
    (sigma, delta, iterations), scale = level
    delta = max(1, round(delta * scale))
    blurred = gaussian_filter(images, sigma * scale)
    rows, cols = pixel_grid(images)
    for _ in range(iterations):
        offsets = rng.randint(-delta, delta, 2, *images.shape[-2:]).to(images.device)
        blurred = gather_pixels(blurred, rows + offsets[:, 0], cols + offsets[:, 1])
    return gaussian_filter(blurred, sigma * scale).clamp(0.0, 1.0)


@corruption("blur", is_random=True,
            small=((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
            large=((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)))
def motion_blur(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """One-sided Gaussian motion blur (radius s, sigma s px) at an angle uniform in [-45, 45) deg;
    table: (radius [px], sigma [px]). CIFAR-10-C rows 3 and 4 share sigma 2, and the longer
    radius adds only taps beyond 4 sigma."""
    (radius, sigma), scale = level
    angles = 90.0 * rng.rand() - 45.0
    return directional_blur(images, radius * scale, sigma * scale, angles).clamp(0.0, 1.0)


@corruption("blur", is_random=False,
            small=((1.05, 0.01), (1.10, 0.01), (1.15, 0.01), (1.20, 0.01), (1.25, 0.01)),
            large=((1.10, 0.01), (1.15, 0.01), (1.20, 0.02), (1.24, 0.02), (1.30, 0.03)))
def zoom_blur(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """``(x + sum_k zoom(x, z_k)) / (K + 1)`` over factors ``z_k = 1 + k step`` up to the table's
    largest factor, each a centred bilinear magnification that keeps the size; table: (largest
    zoom factor, factor step)."""
    (largest, step), _ = level
    count = round((largest - 1.0) / step) + 1
    total = images.clone()
    for k in range(count):
        total += zoom_centre(images, 1.0 + k * step)
    return (total / (count + 1)).clamp(0.0, 1.0)


@corruption("blur", is_random=False, held_out=True, small=(0.4, 0.6, 0.7, 0.8, 1), large=(1, 2, 3, 4, 6))
def gaussian_blur(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Gaussian blur of sigma ``sigma s`` px, taps to 4 sigma, edge pixels repeated; table: sigma [px]."""
    sigma, scale = level
    return gaussian_filter(images, sigma * scale).clamp(0.0, 1.0)
