"""Weather corruptions: snow, frost, fog and brightness (spatter lives in ``spatter``)."""

from __future__ import annotations

import torch

from robustbench_bilateral.corruptions.colour import add_value, colour_value, luminance
from robustbench_bilateral.corruptions.filters import directional_blur, zoom_centre
from robustbench_bilateral.corruptions.severity import level
from robustbench_bilateral.corruptions.textures import FROST_TINT, frost_texture, plasma_fractal
from robustbench_bilateral.rng import ExampleRNG


def snow(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """Falling snow over a brightened image.

    Flakes: a normal field (mean, std) per pixel, magnified by ``max(1, zoom s)`` about the
    centre, zero below ``threshold``, clipped to [0, 1] and motion-blurred (radius s, sigma s px)
    at an angle uniform in [-135, -45) deg. The image becomes
    ``w x + (1 - w) max(x, 1.5 luma(x) + 0.5)`` and the flakes are added twice, as drawn and
    rotated by 180 deg.
    """
    (mean, std, zoom, threshold, radius, sigma, weight), scale = level("snow", severity, images)
    flakes = mean + std * rng.randn(1, *images.shape[-2:]).to(images)
    flakes = zoom_centre(flakes, max(1.0, zoom * scale))
    flakes = torch.where(flakes < threshold, torch.zeros_like(flakes), flakes).clamp(0.0, 1.0)
    angles = 90.0 * rng.rand() - 135.0
    flakes = directional_blur(flakes, radius * scale, sigma * scale, angles)
    bright = torch.maximum(images, 1.5 * luminance(images) + 0.5)
    scene = weight * images + (1.0 - weight) * bright
    return (scene + flakes + flakes.flip(-2, -1)).clamp(0.0, 1.0)


def frost(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """``clip(a x + b F, 0, 1)`` with F a procedural ice texture (``textures.frost_texture``)
    tinted icy white ``FROST_TINT`` (its luma on grey images); (a, b) from the table."""
    (image_weight, frost_weight), _ = level("frost", severity, images)
    texture = frost_texture(rng, *images.shape[-2:]).to(images).unsqueeze(1)
    tinted = texture * colour_value(FROST_TINT, images.shape[1], images)
    return (image_weight * images + frost_weight * tinted).clamp(0.0, 1.0)


def fog(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """``clip((x + t P) m / (m + t), 0, 1)``: P a plasma fractal of the table's decay, t its
    weight, m the image's maximum (all channels)."""
    (weight, decay), _ = level("fog", severity, images)
    plasma = plasma_fractal(rng, *images.shape[-2:], decay).to(images).unsqueeze(1)
    peak = images.amax(dim=(1, 2, 3), keepdim=True)
    return ((images + weight * plasma) * peak / (peak + weight)).clamp(0.0, 1.0)


def brightness(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """HSV value raised by the table's offset, hue and saturation kept (grey: ``clip(x + c)``)."""
    offset, _ = level("brightness", severity, images)
    return add_value(images, offset).clamp(0.0, 1.0)
