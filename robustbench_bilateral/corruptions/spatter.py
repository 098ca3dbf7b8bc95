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

import math

import torch
import torch.nn.functional as F

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
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
SUM3 = torch.ones(3, 3)


def _shifted(values: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """``out[..., h, w] = values[..., h + dy, w + dx]``, ``fill`` outside the image."""
    height, width = values.shape[-2:]
    padded = F.pad(values, (abs(dx), abs(dx), abs(dy), abs(dy)), value=fill)
    return padded[..., abs(dy) + dy : abs(dy) + dy + height, abs(dx) + dx : abs(dx) + dx + width]


def canny(levels: torch.Tensor, low: float = CANNY_LOW, high: float = CANNY_HIGH) -> torch.Tensor:
    """Canny edges (OpenCV ``Canny``, aperture 3, L1 gradient) of 8-bit ``levels`` (N, 1, H, W)
    as a bool mask.

    Sobel gradients (gx, gy) with the edge pixels repeated; magnitude ``g = |gx| + |gy|``. A pixel
    with ``g > low`` is a candidate if g is a maximum across its gradient direction, quantised as
    OpenCV does in fixed point (``tan 22.5 deg`` = 13573 / 2^15): horizontal when
    ``|gy| < |gx| tan 22.5``, vertical when ``|gy| > |gx| tan 67.5``, else the diagonal along the
    signs; "maximum" is ``>`` against the left (upper) neighbour and ``>=`` against the right
    (lower) one, ``>`` against both diagonal ones, with 0 outside the image. Candidates with
    ``g > high`` are edges, and so is every candidate 8-connected to an edge (hysteresis).
    """
    padded = F.pad(levels.double(), (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, SOBEL_X.double().view(1, 1, 3, 3))
    gy = F.conv2d(padded, SOBEL_X.T.double().view(1, 1, 3, 3))
    magnitude = gx.abs() + gy.abs()
    ax, ay = gx.abs(), gy.abs() * (1 << FIXED_SHIFT)
    tan22 = ax * TAN_22_5_FIXED
    horizontal = ay < tan22
    vertical = ~horizontal & (ay > tan22 + ax * (1 << (FIXED_SHIFT + 1)))
    side = torch.where((gx < 0) != (gy < 0), -1, 1)

    def around(dy: int, dx: int) -> torch.Tensor:
        return _shifted(magnitude, dy, dx, 0.0)

    along_x = (magnitude > around(0, -1)) & (magnitude >= around(0, 1))
    along_y = (magnitude > around(-1, 0)) & (magnitude >= around(1, 0))
    falling = (magnitude > around(-1, -1)) & (magnitude > around(1, 1))
    rising = (magnitude > around(-1, 1)) & (magnitude > around(1, -1))
    diagonal = torch.where(side > 0, falling, rising)
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
    1 (sideways), 1.4 (diagonal) and 2.1969 (knight's move), in OpenCV's 16-bit fixed point.

    sources: bool (N, 1, H, W); pixels outside the image are no sources. Every step costs at
    least 1 px, so ``ceil(cap)`` relaxation rounds settle every distance up to the cap.
    """
    limit = round(cap * CHAMFER_SCALE)
    far = float(limit + 4 * CHAMFER_SCALE)
    distance = torch.where(sources, 0.0, far).to(torch.float64)
    straight, diagonal, knight = CHAMFER_COSTS
    steps = [(dy, dx, straight) for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]
    steps += [(dy, dx, diagonal) for dy in (-1, 1) for dx in (-1, 1)]
    steps += [(dy, dx, knight) for dy, dx in ((1, 2), (2, 1), (-1, 2), (-2, 1), (1, -2), (2, -1), (-1, -2), (-2, -1))]
    for _ in range(math.ceil(cap)):
        reached = distance
        for dy, dx, cost in steps:
            reached = torch.minimum(reached, _shifted(distance, dy, dx, far) + cost)
        distance = reached
    return distance.clamp(max=limit) / CHAMFER_SCALE


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
    to the Canny edges, 3x3 mean truncated, equalised, embossed, 3x3 mean rounded."""
    distance = chamfer_distance(canny(stored), cap)
    distance = (filter2d(distance, SUM3.to(distance)) / 9.0 + 1e-9).floor()
    embossed = filter2d(equalise(distance).to(stored), EMBOSS).round().clamp(0.0, 255.0)
    return (filter2d(embossed, SUM3) / 9.0).round()


@corruption("weather", is_random=True, held_out=True,
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
        return (images * (1.0 - mask) + mask * colour).clamp(0.0, 1.0)
    stored = (255.0 * liquid).floor().clamp(0.0, 255.0)
    mask = stored * water_shading(stored, DISTANCE_CAP * scale)
    mask = strength * mask / mask.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    colour = colour_value(WATER_RGB, images.shape[1], images)
    return (images + mask * colour).clamp(0.0, 1.0)
