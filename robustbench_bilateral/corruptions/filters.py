"""Batched spatial filters shared by the corruptions; every one acts on the last two axes (H, W).

Border handling follows the library each ImageNet-C corruption was written with: ``nearest``
repeats the edge pixel (scikit-image ``gaussian``), ``reflect`` mirrors about the edge with the
edge pixel repeated (SciPy ``reflect``: d c b a | a b c d), and ``filter2d`` mirrors without
repeating it (OpenCV ``BORDER_REFLECT_101``: d c b | a b c d).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

GAUSSIAN_TRUNCATE = 4.0
SHIFT_BLOCK_VALUES = 1 << 16


@lru_cache(maxsize=256)
def _gaussian_matrix(size: int, sigma: float, truncate: float, mode: str) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2) if sigma > 0 else torch.ones(1, dtype=torch.float64)
    weights = weights / weights.sum()
    rows = torch.arange(size).repeat_interleave(2 * radius + 1)
    source = torch.arange(size).unsqueeze(1) + torch.arange(-radius, radius + 1).unsqueeze(0)
    if mode == "nearest":
        source = source.clamp(0, size - 1)
    elif mode == "reflect":
        source = source.remainder(2 * size)
        source = torch.where(source >= size, 2 * size - 1 - source, source)
    else:
        raise ValueError(f"unknown border mode {mode!r}: use 'nearest' or 'reflect'")
    matrix = torch.zeros(size, size, dtype=torch.float64)
    matrix.index_put_((rows, source.reshape(-1)), weights.repeat(size), accumulate=True)
    return matrix


def gaussian_matrix(
    size: int, sigma: float, truncate: float = GAUSSIAN_TRUNCATE, mode: str = "nearest"
) -> torch.Tensor:
    """The (size, size) matrix ``B`` with ``B @ v`` = v smoothed by a Gaussian of ``sigma`` px.

    Weights ``exp(-k^2 / (2 sigma^2))`` for ``|k| <= int(truncate * sigma + 0.5)``, normalised to
    sum 1, with out-of-range taps folded back by the border ``mode``; this handles kernels wider
    than the image the way SciPy does. ``sigma = 0`` gives the identity.
    """
    return _gaussian_matrix(int(size), round(float(sigma), 9), float(truncate), mode)


def gaussian_blur(
    images: torch.Tensor, sigma: float, truncate: float = GAUSSIAN_TRUNCATE, mode: str = "nearest"
) -> torch.Tensor:
    """Separable Gaussian blur of ``sigma`` px over (H, W): ``B_H @ x @ B_W^T``."""
    height, width = images.shape[-2:]
    rows = gaussian_matrix(height, sigma, truncate, mode).to(images)
    cols = gaussian_matrix(width, sigma, truncate, mode).to(images)
    return rows @ images @ cols.T


def filter2d(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every (H, W) plane with one odd-sized ``kernel`` (kh, kw), reflect-101 border.

    The planes run as the channels of one depthwise convolution, much faster on CPU than a
    batch of single-channel ones.
    """
    shape = images.shape
    kh, kw = kernel.shape
    planes = images.reshape(1, -1, *shape[-2:])
    padded = F.pad(planes, (kw // 2, kw // 2, kh // 2, kh // 2), mode="reflect")
    weight = kernel.to(images).expand(planes.shape[1], 1, kh, kw)
    return F.conv2d(padded, weight, groups=planes.shape[1]).reshape(shape)


def dilate(mask: torch.Tensor) -> torch.Tensor:
    """3x3 binary dilation of a bool (..., H, W) mask: a pixel is set if any of its 8 neighbours
    or itself is (pixels outside the image count as unset)."""
    rows = mask.clone()
    rows[..., 1:, :] |= mask[..., :-1, :]
    rows[..., :-1, :] |= mask[..., 1:, :]
    grown = rows.clone()
    grown[..., :, 1:] |= rows[..., :, :-1]
    grown[..., :, :-1] |= rows[..., :, 1:]
    return grown


def shift_sum(images: torch.Tensor, weights: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``sum_t w_t x(h - dy_nt, w - dx_nt)`` with edge pixels repeated past the border.

    images: (N, C, H, W); weights: (T,); offsets: integer (N, T, 2) as (dy, dx) per example.
    The images are padded once by edge repetition. Examples go in blocks of about
    ``SHIFT_BLOCK_VALUES`` values (one example when it is larger), so a block's sum stays in
    cache; per tap, each group of the block's examples sharing an offset adds its window of the
    padded images. Every value is accumulated in tap order, ``(w_0 x_0 + w_1 x_1) + ...``,
    exactly as a per-tap gather would.
    """
    height, width = images.shape[-2:]
    reach = int(offsets.abs().max()) if offsets.numel() else 0
    padded = F.pad(images, (reach,) * 4, mode="replicate")
    total = torch.zeros_like(images)
    block = max(1, SHIFT_BLOCK_VALUES // images[0].numel())
    for first in range(0, images.shape[0], block):
        part, source = total[first : first + block], padded[first : first + block]
        for weight, groups in zip(weights.tolist(), _offset_groups(offsets[first : first + block].tolist())):
            for (dy, dx), members in groups.items():
                window = source[..., reach - dy : reach - dy + height, reach - dx : reach - dx + width]
                if len(members) == part.shape[0]:
                    part += weight * window
                else:
                    index = torch.tensor(members, device=images.device)
                    part.index_add_(0, index, weight * window.index_select(0, index))
    return total


def _offset_groups(offsets: list[list[list[int]]]) -> list[dict[tuple[int, int], list[int]]]:
    """Per tap, the examples of each distinct (dy, dx), from ``offsets[n][t] = [dy, dx]``."""
    groups: list[dict[tuple[int, int], list[int]]] = [{} for _ in offsets[0]] if offsets else []
    for example, per_tap in enumerate(offsets):
        for tap, (dy, dx) in zip(groups, per_tap):
            tap.setdefault((dy, dx), []).append(example)
    return groups


def directional_blur(images: torch.Tensor, radius: float, sigma: float, angles: torch.Tensor) -> torch.Tensor:
    """One-sided motion blur (ImageMagick ``MotionBlurImage``) along ``angles`` degrees per example.

    Tap ``i = 0, 1, ...`` has weight ``exp(-i^2 / (2 sigma^2))`` (normalised) and reads the pixel
    ``i`` px ahead along the angle, rounded to the grid: ``dy = -ceil(i sin a - 1/2)``,
    ``dx = -ceil(i cos a - 1/2)``. Taps run to ``min(2 radius, 4 sigma)``: beyond 4 sigma a weight
    is below ``e^-8`` of the first.
    """
    taps = int(min(2 * radius, math.ceil(4 * sigma))) + 1
    steps = torch.arange(taps, dtype=torch.float64)
    weights = torch.exp(-0.5 * (steps / sigma) ** 2)
    weights = (weights / weights.sum()).to(images)
    radians = torch.deg2rad(angles.to("cpu", torch.float64)).view(-1, 1)
    dy = -torch.ceil(steps * torch.sin(radians) - 0.5)
    dx = -torch.ceil(steps * torch.cos(radians) - 0.5)
    offsets = torch.stack([dy, dx], dim=2).long().to(images.device)
    return shift_sum(images, weights, offsets)


def arange_factors(start: float, stop: float, step: float) -> list[float]:
    """The values of ``np.arange(start, stop, step)`` as NumPy computes them: ``ceil((stop - start)
    / step)`` values ``start + k d`` with ``d = (start + step) - start``."""
    count = max(0, math.ceil((stop - start) / step))
    delta = (start + step) - start
    return [start + k * delta for k in range(count)]


@lru_cache(maxsize=256)
def _zoom_matrix(size: int, factor: float) -> torch.Tensor:
    crop = math.ceil(size / factor)
    top = (size - crop) // 2
    zoomed = round(crop * factor)
    trim = (zoomed - size) // 2
    spacing = (crop - 1) / (zoomed - 1) if zoomed > 1 else 0.0
    source = top + (torch.arange(size, dtype=torch.float64) + trim) * spacing
    low = source.floor().clamp(top, top + crop - 1)
    fraction = source - low
    high = (low + 1).clamp(max=top + crop - 1)
    matrix = torch.zeros(size, size, dtype=torch.float64)
    rows = torch.arange(size)
    matrix.index_put_((rows, low.long()), 1.0 - fraction, accumulate=True)
    matrix.index_put_((rows, high.long()), fraction, accumulate=True)
    return matrix


def zoom_matrix(size: int, factor: float) -> torch.Tensor:
    """(size, size) matrix of ImageNet-C's ``clipped_zoom`` along one axis, ``factor`` >= 1.

    Crop ``c = ceil(size / factor)`` px starting at ``(size - c) // 2`` (whole pixels), magnify
    to ``round(c factor)`` px by linear interpolation with the end pixels' centres kept in place
    (SciPy ``zoom``, order 1: output pixel o reads crop position ``o (c - 1) / (round(c factor) - 1)``)
    and keep ``size`` px from ``(round(c factor) - size) // 2`` on.
    """
    return _zoom_matrix(int(size), float(factor))


def clipped_zoom(images: torch.Tensor, factor: float) -> torch.Tensor:
    """``Z_H @ x @ Z_W^T`` with ``zoom_matrix``: a centre crop of (N, C, H, W) images magnified by
    ``factor`` back to (H, W)."""
    height, width = images.shape[-2:]
    return zoom_matrix(height, factor).to(images) @ images @ zoom_matrix(width, factor).to(images).T


def shuffle_order(offsets: torch.Tensor, height: int, width: int, delta: int) -> torch.Tensor:
    """Where each pixel comes from after ImageNet-C's sequential local shuffle: (N, H W) indices
    into the flattened (H, W) image.

    Pass after pass, the pixels ``(h, w)`` with ``delta < h <= H - delta`` and
    ``delta < w <= W - delta`` are visited from the bottom right, row by row, and each takes the
    current content of the pixel at ``(h + dy, w + dx)``; offsets: integer (N, passes, visits, 2)
    as (dy, dx), each in ``[-delta, delta - 1]``. The reference writes this as a swap,
    ``x[h, w], x[h', w'] = x[h', w'], x[h, w]``, but on an (H, W, 3) array the right side holds
    views, so ``x[h', w']`` gets back its own value: a copy, through which a pixel can travel
    several steps in one pass and be duplicated. The visits only move pixel positions, so they
    are applied to an index list (one per example, in plain Python: each depends on the ones
    before) and the image is gathered once.
    """
    rows = torch.arange(height - delta, delta, -1)
    cols = torch.arange(width - delta, delta, -1)
    visited = (rows.view(-1, 1) * width + cols.view(1, -1)).reshape(-1)
    sources = visited + offsets[..., 0] * width + offsets[..., 1]
    here_list, orders = visited.tolist(), []
    for example in sources.tolist():
        order = list(range(height * width))
        for passed in example:
            for here, there in zip(here_list, passed):
                order[here] = order[there]
        orders.append(order)
    return torch.tensor(orders, dtype=torch.long).view(len(orders), height * width)
