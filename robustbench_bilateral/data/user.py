"""Data a user brings: ``imagefolder:PATH``, ``npy:PATH`` and ``hf:NAME[:CONFIG]``.

- ``imagefolder:PATH``: ImageNet-style folders ``PATH/<class>/<picture>`` (one split, ``test``),
  or ``PATH/<split>/<class>/<picture>``; read by Hugging Face's ``imagefolder`` builder.
- ``npy:PATH``: CIFAR-10-C style: a folder of ``<name>.npy`` uint8 arrays (N, H, W, C) sharing a
  ``labels.npy``; each array is a split named after its file. A single ``.npy`` file is the split
  ``test`` and takes the ``labels.npy`` beside it.
- ``hf:NAME[:CONFIG]``: a Hugging Face dataset, local folder or hub name; offline it loads only
  when already cached.

Normalisation defaults to ImageNet's mean/std for RGB and 0.5/0.5 for grey; models trained
elsewhere carry their own constants in their checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np

from robustbench_bilateral.data.images import image_dataset
from robustbench_bilateral.data.meta import DataMeta, DataSource
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.normalization import IMAGENET_MEAN, IMAGENET_STD


def _image_meta(name: str, splits, classes, size: int, channels: int, provided_by: str) -> DataMeta:
    rgb = channels == 3
    return DataMeta(
        name=name,
        task=Task.IMAGE_CLASSIFICATION,
        splits=tuple(splits),
        provided_by=provided_by,
        classes=tuple(classes),
        image_size=size,
        channels=channels,
        mean=IMAGENET_MEAN if rgb else (0.5,),
        std=IMAGENET_STD if rgb else (0.5,),
    )


def npy_source(spec: str, folder: str) -> DataSource:
    """Arrays of a CIFAR-10-C style folder (or one file) ``folder`` as splits sharing ``labels.npy``."""
    path = Path(folder)
    files = [path] if path.is_file() else sorted(p for p in path.glob("*.npy") if p.name != "labels.npy")
    labels_path = (path.parent if path.is_file() else path) / "labels.npy"
    if not files or not labels_path.exists():
        raise InputError(f"{spec}: expected <name>.npy arrays and a labels.npy in {path}")
    labels = np.load(labels_path, allow_pickle=False)
    names = ["test"] if path.is_file() else [p.stem for p in files]
    first = np.load(files[0], mmap_mode="r", allow_pickle=False)
    classes = tuple(str(c) for c in range(int(labels.max()) + 1))
    channels = first.shape[3] if first.ndim == 4 else 1

    def load(file: Path) -> datasets.Dataset:
        images = np.load(file, allow_pickle=False)
        if len(images) != len(labels):
            raise InputError(f"{file} holds {len(images)} images but labels.npy {len(labels)}: use matching files")
        return image_dataset(images, labels, classes)

    loaders = {name: (lambda f=file: load(f)) for name, file in zip(names, files)}
    meta = _image_meta(spec, names, classes, first.shape[1], channels, f"local arrays in {path}")
    return DataSource(meta, loaders)


def _hub_meta_and_loaders(spec: str, dataset_dict: datasets.DatasetDict, provided_by: str) -> DataSource:
    splits = list(dataset_dict)
    sample = dataset_dict[splits[0]]
    if "text" in sample.column_names:
        meta = DataMeta(name=spec, task=Task.LANGUAGE_MODELING, splits=tuple(splits), provided_by=provided_by)
    else:
        label = sample.features.get("label")
        classes = tuple(label.names) if isinstance(label, datasets.ClassLabel) else ()
        column = "image" if "image" in sample.column_names else "img"
        picture = sample[0][column]
        size = picture.size[1] if hasattr(picture, "size") else len(picture)
        channels = 3 if getattr(picture, "mode", "L") != "L" else 1
        meta = _image_meta(spec, splits, classes, size, channels, provided_by)
    loaders = {name: (lambda n=name: dataset_dict[n]) for name in splits}
    return DataSource(meta, loaders)


def imagefolder_source(spec: str, folder: str) -> DataSource:
    """Picture folders under ``folder`` read with Hugging Face's ``imagefolder`` builder (no network)."""
    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"{spec}: {path} is not a folder of <class>/<picture> files")
    dataset_dict = datasets.load_dataset("imagefolder", data_dir=str(path))
    if list(dataset_dict) == ["train"] and not (path / "train").is_dir():
        dataset_dict = datasets.DatasetDict({"test": dataset_dict["train"]})
    return _hub_meta_and_loaders(spec, dataset_dict, f"local image folder {path}")


def hf_source(spec: str, hub_name: str) -> DataSource:
    """A Hugging Face dataset ``NAME[:CONFIG]`` by name or local path; offline only from the local cache."""
    name, _, config = hub_name.partition(":")
    try:
        dataset_dict = datasets.load_dataset(name, config or None)
    except Exception as error:  # the hub client raises many types for "not available offline"
        raise InputError(
            f"{spec} could not be loaded ({type(error).__name__}): download it once while online "
            "(it is then cached) or give a local path with imagefolder:PATH or npy:PATH"
        ) from error
    return _hub_meta_and_loaders(spec, dataset_dict, f"Hugging Face dataset {name}")
