"""Blur corruptions: defocus, glass, motion, zoom and (held out) Gaussian blur."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robustbench_bilateral.corruptions.entry import corruption
from robustbench_bilateral.corruptions.filters import (
    arange_factors,
    clipped_zoom,
    directional_blur,
    filter2d,
    shuffle_order,
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
            medium=((0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)),
            large=((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)))
def defocus_blur(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Convolution with ``disk_kernel(radius s, alias s)`` (reflect-101 border); table: (disk
    radius [px], anti-alias sigma [px])."""
    (radius, alias), scale = level
    return filter2d(images, disk_kernel(radius * scale, alias * scale)).clamp_(0.0, 1.0)


@corruption("blur", is_random=True,
            small=((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
            medium=((0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)),
            large=((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)))
def glass_blur(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Gaussian blur, stored as 8 bits, a local pixel shuffle, Gaussian blur again (ImageNet-C).

    Blur sigma ``sigma s`` px (edge repeated); the first blur is truncated to 8 bits,
    ``floor(255 b) / 255``, as the reference stores it. The shuffle (``filters.shuffle_order``)
    visits the pixels ``delta < h <= H - delta``, ``delta < w <= W - delta`` from the bottom
    right, row by row, ``iterations`` times, and gives each the current content of the pixel at a
    random offset ``(dy, dx)``, each uniform in ``[-delta, delta - 1]``,
    ``delta = max(1, round(delta_table s))`` px, one after another, so a pixel can travel several
    steps in one pass (the reference's swap copies on RGB arrays; grey images get the same
    copies). Table: (sigma [px], max displacement [px], iterations).

    At CIFAR-10-C severities 3 and 5 it blurs more before it shuffles than at 2 and 4, so the
    shuffled pixels are more alike and the change shrinks.
    """
    (sigma, delta, iterations), scale = level
    delta = max(1, round(delta * scale))
    height, width = images.shape[-2:]
    stored = (gaussian_filter(images, sigma * scale) * 255.0).floor() / 255.0
    visits = max(0, height - 2 * delta) * max(0, width - 2 * delta)
    offsets = rng.randint(-delta, delta, iterations, visits, 2)
    order = shuffle_order(offsets, height, width, delta).to(images.device)
    n, c = images.shape[:2]
    shuffled = stored.reshape(n, c, -1).gather(2, order.unsqueeze(1).expand(n, c, -1)).view_as(images)
    return gaussian_filter(shuffled, sigma * scale).clamp_(0.0, 1.0)


@corruption("blur", is_random=True,
            small=((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
            medium=((10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)),
            large=((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)))
def motion_blur(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """One-sided Gaussian motion blur (radius s, sigma s px) at an angle uniform in [-45, 45) deg;
    table: (radius [px], sigma [px]). CIFAR-10-C rows 3 and 4 share sigma 2, and the longer
    radius adds only taps beyond 4 sigma."""
    (radius, sigma), scale = level
    angles = 90.0 * rng.rand() - 45.0
    return directional_blur(images, radius * scale, sigma * scale, angles).clamp_(0.0, 1.0)


@corruption("blur", is_random=False,
            small=((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
            medium=((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
            large=((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)))
def zoom_blur(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """``(x + sum_k Z_k(x)) / (K + 1)`` over the K factors of ``np.arange(1, stop, step)``
    (``filters.arange_factors``: the stop is excluded, and float rounding decides whether a
    factor next to it counts, so ``(1.11, 0.01)`` gives 12 factors ending at 1.11), each
    ``Z_k = filters.clipped_zoom`` (a whole-pixel centre crop magnified bilinearly back to the
    size); table: (arange stop, arange step)."""
    (stop, step), _ = level
    factors = arange_factors(1.0, stop, step)
    total = images.clone()
    for factor in factors:
        total += clipped_zoom(images, factor)
    return (total / (len(factors) + 1)).clamp_(0.0, 1.0)


@corruption("blur", is_random=False, held_out=True, small=(0.4, 0.6, 0.7, 0.8, 1),
            medium=(0.5, 0.75, 1, 1.25, 1.5), large=(1, 2, 3, 4, 6))
def gaussian_blur(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Gaussian blur of sigma ``sigma s`` px, taps to 4 sigma, edge pixels repeated; table: sigma [px]."""
    sigma, scale = level
    return gaussian_filter(images, sigma * scale).clamp_(0.0, 1.0)
