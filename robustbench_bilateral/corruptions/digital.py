"""Digital corruptions: contrast, elastic transform, pixelate, JPEG and (held out) saturate."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from robustbench_bilateral.corruptions.colour import scale_saturation
from robustbench_bilateral.corruptions.entry import corruption
from robustbench_bilateral.corruptions.filters import gaussian_blur
from robustbench_bilateral.corruptions.jpeg import jpeg_round_trip
from robustbench_bilateral.corruptions.severity import Level
from robustbench_bilateral.rng import ExampleRNG

ELASTIC_TRUNCATE = 3.0
ELASTIC_SMALL_SIDE, ELASTIC_LARGE_SIDE = 32, 244


@corruption("digital", is_random=False, small=(0.75, 0.5, 0.4, 0.3, 0.15), large=(0.4, 0.3, 0.2, 0.1, 0.05))
def contrast(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """``clip((x - mu) c + mu, 0, 1)``, mu the per-image, per-channel mean; table: factor c."""
    factor, _ = level
    mean = images.mean(dim=(2, 3), keepdim=True)
    return ((images - mean) * factor + mean).clamp(0.0, 1.0)


@lru_cache(maxsize=64)
def pixelate_matrix(size: int, fraction: float) -> torch.Tensor:
    """(size, size) matrix ``U @ A``: area-average ``size`` px down to ``int(size fraction)`` px
    (A, each output pixel the coverage-weighted mean of the input pixels under it), then back up
    by nearest neighbour (U); one matrix product per axis pixelates."""
    small = max(1, int(size * fraction))
    edges = torch.arange(small + 1, dtype=torch.float64) * size / small
    left = torch.arange(size, dtype=torch.float64)
    overlap = torch.minimum(edges[1:, None], left[None] + 1) - torch.maximum(edges[:-1, None], left[None])
    overlap = overlap.clamp_min(0)
    area = overlap / overlap.sum(dim=1, keepdim=True)
    nearest = ((torch.arange(size, dtype=torch.float64) + 0.5) * small / size).floor().long()
    return area[nearest]


@corruption("digital", is_random=False, small=(0.95, 0.9, 0.85, 0.75, 0.65), large=(0.6, 0.5, 0.4, 0.3, 0.25))
def pixelate(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Box down-sampling to a fraction of each side, then nearest up-sampling; table: the side
    fraction. At 28-32 px the near-1 fractions keep sides one or two pixels apart."""
    fraction, _ = level
    height, width = images.shape[-2:]
    rows = pixelate_matrix(height, fraction).to(images)
    cols = pixelate_matrix(width, fraction).to(images)
    return (rows @ images @ cols.T).clamp(0.0, 1.0)


@corruption("digital", is_random=False, small=(80, 65, 58, 50, 40), large=(25, 18, 15, 10, 7))
def jpeg_compression(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """JPEG coding (``jpeg.jpeg_round_trip``); table: quality (1-100)."""
    return jpeg_round_trip(images, level.row)


def _affine_inverse(rng: ExampleRNG, height: int, width: int, shift: float, device: torch.device) -> torch.Tensor:
    """(N, 3, 2) matrices ``A^T`` with ``source = [x, y, 1] @ A^T`` for a random affine warp.

    Three points of a square around the centre (half-side ``min(H, W) // 3``) move by offsets
    uniform in [-shift, shift) px; A maps the moved points back to the originals.
    """
    cx, cy, half = width // 2, height // 2, min(height, width) // 3
    corners = [[cx + half, cy + half], [cx + half, cy - half], [cx - half, cy - half]]
    anchors = torch.tensor(corners, dtype=torch.float64, device=device)
    moved = anchors + shift * (2.0 * rng.rand(3, 2).to(anchors) - 1.0)
    homogeneous = torch.cat([moved, torch.ones_like(moved[..., :1])], dim=2)
    return torch.linalg.solve(homogeneous, anchors.expand(len(rng), 3, 2))


@corruption("digital", is_random=True,
            small=tuple((ELASTIC_SMALL_SIDE * alpha, ELASTIC_SMALL_SIDE * sigma, ELASTIC_SMALL_SIDE * shift) for alpha, sigma, shift in (
                (0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))),
            large=tuple((ELASTIC_LARGE_SIDE * alpha, ELASTIC_LARGE_SIDE * sigma, ELASTIC_LARGE_SIDE * shift) for alpha, sigma, shift in (
                (2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))))
def elastic_transform(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Random affine warp composed with a smooth random displacement, sampled once (bilinear).

    Displacements ``(dx, dy) = alpha G_sigma * U(-1, 1)``: uniform noise smoothed by a Gaussian of
    ``sigma`` px (taps to 3 sigma, SciPy ``reflect`` border), times ``alpha`` px. Pixel (x, y)
    reads the source at ``A (x + dx, y + dy)``, A the inverse of the affine warp (shift px); the
    border mirrors. ImageNet-C resamples twice (warp, then displacement); here once.

    Table: (alpha [px], sigma [px], affine shift [px]), written as fractions of the side their
    source scripts use (32 px for CIFAR-10-C, 244 px for ImageNet-C). The CIFAR-10-C rows shrink
    the affine shift (8 % -> 3 % of the side) faster than the elastic part grows; the ImageNet-C
    ones trade a large smooth warp (rows 1-2) for a small local one (rows 3-5).
    """
    (alpha, sigma, shift), scale = level
    n, _, height, width = images.shape
    inverse = _affine_inverse(rng, height, width, shift * scale, images.device)
    noise = 2.0 * rng.rand(2, height, width).to(inverse) - 1.0
    field = alpha * scale * gaussian_blur(noise, sigma * scale, ELASTIC_TRUNCATE, "reflect")
    rows = torch.arange(height).to(inverse).view(1, height, 1) + field[:, 1]
    cols = torch.arange(width).to(inverse).view(1, 1, width) + field[:, 0]
    points = torch.stack([cols, rows, torch.ones_like(cols)], dim=-1).view(n, -1, 3)
    source = (points @ inverse).view(n, height, width, 2)
    grid = (2.0 * source / torch.tensor([width - 1, height - 1]).to(inverse) - 1.0).to(images)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    return warped.clamp(0.0, 1.0)


@corruption("digital", is_random=False, held_out=True, colour_only=True,
            small=((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
            large=((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)))
def saturate(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """HSV saturation ``S' = clip(S a + b, 0, 1)``, hue and value kept; table: (saturation factor
    a, offset b). Rows 1-2 desaturate, rows 3-5 saturate.

    A colour-only corruption: grey images have no saturation to change, so 1-channel input raises
    ValueError.
    """
    if images.shape[1] != 3:
        raise ValueError(
            f"saturate changes colour saturation and needs 3-channel RGB images, got {images.shape[1]} channel(s)"
        )
    (factor, offset), _ = level
    return scale_saturation(images, factor, offset).clamp(0.0, 1.0)
