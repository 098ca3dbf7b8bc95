"""Named data sources, each a ``datasets.Dataset`` per split plus metadata.

Every source is registered in ``SOURCES`` here: the built-in names, and the prefixes of data a
user brings, ``imagefolder:PATH``, ``npy:PATH``, ``hf:NAME[:CONFIG]``. ``load_source(name)``
opens one. ``prerendered_set(name)`` opens the pre-rendered corruptions a user's folder holds
(CIFAR-10-C arrays, ImageNet-C folders), which are never clean splits.
"""

from __future__ import annotations

from robustbench_bilateral.data.fmnist import fmnist_source
from robustbench_bilateral.data.images import image_tensors
from robustbench_bilateral.data.meta import DataMeta, DataSource, SourceEntry
from robustbench_bilateral.data.shakespeare import shakespeare_source
from robustbench_bilateral.data.small import digits_source, mnist5k_source
from robustbench_bilateral.data.user import PrerenderedSet, hf_source, imagefolder_source, npy_source, prerendered_set
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.registry import Registry

SOURCES: Registry[SourceEntry] = Registry("dataset", "bilat-eval list datasets")
SOURCES.register("fmnist", SourceEntry(fmnist_source, "Fashion-MNIST, 60,000 train / 10,000 test, 28x28 grey, 10 classes"))
SOURCES.register("shakespeare", SourceEntry(shakespeare_source, "Shakespeare's 42 works as lines, split by work"))
SOURCES.register("mnist5k", SourceEntry(mnist5k_source, "5,000 MNIST digits, 28x28 (tiny, for tests)"))
SOURCES.register("digits", SourceEntry(digits_source, "1,797 scikit-learn digits, 8x8 (tiny, for tests)"))
SOURCES.register("imagefolder", SourceEntry(
    imagefolder_source, "ImageNet-style folders <class>/<picture> (ImageNet val); ImageNet-C's "
                        "<corruption>/<severity>/<class>/<picture> are pre-rendered corruptions", "PATH"))
SOURCES.register("npy", SourceEntry(
    npy_source, "<name>.npy arrays with labels.npy; CIFAR-10-C's <corruption>.npy are pre-rendered corruptions", "PATH"))
SOURCES.register("hf", SourceEntry(hf_source, "a Hugging Face dataset (offline: only when cached)", "NAME[:CONFIG]"))


def load_source(name: str) -> DataSource:
    """Resolve a source name (``fmnist``, ``npy:PATH``, ...) to a ``DataSource``; an unknown name lists the valid ones."""
    prefix, _, rest = name.partition(":")
    entry = SOURCES.get(prefix) if prefix in SOURCES else None
    if entry is not None and bool(rest) == bool(entry.argument):
        return entry.load(name, rest) if entry.argument else entry.load()
    valid = ", ".join(entry.usage(key) for key, entry in SOURCES.items())
    raise InputError(f"unknown dataset '{name}': choose one of {valid} (see `{SOURCES.listing}`)")


def text_lines(dataset) -> list[str]:
    """The ``text`` column of a language split, in order."""
    return list(dataset["text"])


__all__ = [
    "SOURCES",
    "DataMeta",
    "DataSource",
    "PrerenderedSet",
    "SourceEntry",
    "image_tensors",
    "load_source",
    "prerendered_set",
    "text_lines",
]
