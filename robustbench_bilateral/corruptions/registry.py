"""The registries of common corruptions and additive noises (filled in ``corruptions/__init__``),
name resolution and checked entry points.

Images are float (N, C, H, W) tensors in [0, 1] with C = 1 or 3, on any device; outputs keep
shape, dtype and device. The severity tables were made for 32, 64 and 224 px images; sizes from
28 px up are what they are meant for, and ``MIN_SIZE`` = 8 px (one JPEG block, the 8x8 digits
set) is the smallest accepted.
"""

from __future__ import annotations

import torch

from robustbench_bilateral.corruptions.entry import GROUPS, Corruption, Noise
from robustbench_bilateral.corruptions.severity import check_severity
from robustbench_bilateral.registry import Registry
from robustbench_bilateral.rng import ExampleRNG

MIN_SIZE = 8
SETS = ("all", "imagenet-c", "held-out")

CORRUPTIONS: Registry[Corruption] = Registry("corruption", "bilat-eval list corruptions")
NOISES: Registry[Noise] = Registry("noise", "bilat-eval list corruptions")


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
        if channels == 1 and token in CORRUPTIONS and CORRUPTIONS.get(token).colour_only:
            raise ValueError(f"corruption {token!r} needs RGB images; these have 1 channel")
        keep = [name for name in members if channels != 1 or not CORRUPTIONS.get(name).colour_only]
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
    """The registered corruption ``name`` at ``severity`` (``Corruption.__call__``) after checking
    the name, severity (1..5), images and that the rng has one row per image."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTIONS)}")
    check_severity(severity)
    check_images(images)
    _check_rng(rng, images)
    return CORRUPTIONS.get(name)(images, severity, rng)


def apply_noise(name: str, images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """The registered noise ``name`` at ``strength`` after checking the name, strength >= 0 (and
    at most its ``max_strength``), images and rng."""
    if name not in NOISES:
        raise ValueError(f"unknown noise {name!r}; valid: {', '.join(NOISES)}")
    entry = NOISES.get(name)
    if not strength >= 0 or (entry.max_strength is not None and strength > entry.max_strength):
        upper = "" if entry.max_strength is None else f" and <= {entry.max_strength}"
        raise ValueError(f"{name} noise strength ({entry.unit}) must be >= 0{upper}, got {strength!r}")
    check_images(images)
    _check_rng(rng, images)
    return entry(images, strength, rng)


def _check_rng(rng: ExampleRNG, images: torch.Tensor) -> None:
    if len(rng) != images.shape[0]:
        raise ValueError(f"the rng covers {len(rng)} examples but the batch has {images.shape[0]} images")
