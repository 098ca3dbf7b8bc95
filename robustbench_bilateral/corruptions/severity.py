"""Severity tables of the 19 common corruptions and the rule that picks one for an image size.

Rule: a batch whose short side ``min(H, W)`` is at least ``IMAGENET_MIN_SIZE`` = 128 px uses the
ImageNet-C tables (Hendrycks' ``make_imagenet_c.py``, written for 224 px images); a smaller one
uses the CIFAR-10-C tables (``make_cifar_c.py``, written for 32 px images). Parameters the tables
give in pixels (blur radii and sigmas, glass-blur displacement, snow flake zoom, elastic and
affine displacement, spatter smoothing and distance cap) are multiplied by the pixel scale
``s = min(H, W) / reference`` with reference 224 or 32, so a 28 px Fashion-MNIST image gets
``s = 0.875`` and a 448 px image ``s = 2``. Fractions, factors, intensities and JPEG qualities
are used as written.

Columns per corruption (pixel-valued ones marked [px]):

- gaussian_noise: sigma; shot_noise: photons per unit intensity lambda; impulse_noise: fraction
  of values replaced; speckle_noise: sigma of the multiplicative noise.
- gaussian_blur: sigma [px]; defocus_blur: (disk radius [px], anti-alias sigma [px]);
  glass_blur: (sigma [px], max displacement [px], iterations); motion_blur: (radius [px],
  sigma [px]); zoom_blur: (largest zoom factor, factor step).
- snow: (mean, std of the flake layer, zoom [px], threshold, blur radius [px], blur sigma [px],
  image weight); frost: (image weight, frost weight); fog: (fog weight, fractal decay);
  brightness: value offset; spatter: (mean, std, smoothing sigma [px], threshold,
  water intensity or mud sigma [px], 0 = water / 1 = mud).
- contrast: factor; saturate: (saturation factor, offset); jpeg_compression: quality;
  pixelate: side fraction; elastic_transform: (alpha [px], sigma [px], affine shift [px]).

The mean squared change does not grow with every severity step; by construction of the tables:
saturate desaturates at 1-2 and saturates from 3 on; spatter switches from water (1-3) to mud
(4-5); the CIFAR-10-C elastic rows shrink the affine shift faster than the elastic part grows and
the ImageNet-C ones trade a large smooth warp (1-2) for a small local one (3-5); glass blur blurs
more before it shuffles at CIFAR-10-C severities 3 and 5, so the shuffled pixels are more alike;
frost darkens the image at CIFAR-10-C severity 4 under the same frost weight; CIFAR-10-C motion
blur rows 3 and 4 share sigma 2 (the longer radius adds only taps beyond 4 sigma). After scaling,
rounding can merge settings: glass blur displacements 1 and 2 px both become 1 px at 128 px, and
pixelate's near-1 fractions at 28-32 px keep sides one or two pixels apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IMAGENET_MIN_SIZE = 128
SEVERITIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Regime:
    """One family of severity tables and the image side (px) its pixel values refer to."""

    name: str
    reference_size: int
    tables: dict[str, tuple]


_I = 244
IMAGENET_C = Regime(
    "imagenet-c",
    224,
    {
        "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
        "shot_noise": (60, 25, 12, 5, 3),
        "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
        "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),
        "gaussian_blur": (1, 2, 3, 4, 6),
        "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
        "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
        "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
        "zoom_blur": ((1.10, 0.01), (1.15, 0.01), (1.20, 0.02), (1.24, 0.02), (1.30, 0.03)),
        "snow": (
            (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
            (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
            (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
            (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
            (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
        ),
        "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
        "fog": ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
        "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
        "spatter": (
            (0.65, 0.3, 4, 0.69, 0.6, 0),
            (0.65, 0.3, 3, 0.68, 0.6, 0),
            (0.65, 0.3, 2, 0.68, 0.5, 0),
            (0.65, 0.3, 1, 0.65, 1.5, 1),
            (0.67, 0.4, 1, 0.65, 1.5, 1),
        ),
        "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
        "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
        "jpeg_compression": (25, 18, 15, 10, 7),
        "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
        "elastic_transform": (
            (_I * 2, _I * 0.7, _I * 0.1),
            (_I * 2, _I * 0.08, _I * 0.2),
            (_I * 0.05, _I * 0.01, _I * 0.02),
            (_I * 0.07, _I * 0.01, _I * 0.02),
            (_I * 0.12, _I * 0.01, _I * 0.02),
        ),
    },
)

_C = 32
CIFAR_10_C = Regime(
    "cifar-10-c",
    32,
    {
        "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
        "shot_noise": (500, 250, 100, 75, 50),
        "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
        "speckle_noise": (0.06, 0.1, 0.12, 0.16, 0.2),
        "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1),
        "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
        "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
        "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
        "zoom_blur": ((1.05, 0.01), (1.10, 0.01), (1.15, 0.01), (1.20, 0.01), (1.25, 0.01)),
        "snow": (
            (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
            (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
            (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
        ),
        "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
        "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
        "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
        "spatter": (
            (0.62, 0.1, 0.7, 0.7, 0.5, 0),
            (0.65, 0.1, 0.8, 0.7, 0.5, 0),
            (0.65, 0.3, 1, 0.69, 0.5, 0),
            (0.65, 0.1, 0.7, 0.69, 0.6, 1),
            (0.65, 0.1, 0.5, 0.68, 0.6, 1),
        ),
        "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
        "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
        "jpeg_compression": (80, 65, 58, 50, 40),
        "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
        "elastic_transform": (
            (_C * 0, _C * 0, _C * 0.08),
            (_C * 0.05, _C * 0.2, _C * 0.07),
            (_C * 0.08, _C * 0.06, _C * 0.06),
            (_C * 0.1, _C * 0.04, _C * 0.05),
            (_C * 0.1, _C * 0.03, _C * 0.03),
        ),
    },
)


def regime_for(height: int, width: int) -> Regime:
    """ImageNet-C tables when ``min(height, width) >= 128`` px, CIFAR-10-C tables otherwise."""
    return IMAGENET_C if min(height, width) >= IMAGENET_MIN_SIZE else CIFAR_10_C


def check_severity(severity: int) -> None:
    """Raise ValueError unless ``severity`` is an integer in 1..5."""
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer from 1 to 5, got {severity!r}")


def level(name: str, severity: int, images: torch.Tensor) -> tuple:
    """``(row, s)``: the table row of corruption ``name`` at ``severity`` for these images, and
    the pixel scale ``s = min(H, W) / reference_size`` to multiply its [px] entries with."""
    check_severity(severity)
    height, width = images.shape[-2:]
    regime = regime_for(height, width)
    return regime.tables[name][severity - 1], min(height, width) / regime.reference_size
