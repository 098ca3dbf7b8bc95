"""Image arrays to ``datasets.Dataset`` and back to float tensors in [0, 1]."""

from __future__ import annotations

import datasets
import numpy as np
import torch


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
    dataset: datasets.Dataset, n: int | None = None, image_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` examples (all when ``None``) as ``(images, labels)``.

    images: float32 (N, C, H, W) in [0, 1] (uint8 / 255); labels: int64 (N,). Decoded pictures
    (image folders, hub datasets) are converted to RGB, resized so the short side is
    ``image_size * 256 / 224`` and centre-cropped to ``image_size`` (the ImageNet evaluation
    transform); arrays are returned at their stored size.
    """
    count = len(dataset) if n is None else min(n, len(dataset))
    rows = dataset.select(range(count))
    image_column = "image" if "image" in rows.column_names else "img"
    first = rows[0][image_column] if count else None
    if first is not None and not isinstance(first, (list, np.ndarray)):
        pixels = _decode_pictures(rows[image_column], image_size)
    else:
        arrays = rows.with_format("numpy")[:][image_column]  # one batch read, not one per row
        pixels = torch.from_numpy(np.asarray(arrays, dtype=np.uint8))
        pixels = pixels.unsqueeze(1) if pixels.dim() == 3 else pixels.permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(rows["label"]), dtype=torch.int64)
    return pixels.float().div_(255.0).contiguous(), labels


def _decode_pictures(pictures: list, image_size: int | None) -> torch.Tensor:
    """PIL pictures to a uint8 (N, 3, S, S) tensor with the resize-then-centre-crop transform."""
    from torchvision.transforms import v2

    size = image_size or pictures[0].size[1]
    transform = v2.Compose(
        [v2.PILToTensor(), v2.Resize(int(round(size * 256 / 224)), antialias=True), v2.CenterCrop(size)]
    )
    return torch.stack([transform(picture.convert("RGB")) for picture in pictures])
