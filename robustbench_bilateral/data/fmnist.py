"""Fashion-MNIST (60,000 train / 10,000 test, 28x28 grey, 10 classes) from the idx files.

The Debian package ``dataset-fashion-mnist`` installs the four files; ``BILAT_EVAL_FMNIST``
points elsewhere.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from robustbench_bilateral.data.arrow_cache import cached_split
from robustbench_bilateral.data.images import image_dataset
from robustbench_bilateral.data.meta import DataMeta, DataSource
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import BilatError
from robustbench_bilateral.paths import fmnist_dir

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {"train": "train", "test": "t10k"}
MEAN, STD = (0.2860,), (0.3530,)


def read_idx(path: Path) -> np.ndarray:
    """Decode a gzip-compressed idx file (magic: 2 zero bytes, dtype 0x08 = uint8, rank) to an array."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    if raw[:3] != b"\x00\x00\x08":
        raise BilatError(f"{path} is not an idx uint8 file: reinstall dataset-fashion-mnist")
    rank = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def _build(split: str):
    folder = fmnist_dir()
    prefix = FILES[split]
    images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
    for path in (images_path, labels_path):
        if not path.exists():
            raise BilatError(
                f"Fashion-MNIST file {path} is missing: install the Debian package dataset-fashion-mnist "
                "(apt-get install dataset-fashion-mnist) or set BILAT_EVAL_FMNIST to its folder"
            )
    return image_dataset(read_idx(images_path), read_idx(labels_path), CLASSES)


def fmnist_source() -> DataSource:
    """Fashion-MNIST in its official train/test split and order."""
    meta = DataMeta(
        name="fmnist",
        task=Task.IMAGE_CLASSIFICATION,
        splits=("train", "test"),
        provided_by="Debian package dataset-fashion-mnist",
        classes=CLASSES,
        image_size=28,
        channels=1,
        mean=MEAN,
        std=STD,
    )
    loaders = {split: (lambda s=split: cached_split("fmnist", s, lambda: _build(s))) for split in FILES}
    return DataSource(meta, loaders)
