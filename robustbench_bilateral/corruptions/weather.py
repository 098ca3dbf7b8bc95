"""Weather corruptions: snow, frost, fog and brightness (spatter lives in ``spatter``)."""

from __future__ import annotations

import torch

from robustbench_bilateral.corruptions.colour import add_value, luminance
from robustbench_bilateral.corruptions.entry import corruption
from robustbench_bilateral.corruptions.filters import clipped_zoom, directional_blur
from robustbench_bilateral.corruptions.photos import covering_factor, resized_frost_photo
from robustbench_bilateral.corruptions.severity import Level
from robustbench_bilateral.corruptions.textures import plasma_fractal
from robustbench_bilateral.rng import ExampleRNG

FROST_PHOTOS_DRAWN = 5


@corruption("weather", is_random=True,
            small=((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
                   (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
            medium=((0.1, 0.2, 1, 0.6, 8, 3, 0.8), (0.1, 0.2, 1, 0.5, 10, 4, 0.8), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
                    (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6)),
            large=((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
                   (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)))
def snow(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Falling snow over a brightened image.

    Flakes: a normal field (mean, std) per pixel, magnified by ``max(1, zoom s)`` with
    ``filters.clipped_zoom``, zero below ``threshold``, clipped to [0, 1] and motion-blurred (radius s, sigma s px)
    at an angle uniform in [-135, -45) deg. The image becomes
    ``w x + (1 - w) max(x, 1.5 luma(x) + 0.5)`` and the flakes are added twice, as drawn and
    rotated by 180 deg. Table: (mean, std of the flake layer, zoom [px], threshold, blur radius
    [px], blur sigma [px], image weight w).
    """
    (mean, std, zoom, threshold, radius, sigma, weight), scale = level
    flakes = mean + std * rng.randn(1, *images.shape[-2:]).to(images)
    flakes = clipped_zoom(flakes, max(1.0, zoom * scale))
    flakes = torch.where(flakes < threshold, torch.zeros_like(flakes), flakes).clamp(0.0, 1.0)
    angles = 90.0 * rng.rand() - 135.0
    flakes = directional_blur(flakes, radius * scale, sigma * scale, angles)
    bright = torch.maximum(images, 1.5 * luminance(images) + 0.5)
    scene = weight * images + (1.0 - weight) * bright
    return (scene + flakes + flakes.flip(-2, -1)).clamp_(0.0, 1.0)


@corruption("weather", is_random=True,
            small=((1, 0.2, 0.2), (1, 0.3, 0.2), (0.9, 0.4, 0.2), (0.85, 0.4, 0.2), (0.75, 0.45, 0.2)),
            medium=((1, 0.3, 0.3), (0.9, 0.4, 0.3), (0.8, 0.45, 0.3), (0.75, 0.5, 0.3), (0.7, 0.55, 0.3)),
            large=((1, 0.4, 1.1), (0.8, 0.6, 1.1), (0.7, 0.7, 1.1), (0.65, 0.7, 1.1), (0.6, 0.75, 1.1)))
def frost(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """``clip(a x + b F, 0, 1)`` with F a random crop of one of ImageNet-C's frost photos
    (``photos``); grey images take the crop's luma. Table: (image weight a, frost weight b,
    photo scale [px]).

    Each example draws one of the first five photos (the reference draws ``randint(5)``, so the
    sixth is never used), resizes it by ``photo scale * s`` (OpenCV ``INTER_LINEAR``; CIFAR-10-C
    shrinks the photos to 0.2, Tiny-ImageNet-C to 0.3, ``imagecorruptions`` 1.1.2 enlarges them
    by 1.1 with ``INTER_CUBIC``, here linear: change statistics within 3.5 % of it; enlarged
    further where the image would not fit) and crops (H, W) at a top-left corner uniform in
    ``[0, photo height - H) x [0, photo width - W)``. CIFAR-10-C rows 3 -> 4 darken the image
    (a 0.9 -> 0.85) under the same b, which partly cancels the frost.
    """
    (image_weight, frost_weight, photo_scale), scale = level
    height, width = images.shape[-2:]
    draws = rng.rand(3).tolist()
    crops = []
    for pick, down, across in draws:
        index = int(pick * FROST_PHOTOS_DRAWN)
        photo = resized_frost_photo(index, covering_factor(index, photo_scale * scale, height, width))
        top = int(down * (photo.shape[1] - height))
        left = int(across * (photo.shape[2] - width))
        crops.append(photo[:, top : top + height, left : left + width])
    texture = torch.stack(crops).to(images)
    if images.shape[1] == 1:
        texture = luminance(texture)
    return (image_weight * images + frost_weight * texture).clamp_(0.0, 1.0)


@corruption("weather", is_random=True,
            small=((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
            medium=((0.4, 3), (0.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)),
            large=((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)))
def fog(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """``clip((x + t P) m / (m + t), 0, 1)``: P a plasma fractal, m the image's maximum (all
    channels); table: (fog weight t, fractal decay)."""
    (weight, decay), _ = level
    height, width = images.shape[-2:]
    plasma = plasma_fractal(rng, height, width, decay).to(images).unsqueeze(1)
    peak = images.amax(dim=(1, 2, 3), keepdim=True)
    return ((images + weight * plasma) * peak / (peak + weight)).clamp_(0.0, 1.0)


@corruption("weather", is_random=False, small=(0.05, 0.1, 0.15, 0.2, 0.3),
            medium=(0.1, 0.2, 0.3, 0.4, 0.5), large=(0.1, 0.2, 0.3, 0.4, 0.5))
def brightness(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """HSV value raised by offset c, hue and saturation kept (grey: ``clip(x + c)``); table: c."""
    return add_value(images, level.row).clamp_(0.0, 1.0)
