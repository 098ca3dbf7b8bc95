"""Which severity table serves which image size, and the lookup of a table row for a batch.

Every corruption carries up to three tables of five rows, one row per severity 1..5 (``entry``),
each from the script Hendrycks wrote for one image size:

- ``small``: CIFAR-10-C (``make_cifar_c.py``, 32 px images),
- ``medium``: Tiny-ImageNet-C (``make_tinyimagenet_c.py``, 64 px images),
- ``large``: ImageNet-C (``make_imagenet_c.py`` as packaged by ``imagecorruptions`` 1.1.2, 224 px).

Rule, on the batch's short side ``m = min(H, W)``: ``m < 48`` px reads ``small`` (CIFAR-10-C),
``48 <= m < 128`` px reads ``medium`` (Tiny-ImageNet-C), ``m >= 128`` px reads ``large``
(ImageNet-C). The bounds sit near the geometric means of the reference sizes (45 and 120 px).
A corruption registered without a ``medium`` table serves 48-127 px from ``small``.

Parameters the tables give in pixels (marked [px] in each corruption's docstring: blur radii and
sigmas, glass-blur displacement, snow flake zoom, elastic and affine displacement, spatter
smoothing, the frost photos' scale) are multiplied by the pixel scale ``s = m / reference`` with
reference 32, 64 or 224 px for the table read, so a 28 px Fashion-MNIST image gets ``s = 0.875``
and a 448 px image ``s = 2``. Fractions, factors, intensities and JPEG qualities are used as
written. The mean squared change need not grow with every severity step; each corruption's
docstring says where its tables make it shrink.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

TINY_IMAGENET_MIN_SIZE = 48
IMAGENET_MIN_SIZE = 128
SEVERITIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Regime:
    """One image-size regime: the table it reads (``small``, ``medium`` or ``large``) and the
    image side (px) that table's pixel values refer to."""

    name: str
    table: str
    reference_size: int


CIFAR_10_C = Regime("cifar-10-c", "small", 32)
TINY_IMAGENET_C = Regime("tiny-imagenet-c", "medium", 64)
IMAGENET_C = Regime("imagenet-c", "large", 224)


class Level(NamedTuple):
    """One severity of one corruption for one batch: the table ``row`` and the pixel ``scale``
    ``s = min(H, W) / reference_size`` to multiply its [px] entries with."""

    row: Any
    scale: float


def regime_for(height: int, width: int) -> Regime:
    """CIFAR-10-C under 48 px short side, Tiny-ImageNet-C from 48 to 127 px, ImageNet-C from 128 px."""
    side = min(height, width)
    if side >= IMAGENET_MIN_SIZE:
        return IMAGENET_C
    return TINY_IMAGENET_C if side >= TINY_IMAGENET_MIN_SIZE else CIFAR_10_C


def check_severity(severity: int) -> None:
    """Raise ValueError unless ``severity`` is an integer in 1..5."""
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer from 1 to 5, got {severity!r}")


def level(small: tuple, medium: tuple | None, large: tuple, severity: int, images: torch.Tensor) -> Level:
    """The ``Level`` of ``severity`` for these images: row ``severity - 1`` of the table their
    size regime reads and that regime's pixel scale (``small`` at 32 px when ``medium`` is None)."""
    check_severity(severity)
    height, width = images.shape[-2:]
    regime = regime_for(height, width)
    if regime is TINY_IMAGENET_C and medium is None:
        regime = CIFAR_10_C
    table = {"small": small, "medium": medium, "large": large}[regime.table]
    assert table is not None
    return Level(table[severity - 1], min(height, width) / regime.reference_size)
