"""The registry of common corruptions and additive noises, name resolution and checked entry points.

Images are float (N, C, H, W) tensors in [0, 1] with C = 1 or 3, on any device; outputs keep
shape, dtype and device. The severity tables were made for 32 px and 224 px images; sizes from
28 px up are what they are meant for, and ``MIN_SIZE`` = 8 px (one JPEG block, the 8x8 digits
set) is the smallest accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from robustbench_bilateral.corruptions import blur, digital, noise, spatter, weather
from robustbench_bilateral.corruptions.severity import check_severity
from robustbench_bilateral.rng import ExampleRNG

MIN_SIZE = 8
GROUPS = ("noise", "blur", "weather", "digital")
SETS = ("all", "imagenet-c", "held-out")

CorruptionFn = Callable[[torch.Tensor, int, ExampleRNG], torch.Tensor]
NoiseFn = Callable[[torch.Tensor, float, ExampleRNG], torch.Tensor]


@dataclass(frozen=True)
class Corruption:
    """One common corruption: ``fn(images, severity, rng)``, severity 1..5.

    ``is_random``: it draws from the rng (otherwise the output depends on the images only);
    ``held_out``: one of the 4 extra corruptions outside the 15 of ImageNet-C;
    ``colour_only``: it needs RGB input and raises ValueError on grey images.
    """

    name: str
    group: str
    fn: CorruptionFn
    is_random: bool
    held_out: bool = False
    colour_only: bool = False


@dataclass(frozen=True)
class Noise:
    """An additive noise threat ``fn(images, strength, rng)``; ``strength`` is its ``unit``."""

    name: str
    fn: NoiseFn
    unit: str
    max_strength: float | None = None


def _entries() -> list[Corruption]:
    return [
        Corruption("gaussian_noise", "noise", noise.gaussian_noise, True),
        Corruption("shot_noise", "noise", noise.shot_noise, True),
        Corruption("impulse_noise", "noise", noise.impulse_noise, True),
        Corruption("defocus_blur", "blur", blur.defocus_blur, False),
        Corruption("glass_blur", "blur", blur.glass_blur, True),
        Corruption("motion_blur", "blur", blur.motion_blur, True),
        Corruption("zoom_blur", "blur", blur.zoom_blur, False),
        Corruption("snow", "weather", weather.snow, True),
        Corruption("frost", "weather", weather.frost, True),
        Corruption("fog", "weather", weather.fog, True),
        Corruption("brightness", "weather", weather.brightness, False),
        Corruption("contrast", "digital", digital.contrast, False),
        Corruption("elastic_transform", "digital", digital.elastic_transform, True),
        Corruption("pixelate", "digital", digital.pixelate, False),
        Corruption("jpeg_compression", "digital", digital.jpeg_compression, False),
        Corruption("speckle_noise", "noise", noise.speckle_noise, True, held_out=True),
        Corruption("gaussian_blur", "blur", blur.gaussian_blur, False, held_out=True),
        Corruption("spatter", "weather", spatter.spatter, True, held_out=True),
        Corruption("saturate", "digital", digital.saturate, False, held_out=True, colour_only=True),
    ]


CORRUPTIONS: dict[str, Corruption] = {entry.name: entry for entry in _entries()}
NOISES: dict[str, Noise] = {
    "gaussian": Noise("gaussian", noise.additive_gaussian, "sigma"),
    "uniform": Noise("uniform", noise.additive_uniform, "half-width"),
    "salt_pepper": Noise("salt_pepper", noise.salt_pepper, "fraction", max_strength=1.0),
}


def _members(token: str) -> list[str] | None:
    """The corruptions a set or group name stands for, in registry order; None for other tokens."""
    if token == "all":
        return list(CORRUPTIONS)
    if token == "imagenet-c":
        return [name for name, entry in CORRUPTIONS.items() if not entry.held_out]
    if token == "held-out":
        return [name for name, entry in CORRUPTIONS.items() if entry.held_out]
    if token in GROUPS:
        return [name for name, entry in CORRUPTIONS.items() if entry.group == token]
    return [token] if token in CORRUPTIONS else None


def resolve_corruptions(spec: str, channels: int | None = None) -> list[str]:
    """Corruption names for ``spec``: ``all``, ``imagenet-c`` (the 15), ``held-out`` (the 4), a
    group (``noise``, ``blur``, ``weather``, ``digital``) or names, comma-separated and combinable;
    duplicates are dropped, first occurrence kept.

    With ``channels=1``, sets and groups leave out colour-only corruptions (saturate) and naming
    one raises ValueError. An unknown token raises ValueError naming it and the valid ones.
    """
    names: list[str] = []
    tokens = [token.strip() for token in spec.split(",")]
    for token in tokens:
        members = _members(token)
        if members is None:
            valid = ", ".join([*SETS, *GROUPS, *CORRUPTIONS])
            raise ValueError(f"unknown corruption {token!r} in {spec!r}; valid: {valid}")
        if channels == 1 and token in CORRUPTIONS and CORRUPTIONS[token].colour_only:
            raise ValueError(f"corruption {token!r} needs RGB images; these have 1 channel")
        keep = [name for name in members if channels != 1 or not CORRUPTIONS[name].colour_only]
        names.extend(name for name in keep if name not in names)
    return names


def check_images(images: torch.Tensor) -> None:
    """Raise ValueError unless ``images`` is a floating (N, C, H, W) batch, C in {1, 3}, short
    side >= ``MIN_SIZE`` px."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError("images must be a floating-point tensor of shape (N, C, H, W) with values in [0, 1]")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]}")
    if min(images.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"images must be at least {MIN_SIZE} px on each side, got {tuple(images.shape[-2:])}")


def apply_corruption(name: str, images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """``CORRUPTIONS[name].fn(images, severity, rng)`` after checking the name, severity (1..5),
    images and that the rng has one row per image."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTIONS)}")
    check_severity(severity)
    check_images(images)
    _check_rng(rng, images)
    return CORRUPTIONS[name].fn(images, severity, rng)


def apply_noise(name: str, images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """``NOISES[name].fn(images, strength, rng)`` after checking the name, strength >= 0 (and
    <= 1 for a fraction), images and rng."""
    if name not in NOISES:
        raise ValueError(f"unknown noise {name!r}; valid: {', '.join(NOISES)}")
    entry = NOISES[name]
    if not strength >= 0 or (entry.max_strength is not None and strength > entry.max_strength):
        upper = "" if entry.max_strength is None else f" and <= {entry.max_strength}"
        raise ValueError(f"{name} noise strength ({entry.unit}) must be >= 0{upper}, got {strength!r}")
    check_images(images)
    _check_rng(rng, images)
    return entry.fn(images, strength, rng)


def _check_rng(rng: ExampleRNG, images: torch.Tensor) -> None:
    if len(rng) != images.shape[0]:
        raise ValueError(f"the rng covers {len(rng)} examples but the batch has {images.shape[0]} images")
