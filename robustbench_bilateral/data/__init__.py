"""Named data sources, each a ``datasets.Dataset`` per split plus metadata.

``load_source(name)`` accepts a built-in name (see ``BUILTIN_SOURCES``) or a user prefix:
``imagefolder:PATH``, ``npy:PATH``, ``hf:NAME[:CONFIG]``.
"""

from __future__ import annotations

from pathlib import Path

from robustbench_bilateral.data.fmnist import fmnist_source
from robustbench_bilateral.data.images import image_tensors
from robustbench_bilateral.data.meta import DataMeta, DataSource, Task
from robustbench_bilateral.data.shakespeare import shakespeare_source
from robustbench_bilateral.data.small import digits_source, mnist5k_source
from robustbench_bilateral.data.user import hf_source, imagefolder_source, npy_source
from robustbench_bilateral.errors import InputError

BUILTIN_SOURCES = {
    "fmnist": (fmnist_source, "Fashion-MNIST, 60,000 train / 10,000 test, 28x28 grey, 10 classes"),
    "shakespeare": (shakespeare_source, "Shakespeare's 42 works as lines, split by work"),
    "mnist5k": (mnist5k_source, "5,000 MNIST digits, 28x28 (tiny, for tests)"),
    "digits": (digits_source, "1,797 scikit-learn digits, 8x8 (tiny, for tests)"),
}
USER_SOURCES = {
    "imagefolder:PATH": "ImageNet-style folders <class>/<picture> (ImageNet val, ImageNet-C)",
    "npy:PATH": "CIFAR-10-C style <name>.npy arrays with labels.npy",
    "hf:NAME[:CONFIG]": "a Hugging Face dataset (offline: only when cached)",
}


def load_source(name: str) -> DataSource:
    """Resolve a source name to a ``DataSource``; an unknown name lists the valid ones."""
    prefix, _, rest = name.partition(":")
    if prefix in BUILTIN_SOURCES and not rest:
        return BUILTIN_SOURCES[prefix][0]()
    if prefix == "npy" and rest:
        return npy_source(name, Path(rest))
    if prefix == "imagefolder" and rest:
        return imagefolder_source(name, Path(rest))
    if prefix == "hf" and rest:
        hub_name, _, config = rest.partition(":")
        return hf_source(name, hub_name, config or None)
    valid = ", ".join([*BUILTIN_SOURCES, *USER_SOURCES])
    raise InputError(f"unknown dataset '{name}': choose one of {valid}")


def text_lines(dataset) -> list[str]:
    """The ``text`` column of a language split, in order."""
    return list(dataset["text"])


__all__ = [
    "BUILTIN_SOURCES",
    "USER_SOURCES",
    "DataMeta",
    "DataSource",
    "Task",
    "image_tensors",
    "load_source",
    "text_lines",
]
