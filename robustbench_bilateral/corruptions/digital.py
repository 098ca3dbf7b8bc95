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
ELASTIC_SMALL_SIDE, ELASTIC_MEDIUM_SIDE = 32, 64
# imagecorruptions 1.1.2 at 224 px: displacement gain 250 k on noise of +-0.005 side, smoothed by sigma 0.01 side.
ELASTIC_LARGE_GAIN, ELASTIC_LARGE_NOISE, ELASTIC_LARGE_SIGMA = 250.0, 0.005 * 224, 0.01 * 224


@corruption("digital", is_random=False, small=(0.75, 0.5, 0.4, 0.3, 0.15),
            medium=(0.4, 0.3, 0.2, 0.1, 0.05), large=(0.4, 0.3, 0.2, 0.1, 0.05))
def contrast(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """``clip((x - mu) c + mu, 0, 1)``, mu the per-image, per-channel mean; table: factor c."""
    factor, _ = level
    mean = images.mean(dim=(2, 3), keepdim=True)
    return ((images - mean) * factor + mean).clamp_(0.0, 1.0)


@lru_cache(maxsize=128)
def box_resize_matrix(source: int, target: int) -> torch.Tensor:
    """(target, source) matrix of Pillow's ``BOX`` resize along one axis.

    With ``r = source / target`` and ``f = max(r, 1)``, output pixel i is centred at
    ``c = (i + 1/2) r`` and averages, with equal weights, the source pixels j with
    ``-1/2 < (j + 1/2 - c) / f <= 1/2`` among ``int(c - f/2 + 1/2) <= j < int(c + f/2 + 1/2)``:
    the pixels whose centres fall in its box when shrinking, the one under its centre when
    enlarging.
    """
    ratio = source / target
    reach = max(ratio, 1.0)
    centre = (torch.arange(target, dtype=torch.float64) + 0.5).unsqueeze(1) * ratio
    pixel = torch.arange(source, dtype=torch.float64).unsqueeze(0)
    position = (pixel + 0.5 - centre) / reach
    first = (centre - reach / 2 + 0.5).floor().clamp_min(0)
    last = (centre + reach / 2 + 0.5).floor().clamp_max(source)
    inside = (position > -0.5) & (position <= 0.5) & (pixel >= first) & (pixel < last)
    weights = inside.to(torch.float64)
    return weights / weights.sum(dim=1, keepdim=True)


@lru_cache(maxsize=128)
def box_shrink_taps(source: int, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``box_resize_matrix(source, target)`` as taps: the (target * t) source indices of each
    row's t consecutive taps from its first nonzero entry (clamped to the image) and the
    (target, t) weights, 0 past the row's last nonzero one (t = the most a row has)."""
    matrix = box_resize_matrix(source, target)
    nonzero = matrix != 0
    taps = int(nonzero.sum(dim=1).max())
    index = (nonzero.int().argmax(dim=1, keepdim=True) + torch.arange(taps)).clamp(max=source - 1)
    weight = matrix.gather(1, index)
    weight[:, 1:] *= index[:, 1:] > index[:, :-1]
    return index.reshape(-1), weight


def take_rows(images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``images[..., index, :]``: whole rows (dim -2) copied, the leading dims flattened first,
    where ``index_select`` copies fastest."""
    planes = images.reshape(-1, *images.shape[-2:]).index_select(1, index.to(images.device))
    return planes.view(*images.shape[:-2], *planes.shape[-2:])


def box_shrink_rows(images: torch.Tensor, taps: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``M @ x`` down the rows (dim -2) for the box matrix M of ``taps``: ``sum_t w_it x_(index_it)``,
    the t taps of each output row taken as whole rows, weighed, and added in order of t (equal to
    the matrix product up to float rounding, 3e-7)."""
    index, weight = taps
    gathered = take_rows(images, index).unflatten(-2, weight.shape).mul_(weight.to(images).unsqueeze(-1))
    weighed = gathered.unbind(-2)
    total = weighed[0] + weighed[1] if len(weighed) > 1 else weighed[0].clone()
    for tap in weighed[2:]:
        total += tap
    return total


def pixelate_size(size: int, fraction: float) -> tuple[int, torch.Tensor]:
    """Pillow ``BOX`` resize of one axis to ``small = int(size fraction)`` px (at least 1) and
    back: ``small`` and, for the enlargement (each output pixel copies the one source pixel
    under its centre), the source index of every output pixel."""
    small = max(1, int(size * fraction))
    return small, box_resize_matrix(small, size).argmax(dim=1)


@lru_cache(maxsize=128)
def pixelate_plan(height: int, width: int, fraction: float) -> tuple[int, int, torch.Tensor]:
    """The shrunk sides (rows, columns) and, for each of the (height width) output pixels in
    row-major order, the flat index of its source pixel in the shrunk image stored transposed
    (columns first): ``copy_cols[c] rows + copy_rows[r]``."""
    small_rows, copy_rows = pixelate_size(height, fraction)
    small_cols, copy_cols = pixelate_size(width, fraction)
    return small_rows, small_cols, (copy_cols.view(1, -1) * small_rows + copy_rows.view(-1, 1)).reshape(-1)


@corruption("digital", is_random=False, small=(0.95, 0.9, 0.85, 0.75, 0.65),
            medium=(0.9, 0.8, 0.7, 0.6, 0.5), large=(0.6, 0.5, 0.4, 0.3, 0.25))
def pixelate(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Pillow ``BOX`` resize of each side to ``int(side fraction)`` px and back (ImageNet-C),
    computed in float without Pillow's 8-bit rounding between passes (49.9-57.3 dB against the
    reference at 32 and 224 px): the shrink down the rows, then across the columns, as box sums
    (``box_shrink_rows``, the columns as rows of the transposed image), the enlargement as one
    gather of pixels from the transposed shrunk image (``pixelate_plan``); table: the side
    fraction. At 28-32 px the near-1 fractions keep sides one or two pixels apart."""
    fraction, _ = level
    height, width = images.shape[-2:]
    small_rows, small_cols, sources = pixelate_plan(height, width, fraction)
    across = box_shrink_rows(images, box_shrink_taps(height, small_rows)).mT.contiguous()
    transposed = box_shrink_rows(across, box_shrink_taps(width, small_cols)).clamp_(0.0, 1.0)
    planes = transposed.reshape(-1, small_cols * small_rows)
    return planes.gather(1, sources.to(images.device).expand(len(planes), -1)).view(images.shape)


@corruption("digital", is_random=False, small=(80, 65, 58, 50, 40), medium=(65, 58, 50, 40, 25), large=(25, 18, 15, 10, 7))
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
            medium=tuple((ELASTIC_MEDIUM_SIDE * alpha, ELASTIC_MEDIUM_SIDE * sigma, ELASTIC_MEDIUM_SIDE * shift) for alpha, sigma, shift in (
                (0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02))),
            large=tuple((ELASTIC_LARGE_GAIN * k * ELASTIC_LARGE_NOISE, ELASTIC_LARGE_SIGMA, 0.0) for k in (0.05, 0.065, 0.085, 0.1, 0.12)))
def elastic_transform(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """A random affine warp, then a smooth random displacement, each resampled bilinearly.

    Warp: pixel (x, y) reads the image at ``A (x, y)``, A the inverse of the affine warp (shift
    px), mirrored about the border pixels (OpenCV ``BORDER_REFLECT_101``); skipped at shift 0.
    Displacement: ``(dx, dy) = alpha G_sigma * U(-1, 1)``, uniform noise smoothed by a Gaussian of
    ``sigma`` px (taps to 3 sigma, SciPy ``reflect`` border) times ``alpha`` px; pixel (x, y)
    reads the warped image at ``(x + dx, y + dy)``, mirrored about the image edge (SciPy
    ``reflect``). OpenCV rounds warp coordinates to 1/32 px; here they stay exact.

    Table: (alpha [px], sigma [px], affine shift [px]). CIFAR-10-C and Tiny-ImageNet-C
    (Hendrycks' scripts) give them as fractions of 32 and 64 px; the ImageNet-C rows follow
    ``imagecorruptions`` 1.1.2, which drops the affine warp and draws noise of +-0.005 side
    smoothed by sigma 0.01 side with gain ``250 k``, k = 0.05 ... 0.12 (alpha = 250 k 1.12 px
    at 224 px). The CIFAR-10-C rows shrink the affine shift (8 % -> 3 % of the side) faster than
    the elastic part grows.
    """
    (alpha, sigma, shift), scale = level
    n, _, height, width = images.shape
    inverse = _affine_inverse(rng, height, width, shift * scale, images.device)
    rows = torch.arange(height).to(inverse).view(1, height, 1).expand(n, height, width)
    cols = torch.arange(width).to(inverse).view(1, 1, width).expand(n, height, width)
    warped = images
    if shift > 0:
        points = torch.stack([cols, rows, torch.ones_like(cols)], dim=-1).view(n, -1, 3)
        source = (points @ inverse).view(n, height, width, 2)
        grid = (2.0 * source / torch.tensor([width - 1, height - 1]).to(inverse) - 1.0).to(images)
        warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    noise = 2.0 * rng.rand(2, height, width).to(inverse) - 1.0
    field = alpha * scale * gaussian_blur(noise, sigma * scale, ELASTIC_TRUNCATE, "reflect")
    displaced = torch.stack([cols + field[:, 0], rows + field[:, 1]], dim=-1)
    grid = (2.0 * (displaced + 0.5) / torch.tensor([width, height]).to(inverse) - 1.0).to(images)
    moved = F.grid_sample(warped, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return moved.clamp_(0.0, 1.0)


@corruption("digital", is_random=False, held_out=True, colour_only=True,
            small=((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
            medium=((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)),
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
    return scale_saturation(images, factor, offset).clamp_(0.0, 1.0)
