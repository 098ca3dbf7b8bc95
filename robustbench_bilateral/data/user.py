"""Data a user brings: ``imagefolder:PATH``, ``npy:PATH`` and ``hf:NAME[:CONFIG]``.

- ``imagefolder:PATH``: ImageNet-style folders ``PATH/<class>/<picture>`` (one split, ``test``),
  or ``PATH/<split>/<class>/<picture>``; read by Hugging Face's ``imagefolder`` builder.
- ``npy:PATH``: a folder of ``<name>.npy`` uint8 arrays (N, H, W) or (N, H, W, C) sharing a
  ``labels.npy``; each array whose stem is not a corruption name is a split named after its
  file (such files keep being plain splits beside the corruption files). A single ``.npy`` file
  is the split ``test`` and takes the ``labels.npy`` beside it.
- ``hf:NAME[:CONFIG]``: a Hugging Face dataset, local folder or hub name; offline it loads only
  when already cached.

Pre-rendered corruption sets (``prerendered_set``) are read as they are, never as clean splits:

- CIFAR-10-C: ``npy:DIR`` holding ``<corruption>.npy`` files whose stem is a corruption name
  (``bilat-eval list corruptions``), or ``npy:DIR/<corruption>.npy`` alone. Each holds
  ``N = 5 B`` images, severity ``k`` in rows ``[(k - 1) B, k B)``; ``labels.npy`` holds ``B``
  labels (the same for every severity) or ``N``. The first ``n`` examples of a severity are the
  first ``n`` rows of its block.
- ImageNet-C: ``imagefolder:DIR`` holding ``<corruption>/<severity>/<class>/<picture>`` with
  severities 1-5; a severity's pictures in sorted ``(class, file name)`` order are its examples,
  the class index is the position of its folder name among the sorted class folders.

Example ``i`` of a severity is the corrupted copy of example ``i`` of the clean split the set was
rendered from (CIFAR-10's test set, ImageNet's validation set read in the same sorted order).

Normalisation defaults to ImageNet's mean/std for RGB and 0.5/0.5 for grey; models trained
elsewhere carry their own constants in their checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import datasets
import numpy as np

from robustbench_bilateral.data.images import image_dataset
from robustbench_bilateral.data.meta import DataMeta, DataSource
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.normalization import IMAGENET_MEAN, IMAGENET_STD

SEVERITY_COUNT = 5
IMAGENET_C_CLASSES = 1000
IMAGENET_C_SIZE = 224
"""ImageNet-C's pictures: 1000 classes, 224 x 224 px (ImageNet val resized to 256, centre-cropped)."""
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


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


def _corruption_names() -> frozenset[str]:
    """The registered corruption names (imported here: the corruptions read pre-rendered sets through this module)."""
    from robustbench_bilateral.corruptions import CORRUPTIONS

    return frozenset(CORRUPTIONS)


def _only_corruptions(spec: str, found: Sequence[str]) -> InputError:
    return InputError(
        f"{spec} holds only pre-rendered corruptions ({', '.join(found)}), no clean split: evaluate them with "
        f"`bilat-eval contaminate CHECKPOINT --dataset {spec}` (clean rows from the checkpoint's own test set "
        "or --clean-data)"
    )


@dataclass(frozen=True)
class PrerenderedSet:
    """Corruptions rendered ahead of time, read as they are stored.

    ``name`` is the source as written (``npy:DIR``, ``imagefolder:DIR``); ``corruptions`` are the corruption names found, each at severities 1-5. ``pixels`` and
    ``labels`` return examples ``indices`` of one severity block.
    """

    name: str
    corruptions: tuple[str, ...]

    @property
    def imagenet_c(self) -> bool:
        """True for ImageNet-C itself: an image folder of 1000 classes with 224 px pictures."""
        return False

    def block_size(self, corruption: str, severity: int) -> int:
        """Examples per severity (``B``)."""
        raise NotImplementedError

    def labels(self, corruption: str, severity: int, indices: Sequence[int]) -> np.ndarray:
        """Class indices (int64) of examples ``indices`` of ``corruption`` at ``severity``."""
        raise NotImplementedError

    def pixels(self, corruption: str, severity: int, indices: Sequence[int], channels: int) -> np.ndarray:
        """uint8 pictures (n, H, W, channels) of examples ``indices`` of ``corruption`` at ``severity``."""
        raise NotImplementedError

    def check_indices(self, corruption: str, severity: int, indices: Sequence[int]) -> None:
        """An ``InputError`` when an index is beyond the severity block."""
        size = self.block_size(corruption, severity)
        if indices and max(indices) >= size:
            raise InputError(
                f"{self.name} holds {size} {corruption} images per severity but example {max(indices)} was asked: "
                f"evaluate at most {size} examples (--n-examples / n_examples)"
            )


@dataclass(frozen=True)
class NpyCorruptions(PrerenderedSet):
    """CIFAR-10-C arrays: ``files[corruption]`` holds 5 blocks of ``B`` images, ``labels_path`` B or 5 B labels."""

    files: dict[str, Path] = field(default_factory=dict)
    labels_path: Path = Path()

    @cached_property
    def _labels(self) -> np.ndarray:
        return np.load(self.labels_path, allow_pickle=False)

    def _array(self, corruption: str) -> np.ndarray:
        return np.load(self.files[corruption], mmap_mode="r", allow_pickle=False)

    def block_size(self, corruption: str, severity: int) -> int:
        return len(self._array(corruption)) // SEVERITY_COUNT

    def _rows(self, corruption: str, severity: int, indices: Sequence[int]) -> np.ndarray:
        self.check_indices(corruption, severity, indices)
        return (severity - 1) * self.block_size(corruption, severity) + np.asarray(indices, dtype=np.int64)

    def labels(self, corruption: str, severity: int, indices: Sequence[int]) -> np.ndarray:
        rows = self._rows(corruption, severity, indices)
        shared = len(self._labels) == self.block_size(corruption, severity)
        return self._labels[np.asarray(indices) if shared else rows].astype(np.int64)

    def pixels(self, corruption: str, severity: int, indices: Sequence[int], channels: int) -> np.ndarray:
        images = np.asarray(self._array(corruption)[self._rows(corruption, severity, indices)])
        images = images[..., None] if images.ndim == 3 else images
        if images.shape[-1] != channels:
            raise InputError(f"{self.files[corruption]} holds {images.shape[-1]}-channel images but the model takes "
                             f"{channels}: evaluate a model of matching channels")
        return images


@dataclass(frozen=True)
class FolderCorruptions(PrerenderedSet):
    """ImageNet-C folders ``root/<corruption>/<severity>/<class>/<picture>``."""

    root: Path = Path()

    def _severity_folder(self, corruption: str, severity: int) -> Path:
        return self.root / corruption / str(severity)

    _listings: dict[tuple[str, int], list[tuple[int, Path]]] = field(default_factory=dict, repr=False, compare=False)

    def _pictures(self, corruption: str, severity: int) -> list[tuple[int, Path]]:
        """``(class index, path)`` of the severity's pictures in sorted (class, file name) order, listed once."""
        key = (corruption, severity)
        if key not in self._listings:
            folder = self._severity_folder(corruption, severity)
            classes = sorted(path for path in folder.iterdir() if path.is_dir())
            self._listings[key] = [(label, picture) for label, directory in enumerate(classes)
                                   for picture in sorted(directory.iterdir()) if picture.suffix.lower() in PICTURE_SUFFIXES]
            if not self._listings[key]:
                raise InputError(f"{folder} holds no <class>/<picture> files: give the ImageNet-C layout")
        return self._listings[key]

    @property
    def imagenet_c(self) -> bool:
        from PIL import Image

        corruption = self.corruptions[0]
        folder = self._severity_folder(corruption, 1)
        classes = [path for path in folder.iterdir() if path.is_dir()]
        with Image.open(self._pictures(corruption, 1)[0][1]) as picture:
            size = picture.size
        return len(classes) == IMAGENET_C_CLASSES and size == (IMAGENET_C_SIZE, IMAGENET_C_SIZE)

    def block_size(self, corruption: str, severity: int) -> int:
        return len(self._pictures(corruption, severity))

    def labels(self, corruption: str, severity: int, indices: Sequence[int]) -> np.ndarray:
        self.check_indices(corruption, severity, indices)
        pictures = self._pictures(corruption, severity)
        return np.asarray([pictures[i][0] for i in indices], dtype=np.int64)

    def pixels(self, corruption: str, severity: int, indices: Sequence[int], channels: int) -> np.ndarray:
        from PIL import Image

        self.check_indices(corruption, severity, indices)
        pictures = self._pictures(corruption, severity)
        mode = "L" if channels == 1 else "RGB"
        decoded = []
        for i in indices:
            with Image.open(pictures[i][1]) as picture:
                decoded.append(np.asarray(picture.convert(mode), dtype=np.uint8))
        sizes = {array.shape for array in decoded}
        if len(sizes) > 1:
            raise InputError(f"{self._severity_folder(corruption, severity)} mixes picture sizes {sorted(sizes)}: "
                             "pre-rendered pictures must share one size")
        stacked = np.stack(decoded)
        return stacked[..., None] if stacked.ndim == 3 else stacked


def prerendered_set(spec: str) -> PrerenderedSet | None:
    """The pre-rendered corruptions of the source ``spec``, or ``None`` when it holds none (any other source).

    ``npy:DIR`` with ``<corruption>.npy`` files and ``imagefolder:DIR`` with ``<corruption>/``
    sub-folders qualify. A file whose length is not 5 equal severity blocks, blocks of different
    lengths, a ``labels.npy`` of neither ``B`` nor ``5 B`` labels, a corruption folder without all
    of ``1``..``5``, or another sub-folder beside the corruption folders is an ``InputError``
    naming the file or folder.
    """
    prefix, _, rest = spec.partition(":")
    path = Path(rest)
    if prefix == "npy" and path.exists():
        return _npy_corruptions(spec, path)
    if prefix == "imagefolder" and path.is_dir():
        return _folder_corruptions(spec, path)
    return None


def _npy_corruptions(spec: str, path: Path) -> NpyCorruptions | None:
    """The ``<corruption>.npy`` files of a folder, or the one file ``path`` when its stem is a corruption name."""
    names = _corruption_names()
    folder = path.parent if path.is_file() else path
    candidates = [path] if path.is_file() else sorted(folder.glob("*.npy"))
    files = {file.stem: file for file in candidates if file.stem in names}
    if not files:
        return None
    labels_path = folder / "labels.npy"
    if not labels_path.exists():
        raise InputError(f"{spec}: {folder} has no labels.npy: add the labels of one severity block (or of all five)")
    lengths = {}
    for name, path in files.items():
        images = np.load(path, mmap_mode="r", allow_pickle=False)
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise InputError(f"{path} holds {images.dtype} {images.shape}: give uint8 images (N, H, W) or (N, H, W, C)")
        if len(images) == 0 or len(images) % SEVERITY_COUNT:
            raise InputError(f"{path} holds {len(images)} images, not {SEVERITY_COUNT} equal severity blocks: "
                             f"give severities 1-5 stacked in order ({SEVERITY_COUNT} x N images)")
        lengths[name] = len(images) // SEVERITY_COUNT
    block = lengths[next(iter(files))]
    uneven = [name for name, length in lengths.items() if length != block]
    if uneven:
        raise InputError(f"{files[uneven[0]]} holds {lengths[uneven[0]]} images per severity but "
                         f"{files[next(iter(files))].name} {block}: give every corruption file the same examples")
    count = len(np.load(labels_path, mmap_mode="r", allow_pickle=False))
    if count not in (block, SEVERITY_COUNT * block):
        raise InputError(f"{labels_path} holds {count} labels but each severity {block} images: give {block} labels "
                         f"(or {SEVERITY_COUNT * block}, one per image)")
    return NpyCorruptions(spec, tuple(files), files=files, labels_path=labels_path)


def _folder_corruptions(spec: str, root: Path) -> FolderCorruptions | None:
    names = _corruption_names()
    folders = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    corruptions = [path.name for path in folders if path.name in names]
    if not corruptions:
        return None
    others = [path.name for path in folders if path.name not in names]
    if others:
        raise InputError(f"{root / others[0]} is not a corruption name (`bilat-eval list corruptions`) beside "
                         f"{corruptions[0]}/: an ImageNet-C folder holds only <corruption>/<severity>/<class>/ folders")
    for name in corruptions:
        missing = [str(s) for s in range(1, SEVERITY_COUNT + 1) if not (root / name / str(s)).is_dir()]
        if missing:
            raise InputError(f"{root / name} has no severity folder {', '.join(missing)}: "
                             f"ImageNet-C holds <corruption>/1 .. /{SEVERITY_COUNT}")
    return FolderCorruptions(spec, tuple(corruptions), root=root)


def npy_source(spec: str, folder: str) -> DataSource:
    """Arrays of a folder (or one file) ``folder`` as splits sharing ``labels.npy``; corruption files are left out."""
    path = Path(folder)
    names = _corruption_names()
    arrays = [path] if path.is_file() else sorted(p for p in path.glob("*.npy") if p.name != "labels.npy")
    files = [p for p in arrays if p.stem not in names]
    labels_path = (path.parent if path.is_file() else path) / "labels.npy"
    if not files and arrays:
        raise _only_corruptions(spec, [p.stem for p in arrays])
    if not files or not labels_path.exists():
        raise InputError(f"{spec}: expected <name>.npy arrays and a labels.npy in {path}")
    labels = np.load(labels_path, allow_pickle=False)
    split_names = ["test"] if path.is_file() else [p.stem for p in files]
    first = np.load(files[0], mmap_mode="r", allow_pickle=False)
    classes = tuple(str(c) for c in range(int(labels.max()) + 1))
    channels = first.shape[3] if first.ndim == 4 else 1

    def load(file: Path) -> datasets.Dataset:
        images = np.load(file, allow_pickle=False)
        if len(images) != len(labels):
            raise InputError(f"{file} holds {len(images)} images but labels.npy {len(labels)}: use matching files")
        return image_dataset(images, labels, classes)

    loaders = {name: (lambda f=file: load(f)) for name, file in zip(split_names, files)}
    meta = _image_meta(spec, split_names, classes, first.shape[1], channels, f"local arrays in {path}")
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
    corruptions = sorted(p.name for p in path.iterdir() if p.is_dir() and p.name in _corruption_names())
    if corruptions:
        raise _only_corruptions(spec, corruptions)
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
