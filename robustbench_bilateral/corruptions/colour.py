"""Colour helpers on (N, C, H, W) images in [0, 1] with C = 1 (grey) or 3 (RGB).

HSV edits keep hue and are written directly on RGB: with ``V = max_c x_c``, ``m = min_c x_c``
and ``S = (V - m) / V``, every channel is ``x_c = V - (V - x_c)``, so setting S to ``S'`` maps
``x_c -> V - (V - x_c) S' / S`` and setting V to ``V'`` maps ``x_c -> x_c V' / V``. This is what
scikit-image's ``rgb2hsv`` / ``hsv2rgb`` round trip gives, including its conventions for grey
pixels (S = 0, hue 0 = red) and black pixels (V = 0).
"""

from __future__ import annotations

import torch

LUMA = (0.299, 0.587, 0.114)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` as (N, 1, H, W); grey images as they are."""
    if images.shape[1] == 1:
        return images
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def colour_value(rgb: tuple[float, float, float], channels: int, like: torch.Tensor) -> torch.Tensor:
    """An 8-bit RGB colour as a (1, C, 1, 1) tensor in [0, 1]: the colour, or its luma when C = 1."""
    values = torch.tensor(rgb, dtype=like.dtype, device=like.device).view(1, 3, 1, 1) / 255.0
    return luminance(values) if channels == 1 else values


def add_value(images: torch.Tensor, offset: float) -> torch.Tensor:
    """HSV value ``V' = clip(V + offset, 0, 1)`` with hue and saturation kept."""
    value = images.amax(dim=1, keepdim=True)
    new_value = (value + offset).clamp(0.0, 1.0)
    scaled = images * (new_value / value.clamp_min(torch.finfo(images.dtype).tiny))
    return torch.where(value > 0, scaled, new_value.expand_as(images))


def scale_saturation(images: torch.Tensor, factor: float, offset: float) -> torch.Tensor:
    """HSV saturation ``S' = clip(S factor + offset, 0, 1)`` with hue and value kept (RGB only).

    Grey pixels have S = 0 and hue 0 (red), so a positive ``offset`` tints them red:
    ``(R, G, B) = (V, V (1 - S'), V (1 - S'))``.
    """
    value = images.amax(dim=1, keepdim=True)
    spread = value - images.amin(dim=1, keepdim=True)
    tiny = torch.finfo(images.dtype).tiny
    saturation = spread / value.clamp_min(tiny)
    new_saturation = (saturation * factor + offset).clamp(0.0, 1.0)
    coloured = value - (value - images) * (new_saturation / saturation.clamp_min(tiny))
    red = torch.tensor((0.0, 1.0, 1.0), dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    grey = value - value * new_saturation * red
    return torch.where(saturation > 0, coloured, grey)
