"""Which severity table serves which image size, and the lookup of a table row for a batch.

Every corruption carries two tables of five rows, one row per severity 1..5 (``entry``):
``small`` from CIFAR-10-C (Hendrycks' ``make_cifar_c.py``, written for 32 px images) and
``large`` from ImageNet-C (``make_imagenet_c.py``, written for 224 px images).

Rule: a batch whose short side ``min(H, W)`` is at least ``IMAGENET_MIN_SIZE`` = 128 px uses the
large table, a smaller one the small table. Parameters the tables give in pixels (marked [px] in
each corruption's docstring: blur radii and sigmas, glass-blur displacement, snow flake zoom,
elastic and affine displacement, spatter smoothing and distance cap) are multiplied by the pixel
scale ``s = min(H, W) / reference`` with reference 224 or 32, so a 28 px Fashion-MNIST image gets
``s = 0.875`` and a 448 px image ``s = 2``. Fractions, factors, intensities and JPEG qualities
are used as written. The mean squared change need not grow with every severity step; each
corruption's docstring says where its tables make it shrink.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

IMAGENET_MIN_SIZE = 128
SEVERITIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Regime:
    """One image-size regime: whether it reads the ``large`` table (else the ``small`` one) and
    the image side (px) that table's pixel values refer to."""

    name: str
    uses_large: bool
    reference_size: int


IMAGENET_C = Regime("imagenet-c", True, 224)
CIFAR_10_C = Regime("cifar-10-c", False, 32)


class Level(NamedTuple):
    """One severity of one corruption for one batch: the table ``row`` and the pixel ``scale``
    ``s = min(H, W) / reference_size`` to multiply its [px] entries with."""

    row: Any
    scale: float


def regime_for(height: int, width: int) -> Regime:
    """ImageNet-C tables when ``min(height, width) >= 128`` px, CIFAR-10-C tables otherwise."""
    return IMAGENET_C if min(height, width) >= IMAGENET_MIN_SIZE else CIFAR_10_C


def check_severity(severity: int) -> None:
    """Raise ValueError unless ``severity`` is an integer in 1..5."""
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer from 1 to 5, got {severity!r}")


def level(small: tuple, large: tuple, severity: int, images: torch.Tensor) -> Level:
    """The ``Level`` of ``severity`` for these images: row ``severity - 1`` of the table their
    size regime reads (``small`` or ``large``) and the regime's pixel scale."""
    check_severity(severity)
    height, width = images.shape[-2:]
    regime = regime_for(height, width)
    table = large if regime.uses_large else small
    return Level(table[severity - 1], min(height, width) / regime.reference_size)
