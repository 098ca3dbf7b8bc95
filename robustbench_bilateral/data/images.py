"""Image arrays to ``datasets.Dataset`` and back to float tensors in [0, 1]."""

from __future__ import annotations

import datasets
import numpy as np
import torch

from robustbench_bilateral.preprocessing import Preprocessing


def image_dataset(images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> datasets.Dataset:
    """A Dataset with an ``image`` column (uint8, (H, W) or (H, W, C)) and a ``label`` column."""
    shape = images.shape[1:]
    array_type = datasets.Array2D if len(shape) == 2 else datasets.Array3D
    features = datasets.Features(
        {"image": array_type(shape=shape, dtype="uint8"), "label": datasets.ClassLabel(names=list(classes))}
    )
    return datasets.Dataset.from_dict(
        {"image": images.astype(np.uint8), "label": labels.astype(np.int64)}, features=features
    )


def image_tensors(
    dataset: datasets.Dataset,
    n: int | None = None,
    image_size: int | None = None,
    preprocessing: Preprocessing | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` examples (all when ``None``) as ``(images, labels)``.

    images: float32 (N, C, H, W) in [0, 1] (uint8 / 255); labels: int64 (N,). Decoded pictures
    (image folders, hub datasets) are converted to RGB, resized so the short side is
    ``preprocessing.resize_size`` with its interpolation and centre-cropped to its ``input_size``;
    without a preprocessing, the short side is ``round(image_size / 0.875)`` (bilinear) and the
    crop ``image_size`` (default: the first picture's height), the ImageNet evaluation transform.
    Arrays are returned at their stored size.
    """
    count = len(dataset) if n is None else min(n, len(dataset))
    rows = dataset.select(range(count))
    image_column = "image" if "image" in rows.column_names else "img"
    first = rows[0][image_column] if count else None
    if first is not None and not isinstance(first, (list, np.ndarray)):
        chosen = preprocessing or _geometry(image_size or first.size[1])
        pixels = _decode_pictures(rows[image_column], chosen)
    else:
        pixels = channels_first(rows.with_format("numpy")[:][image_column])  # one batch read, not one per row
    labels = torch.as_tensor(np.asarray(rows["label"]), dtype=torch.int64)
    return pixels.float().div_(255.0).contiguous(), labels


def channels_first(arrays: np.ndarray) -> torch.Tensor:
    """uint8 pictures (N, H, W) or (N, H, W, C) as a uint8 tensor (N, C, H, W)."""
    pixels = torch.from_numpy(np.asarray(arrays, dtype=np.uint8))
    return pixels.unsqueeze(1) if pixels.dim() == 3 else pixels.permute(0, 3, 1, 2)


def centre_crop(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centre ``height`` x ``width`` of (N, C, H, W) pictures at least that large: rows from
    ``(H - height) // 2``, columns from ``(W - width) // 2``; a smaller picture is a ``ValueError``."""
    top, left = (pixels.shape[-2] - height) // 2, (pixels.shape[-1] - width) // 2
    if top < 0 or left < 0:
        raise ValueError(f"pictures of {pixels.shape[-2]}x{pixels.shape[-1]} px are smaller than {height}x{width} px")
    return pixels[..., top:top + height, left:left + width]


def _geometry(size: int) -> Preprocessing:
    """The resize and crop of a ``size`` px input with the defaults (mean/std play no part here)."""
    return Preprocessing((0.0,), (1.0,), size)


def _decode_pictures(pictures: list, preprocessing: Preprocessing) -> torch.Tensor:
    """PIL pictures to a uint8 (N, 3, S, S) tensor: antialiased resize of the short side, then centre crop."""
    from torchvision.transforms import InterpolationMode, v2

    transform = v2.Compose([
        v2.PILToTensor(),
        v2.Resize(preprocessing.resize_size, InterpolationMode(preprocessing.interpolation), antialias=True),
        v2.CenterCrop(preprocessing.input_size),
    ])
    return torch.stack([transform(picture.convert("RGB")) for picture in pictures])
