"""Spatter (held out, weather group): water drops at severities 1-3, mud at 4-5.

Both start from a liquid layer: a normal field (mean, std) per pixel smoothed by a Gaussian of
``sigma s`` px and set to 0 below ``threshold``.

Water (ImageNet-C's OpenCV chain, as tensor ops on 8-bit values): the layer stored as 8 bits,
``L = floor(255 liquid)``; its Canny edges (``canny``, thresholds 50 and 150); the L2 chamfer
distance to the nearest edge (``chamfer_distance``) capped at ``DISTANCE_CAP s`` with
``DISTANCE_CAP`` = 20 px; a 3x3 mean truncated to 8 bits; histogram equalisation
(``equalise``); the ``EMBOSS`` filter clipped to [0, 255]; a 3x3 mean rounded to 8 bits. The
mask ``m = L * shading``, scaled to peak ``intensity``, adds pale turquoise ``WATER_RGB``:
``clip(x + m c, 0, 1)``. Filters mirror about the border pixels (OpenCV ``BORDER_REFLECT_101``).

Mud: the drop mask smoothed by a Gaussian of ``sigma_mud s`` px, zero below ``MUD_FLOOR`` = 0.8,
blends in brown ``MUD_RGB``: ``clip(x (1 - m) + m c, 0, 1)``. Grey images use the colours' luma.

Table: (mean, std, smoothing sigma [px], threshold, water intensity or mud sigma_mud [px],
0 = water / 1 = mud). Water brightens whole drops and mud covers only their opaque cores, so the
change can shrink from severity 3 to 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robustbench_bilateral.corruptions.chunking import per_chunk
from robustbench_bilateral.corruptions.colour import colour_value
from robustbench_bilateral.corruptions.entry import corruption
from robustbench_bilateral.corruptions.filters import dilate, filter2d, gaussian_blur
from robustbench_bilateral.corruptions.severity import Level
from robustbench_bilateral.rng import ExampleRNG

WATER_RGB = (175, 238, 238)
MUD_RGB = (63, 42, 20)
DISTANCE_CAP = 20.0
MUD_FLOOR = 0.8
CANNY_LOW, CANNY_HIGH = 50, 150
TAN_22_5_FIXED, FIXED_SHIFT = 13573, 15
CHAMFER_SCALE = 1 << 16
CHAMFER_COSTS = (65536, 91750, 143976)
EMBOSS = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
SUM3 = torch.ones(3, 3)
SHADING_CHUNK_VALUES = 1 << 18
"""Pixels per chunk of the Canny and shading steps (5 images at 224 px): each of their int32, float32
and float64 temporaries of a chunk (1-2 MB) stays in a core's cache."""


def sobel(levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel gradients (gx, gy) of 8-bit ``levels`` (N, 1, H, W) with the edge pixels repeated,
    as int32: gx correlates with ``[1 2 1]^T [-1 0 1]`` (a difference across, summed 1-2-1
    down) and gy with its transpose, in float32 (exact for these integers)."""
    padded = F.pad(levels.float(), (1, 1, 1, 1), mode="replicate")
    across = padded[..., 2:] - padded[..., :-2]
    down = padded[..., 2:, :] - padded[..., :-2, :]
    gx = across[..., :-2, :] + 2.0 * across[..., 1:-1, :] + across[..., 2:, :]
    gy = down[..., :-2] + 2.0 * down[..., 1:-1] + down[..., 2:]
    return gx.int(), gy.int()


def canny(levels: torch.Tensor, low: float = CANNY_LOW, high: float = CANNY_HIGH) -> torch.Tensor:
    """Canny edges (OpenCV ``Canny``, aperture 3, L1 gradient) of 8-bit ``levels`` (N, 1, H, W)
    as a bool mask.

    Sobel gradients (gx, gy) (``sobel``); magnitude ``g = |gx| + |gy|``. A pixel
    with ``g > low`` is a candidate if g is a maximum across its gradient direction, quantised as
    OpenCV does in fixed point (``tan 22.5 deg`` = 13573 / 2^15): horizontal when
    ``|gy| < |gx| tan 22.5``, vertical when ``|gy| > |gx| tan 67.5``, else the diagonal along the
    signs; "maximum" is ``>`` against the left (upper) neighbour and ``>=`` against the right
    (lower) one, ``>`` against both diagonal ones, with 0 outside the image. Candidates with
    ``g > high`` are edges, and so is every candidate 8-connected to an edge (hysteresis). All in
    int32 arithmetic, exact.
    """
    gx, gy = sobel(levels)
    ax, ay = gx.abs(), gy.abs()
    magnitude = ax + ay
    tan22, scaled = ax * TAN_22_5_FIXED, ay << FIXED_SHIFT
    horizontal = scaled < tan22
    vertical = ~horizontal & (scaled > tan22 + (ax << (FIXED_SHIFT + 1)))
    same_signs = (gx < 0) == (gy < 0)
    height, width = magnitude.shape[-2:]
    framed = F.pad(magnitude, (1, 1, 1, 1))

    def around(dy: int, dx: int) -> torch.Tensor:
        return framed[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]

    along_x = (magnitude > around(0, -1)) & (magnitude >= around(0, 1))
    along_y = (magnitude > around(-1, 0)) & (magnitude >= around(1, 0))
    falling = (magnitude > around(-1, -1)) & (magnitude > around(1, 1))
    rising = (magnitude > around(-1, 1)) & (magnitude > around(1, -1))
    diagonal = torch.where(same_signs, falling, rising)
    peak = torch.where(horizontal, along_x, torch.where(vertical, along_y, diagonal))
    candidate = (magnitude > low) & peak
    edges = candidate & (magnitude > high)
    while True:
        grown = edges | (candidate & dilate(edges))
        if torch.equal(grown, edges):
            return edges
        edges = grown


def chamfer_distance(sources: torch.Tensor, cap: float) -> torch.Tensor:
    """Distance (px) from each pixel to the nearest ``sources`` pixel, at most ``cap``: OpenCV's
    ``distanceTransform`` with ``DIST_L2`` and its 5x5 mask, the cheapest path of steps costing
    1 (sideways), 1.4 (diagonal) and 2.1969 (knight's move), in OpenCV's 16-bit fixed point
    (int32 sums, exact).

    sources: bool (N, 1, H, W); pixels outside the image are no sources and paths stay inside.
    Two raster passes as OpenCV runs them (``chamfer_pass``): top to bottom, each pixel taking
    the steps from the rows above and from its left, then bottom to top with the mirrored steps.
    A cheapest path can be ordered as steps of the first half-mask followed by steps of the
    second, so the passes reach the cheapest cost everywhere; costs past the cap are cut to it.
    """
    limit = round(cap * CHAMFER_SCALE)
    far = limit + 4 * CHAMFER_SCALE
    rows = torch.full(sources[:, 0].transpose(0, 1).shape, far, dtype=torch.int32, device=sources.device)
    rows.masked_fill_(sources[:, 0].transpose(0, 1), 0)
    rows = chamfer_pass(chamfer_pass(rows, far).flip(0, 2), far).flip(0, 2)
    return (rows.clamp(max=limit).transpose(0, 1).to(torch.float64) / CHAMFER_SCALE).unsqueeze(1)


def chamfer_pass(rows: torch.Tensor, far: int) -> torch.Tensor:
    """One top-to-bottom, left-to-right pass of the 5x5 chamfer mask over (H, N, W) int32 costs
    (rows first, so each row of the batch is one contiguous block).

    Row r first takes ``min(d, d_above + step)`` over the steps from rows r - 1 (dx = -2..2:
    knight, diagonal, sideways, diagonal, knight) and r - 2 (dx = +-1: knight), read from rows
    already passed, steps of one cost together as ``min(d_a, d_b) + cost``; then the sideways
    steps from the left, ``d_x = min_{j <= x} d_j + (x - j) s``, as ``x s + cummin_x(d_x - x s)``.
    The costs sit in a frame of ``far`` two pixels wide (the pixels outside the image).
    """
    straight, diagonal, knight = CHAMFER_COSTS
    width = rows.shape[-1]
    sideways = straight * torch.arange(width, dtype=rows.dtype, device=rows.device)
    framed = F.pad(rows, (2, 2, 0, 0, 2, 0), value=far)

    def at(row: int, dx: int) -> torch.Tensor:
        return framed[row, :, 2 + dx : 2 + dx + width]

    for row in range(2, framed.shape[0]):
        knights = torch.minimum(torch.minimum(at(row - 1, -2), at(row - 1, 2)), torch.minimum(at(row - 2, -1), at(row - 2, 1)))
        diagonals = torch.minimum(at(row - 1, -1), at(row - 1, 1))
        reached = torch.minimum(at(row, 0), knights.add_(knight))
        reached = torch.minimum(torch.minimum(reached, diagonals.add_(diagonal)), at(row - 1, 0) + straight)
        framed[row, :, 2:-2] = torch.cummin(reached - sideways, dim=1).values + sideways
    return framed[2:, :, 2:-2]


def equalise(levels: torch.Tensor) -> torch.Tensor:
    """Per-image histogram equalisation of 8-bit ``levels`` (N, ...) to 8-bit values (OpenCV
    ``equalizeHist``): ``round(255 (cdf(v) - cdf_min) / (count - cdf_min))``, cdf(v) the number of
    the image's values <= v and cdf_min that of its smallest value; a constant image keeps its value."""
    n = levels.shape[0]
    flat = levels.reshape(n, -1).long()
    offsets = flat + 256 * torch.arange(n, device=flat.device).view(n, 1)
    cdf = torch.bincount(offsets.reshape(-1), minlength=n * 256).view(n, 256).cumsum(dim=1)
    lowest = cdf.gather(1, flat.amin(dim=1, keepdim=True))
    scale = (255.0 / (flat.shape[1] - lowest).clamp_min(1)).float()
    mapped = ((cdf.gather(1, flat) - lowest).float() * scale).round()
    constant = lowest == flat.shape[1]
    return torch.where(constant, flat.float(), mapped).view(levels.shape)


def water_shading(stored: torch.Tensor, cap: float) -> torch.Tensor:
    """The 8-bit shading of the water drops of an 8-bit liquid layer (N, 1, H, W): chamfer distance
    to the Canny edges, 3x3 mean truncated, equalised, embossed, 3x3 mean rounded. The chamfer
    passes, which make a few calls per image row whatever the batch size, run on the whole batch;
    the steps before and after them, each exact, run by chunks of images (``per_chunk``)."""
    distance = chamfer_distance(per_chunk(canny, stored, SHADING_CHUNK_VALUES), cap)
    return per_chunk(lambda part: shade(part, cap, stored.dtype), distance, SHADING_CHUNK_VALUES)


def shade(distance: torch.Tensor, cap: float, dtype: torch.dtype) -> torch.Tensor:
    """The 8-bit shading (``dtype``) from the float64 chamfer distances (N, 1, H, W), capped at ``cap``."""
    # 3x3 sums of distances (whole multiples of 2^-16 px) are exact in float32 below 2^8 px.
    exact = torch.float32 if 9 * round(cap * CHAMFER_SCALE) < 1 << 24 else torch.float64
    distance = (filter2d(distance.to(exact), SUM3).double() / 9.0 + 1e-9).floor()
    embossed = filter2d(equalise(distance).to(dtype), EMBOSS).round().clamp(0.0, 255.0)
    return (filter2d(embossed, SUM3) / 9.0).round()


@corruption("weather", is_random=True, held_out=True, whole_batch=True,
            small=((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
                   (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
            medium=((0.62, 0.1, 0.7, 0.7, 0.6, 0), (0.65, 0.1, 0.8, 0.7, 0.6, 0), (0.65, 0.3, 1, 0.69, 0.6, 0),
                    (0.65, 0.1, 0.7, 0.68, 0.6, 1), (0.65, 0.1, 0.5, 0.67, 0.6, 1)),
            large=((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
                   (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)))
def spatter(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Water or mud drops; see the module docstring for the formulas and the table."""
    (mean, std, sigma, threshold, strength, mud), scale = level
    field = mean + std * rng.randn(1, *images.shape[-2:]).to(images)
    liquid = gaussian_blur(field, sigma * scale)
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if mud:
        mask = gaussian_blur((liquid > threshold).to(images.dtype), strength * scale)
        mask = torch.where(mask < MUD_FLOOR, torch.zeros_like(mask), mask)
        colour = colour_value(MUD_RGB, images.shape[1], images)
        return (images * (1.0 - mask) + mask * colour).clamp_(0.0, 1.0)
    stored = (255.0 * liquid).floor().clamp(0.0, 255.0)
    mask = stored * water_shading(stored, DISTANCE_CAP * scale)
    mask = strength * mask / mask.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    colour = colour_value(WATER_RGB, images.shape[1], images)
    return (images + mask * colour).clamp_(0.0, 1.0)
