"""Digital corruptions: contrast, elastic transform, pixelate, JPEG and (held out) saturate."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from robustbench_bilateral.corruptions.colour import scale_saturation
from robustbench_bilateral.corruptions.filters import gaussian_blur
from robustbench_bilateral.corruptions.jpeg import jpeg_round_trip
from robustbench_bilateral.corruptions.severity import level
from robustbench_bilateral.rng import ExampleRNG

ELASTIC_TRUNCATE = 3.0


def contrast(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """``clip((x - mu) c + mu, 0, 1)``, mu the per-image, per-channel mean, c from the table."""
    factor, _ = level("contrast", severity, images)
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


def pixelate(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """Box down-sampling to the table's fraction of each side, then nearest up-sampling."""
    fraction, _ = level("pixelate", severity, images)
    height, width = images.shape[-2:]
    rows = pixelate_matrix(height, fraction).to(images)
    cols = pixelate_matrix(width, fraction).to(images)
    return (rows @ images @ cols.T).clamp(0.0, 1.0)


def jpeg_compression(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """JPEG coding at the table's quality (``jpeg.jpeg_round_trip``)."""
    quality, _ = level("jpeg_compression", severity, images)
    return jpeg_round_trip(images, quality)


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


def elastic_transform(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """Random affine warp composed with a smooth random displacement, sampled once (bilinear).

    Displacements ``(dx, dy) = alpha G_sigma * U(-1, 1)``: uniform noise smoothed by a Gaussian of
    ``sigma`` px (taps to 3 sigma, SciPy ``reflect`` border), times ``alpha`` px. Pixel (x, y)
    reads the source at ``A (x + dx, y + dy)``, A the inverse of the affine warp (shift px); the
    border mirrors. ImageNet-C resamples twice (warp, then displacement); here once.
    """
    (alpha, sigma, shift), scale = level("elastic_transform", severity, images)
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


def saturate(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """HSV saturation ``S' = clip(S a + b, 0, 1)`` with (a, b) from the table; hue and value kept.

    A colour-only corruption: grey images have no saturation to change, so 1-channel input raises
    ValueError.
    """
    if images.shape[1] != 3:
        raise ValueError(
            f"saturate changes colour saturation and needs 3-channel RGB images, got {images.shape[1]} channel(s)"
        )
    (factor, offset), _ = level("saturate", severity, images)
    return scale_saturation(images, factor, offset).clamp(0.0, 1.0)
