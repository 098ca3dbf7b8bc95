"""The frost photographs of ImageNet-C, read from the ``imagecorruptions`` package's data files.

``imagecorruptions`` (Apache-2.0) ships Hendrycks' six frost photos as package data; the
harness needs only those files, so the package is installed without its dependencies
(``FROST_INSTALL``) and never imported: ``importlib.metadata`` locates the files. Photos are
decoded to RGB in [0, 1] and resized as OpenCV's ``INTER_LINEAR`` does (``linear_resize_matrix``),
each (photo, factor) pair once per process.
"""

from __future__ import annotations

import importlib.metadata
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from robustbench_bilateral.errors import InputError

FROST_DISTRIBUTION = "imagecorruptions"
FROST_INSTALL = "pip install --no-deps imagecorruptions==1.1.2"
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


def frost_photo_paths(distribution: str = FROST_DISTRIBUTION) -> list[Path]:
    """The six frost photos' paths inside the installed ``distribution``; InputError naming the
    install command when it or a photo is missing."""
    try:
        package = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise InputError(f"the frost corruption needs the frost photos of the {distribution} package: run {FROST_INSTALL}") from None
    paths = [Path(str(package.locate_file(f"imagecorruptions/frost/{name}"))) for name in FROST_FILES]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise InputError(f"the {distribution} package lacks the frost photos {', '.join(missing)}: reinstall it with {FROST_INSTALL}")
    return paths


@lru_cache(maxsize=len(FROST_FILES))
def frost_photo(index: int) -> torch.Tensor:
    """Frost photo ``index`` (0-5) as float32 (3, H, W) RGB in [0, 1] (8-bit values / 255)."""
    with Image.open(frost_photo_paths()[index]) as photo:
        pixels = np.asarray(photo.convert("RGB"))
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).double().div(255.0).float()


def linear_resize_matrix(source: int, factor: float) -> torch.Tensor:
    """(round(source factor), source) matrix of OpenCV's ``INTER_LINEAR`` resize by ``factor``.

    Output pixel i reads position ``(i + 1/2) / factor - 1/2`` (pixel centres aligned, no
    anti-aliasing), interpolating its two neighbours; positions before the first pixel or after
    the last read that pixel.
    """
    target = max(1, round(source * factor))
    position = ((torch.arange(target, dtype=torch.float64) + 0.5) / factor - 0.5).clamp(0, source - 1)
    low = position.floor()
    fraction = position - low
    high = (low + 1).clamp(max=source - 1)
    matrix = torch.zeros(target, source, dtype=torch.float64)
    rows = torch.arange(target)
    matrix.index_put_((rows, low.long()), 1.0 - fraction, accumulate=True)
    matrix.index_put_((rows, high.long()), fraction, accumulate=True)
    return matrix


@lru_cache(maxsize=32)
def resized_frost_photo(index: int, factor: float) -> torch.Tensor:
    """Frost photo ``index`` resized by ``factor`` (``linear_resize_matrix``); factor 1 keeps it."""
    photo = frost_photo(index)
    if factor == 1.0:
        return photo
    rows = linear_resize_matrix(photo.shape[1], factor).float()
    cols = linear_resize_matrix(photo.shape[2], factor).float()
    return (rows @ photo @ cols.T).clamp(0.0, 1.0)


def covering_factor(index: int, factor: float, height: int, width: int) -> float:
    """``factor``, or the smallest larger one that leaves the resized photo ``index`` at least one
    pixel more than (height, width), so a random crop has room."""
    _, photo_height, photo_width = frost_photo(index).shape
    need = max((height + 1) / photo_height, (width + 1) / photo_width)
    return factor if factor >= need else math.ceil(need * 1000) / 1000
