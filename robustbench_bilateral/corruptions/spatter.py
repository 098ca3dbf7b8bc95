"""Spatter (held out, weather group): water drops at severities 1-3, mud at 4-5.

Both start from a liquid layer: a normal field (mean, std) per pixel smoothed by a Gaussian of
``sigma s`` px and set to 0 below ``threshold``.

Water (ImageNet-C's Canny / distance-transform / emboss chain, as tensor ops): drop edges are the
drop pixels with a dry 8-neighbour; the chessboard distance to the nearest edge in whole px,
capped at ``floor(DISTANCE_CAP s)`` with ``DISTANCE_CAP`` = 20 px, is box-blurred (3x3 sums, exact
integers, so equal distances stay tied whatever the batch), histogram-equalised per image to
[0, 1], embossed with ``EMBOSS`` (clipped to [0, 1]) and box-blurred again (3x3 mean). The mask
``m = liquid * shading``, scaled to peak ``intensity``, adds pale turquoise ``WATER_RGB``:
``clip(x + m c, 0, 1)``.

Mud: the drop mask smoothed by a Gaussian of ``sigma_mud s`` px, zero below ``MUD_FLOOR`` = 0.8,
blends in brown ``MUD_RGB``: ``clip(x (1 - m) + m c, 0, 1)``. Grey images use the colours' luma.

Table: (mean, std, smoothing sigma [px], threshold, water intensity or mud sigma_mud [px],
0 = water / 1 = mud). Water brightens whole drops and mud covers only their opaque cores, so the
change can shrink from severity 3 to 4.
"""

from __future__ import annotations

import math

import torch

from robustbench_bilateral.corruptions.colour import colour_value
from robustbench_bilateral.corruptions.entry import corruption
from robustbench_bilateral.corruptions.filters import dilate, filter2d, gaussian_blur
from robustbench_bilateral.corruptions.severity import Level
from robustbench_bilateral.rng import ExampleRNG

WATER_RGB = (175, 238, 238)
MUD_RGB = (63, 42, 20)
DISTANCE_CAP = 20.0
MUD_FLOOR = 0.8
EMBOSS = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
BOX3 = torch.full((3, 3), 1.0 / 9.0)
SUM3 = torch.ones(3, 3)


def edge_distance(drops: torch.Tensor, cap: float) -> torch.Tensor:
    """Chessboard distance (whole px) from each pixel to the nearest drop edge, at most
    ``floor(cap)``, as an integer tensor.

    drops: bool (N, 1, H, W). An edge pixel is a drop pixel with a dry pixel among its 8
    neighbours. With ``R_k`` the edges dilated k times (3x3), the distance is the number of
    ``k < floor(cap)`` with the pixel outside ``R_k``.
    """
    reached = drops & dilate(~drops)
    distance = torch.zeros(drops.shape, dtype=torch.int64, device=drops.device)
    for _ in range(math.floor(cap)):
        distance += ~reached
        reached = dilate(reached)
    return distance


def equalise(levels: torch.Tensor) -> torch.Tensor:
    """Per-image histogram equalisation of non-negative integer ``levels`` (N, ...) to [0, 1]:
    ``(cdf(v) - cdf_min) / (count - cdf_min)``, cdf(v) the number of the image's values <= v and
    cdf_min that of its smallest value (OpenCV ``equalizeHist``); 0 for a constant image."""
    n = levels.shape[0]
    flat = levels.reshape(n, -1)
    bins = int(flat.max()) + 1
    offsets = flat + bins * torch.arange(n, device=flat.device).view(n, 1)
    cdf = torch.bincount(offsets.reshape(-1), minlength=n * bins).view(n, bins).cumsum(dim=1)
    lowest = cdf.gather(1, flat.amin(dim=1, keepdim=True))
    below = cdf.gather(1, flat)
    return ((below - lowest) / (flat.shape[1] - lowest).clamp_min(1)).view(levels.shape)


@corruption("weather", is_random=True, held_out=True,
            small=((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
                   (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
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
    distance = filter2d(edge_distance(liquid > 0, DISTANCE_CAP * scale).to(images), SUM3)
    shading = filter2d(equalise(distance.round().long()).to(images), EMBOSS).clamp(0.0, 1.0)
    mask = liquid * filter2d(shading, BOX3)
    mask = strength * mask / mask.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    colour = colour_value(WATER_RGB, images.shape[1], images)
    return (images + mask * colour).clamp(0.0, 1.0)
