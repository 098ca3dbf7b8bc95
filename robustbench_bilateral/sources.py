"""Where an evaluation's checkpoints and splits come from: files and named datasets, or objects in memory.

``Sources`` answers what planning and running ask: what a checkpoint is
(``describe``), its model (``load``), what a dataset holds (``data_meta``) and the evaluated data
of a split (``split``). Checkpoints are files (``.safetensors``, ``.pt`` with a model name,
``timm:NAME``), read as its ``LoadSettings`` say, unless the spec gave a ``LoadedCheckpoint``;
data is a named source (``data.load_source``) unless the spec gave ``GivenImages``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from robustbench_bilateral.checkpoint import LoadedCheckpoint, file_sha256, load_checkpoint, read_metadata
from robustbench_bilateral.data import DataMeta, image_tensors, load_source, text_lines
from robustbench_bilateral.engine.language import TextSplit
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import FieldError, InputError
from robustbench_bilateral.preprocessing import Preprocessing
from robustbench_bilateral.results.row import canonical_json
from robustbench_bilateral.text import WordVocab
from robustbench_bilateral.wordswap.counts import vocabulary_counts

GIVEN_PREFIX = "tensors:"


@dataclass(frozen=True)
class CheckpointInfo:
    """What planning needs of a checkpoint: where it is, its identity, its metadata.

    ``sha256`` identifies the checkpoint as loaded (``LoadSettings.identity``); ``notes`` are
    the loader's lines saying what loading added, initialised or dropped.
    """

    path: str
    sha256: str
    meta: dict
    notes: tuple[str, ...]

    @classmethod
    def of(cls, path: str, loaded: LoadedCheckpoint) -> CheckpointInfo:
        """The description of a loaded checkpoint, labelled ``path``."""
        return cls(path, loaded.sha256, loaded.meta, loaded.notes)

    @property
    def task(self) -> Task:
        return Task(self.meta["task"])


@dataclass(frozen=True, eq=False)
class GivenImages:
    """Images and labels given in memory, evaluated as the one split ``split`` of a dataset named ``name``.

    ``images``: float (N, C, H, W) in [0, 1]; ``labels``: int64 (N,). ``name`` is
    ``tensors:`` + the first 16 hex digits of the SHA-256 of both tensors' bytes, so the same
    data gives the same cell keys. Build it with ``GivenImages.of``.
    """

    images: Tensor
    labels: Tensor
    split: str
    name: str

    @classmethod
    def of(cls, images: Any, labels: Any, split: str) -> GivenImages:
        """Checked ``GivenImages``; a bad tensor is a ``FieldError`` on ``dataset``."""
        if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
            raise FieldError("dataset", f"images must be a float tensor (N, C, H, W), got {_shape(images)}")
        if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.dtype != torch.int64:
            raise FieldError("dataset", f"labels must be an int64 tensor (N,), got {_shape(labels)}")
        if len(images) != len(labels) or len(labels) == 0:
            raise FieldError("dataset", f"need as many images as labels, at least one: got {len(images)} and {len(labels)}")
        if images.min() < 0 or images.max() > 1:
            raise FieldError("dataset", "images must be pixels in [0, 1]: divide uint8 pictures by 255; a model normalises inside")
        images, labels = images.detach().cpu().contiguous(), labels.detach().cpu().contiguous()
        digest = hashlib.sha256(tensor_bytes(images) + tensor_bytes(labels)).hexdigest()
        return cls(images, labels, split, GIVEN_PREFIX + digest[:16])


def tensor_bytes(tensor: Tensor) -> bytes:
    """The raw bytes of a tensor's elements in row-major order (any dtype, bfloat16 included)."""
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _shape(value: Any) -> str:
    return f"{value.dtype} {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__


@dataclass(frozen=True)
class LoadSettings:
    """How checkpoint files are read: the keywords of ``load_checkpoint`` after the path.

    ``model`` is the model plain weights (``.pt``, ``timm:NAME``) load into; ``variant`` the
    attention they are built with (``None``: softmax, or a checkpoint's own); ``model_kwargs``
    the arguments of the model; ``preprocessing`` overrides of fields of the checkpoint's
    ``Preprocessing`` (``mean``, ``std``, ``crop_pct``, ``interpolation``).
    """

    model: str | None = None
    variant: str | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    preprocessing: Mapping[str, Any] = field(default_factory=dict)

    @property
    def changes_model(self) -> bool:
        """True when a model, variant, model argument or preprocessing override is set: one file
        loaded into two models (``--model``) is two checkpoints."""
        return self.model is not None or self.variant is not None or bool(self.model_kwargs) or bool(self.preprocessing)

    def load(self, path: str) -> LoadedCheckpoint:
        """``load_checkpoint(path, ...)`` with these settings, its ``sha256`` replaced by ``identity``."""
        loaded = load_checkpoint(path, self.model, variant=self.variant, model_kwargs=self.model_kwargs or None,
                                 preprocessing=self.preprocessing or None)
        return replace(loaded, sha256=self.identity(loaded))

    def identity(self, loaded: LoadedCheckpoint) -> str:
        """What identifies the loaded checkpoint in cell keys: the file's SHA-256 when no setting
        changes the model (so such cells keep their keys), else the hex SHA-256 of the canonical
        JSON of the file's hash, the built model's description and preprocessing, and the settings."""
        if not self.changes_model:
            return loaded.sha256
        payload = {
            "checkpoint_sha256": loaded.sha256,
            "model": loaded.meta.get("model"),
            "preprocessing": loaded.meta.get("preprocessing"),
            "settings": {"model": self.model, "variant": self.variant, "model_kwargs": dict(self.model_kwargs),
                         "preprocessing": dict(self.preprocessing)},
        }
        return hashlib.sha256(canonical_json(payload).encode("ascii")).hexdigest()


PLAIN = LoadSettings()


def describe_checkpoint(path: str, settings: LoadSettings = PLAIN) -> CheckpointInfo:
    """Identity, metadata and loading notes of a checkpoint, without building its model when its metadata suffices.

    A ``.safetensors`` file from ``bilat-eval train`` read with ``PLAIN`` settings is described
    from its header alone; anything else (plain weights, ``timm:NAME``, any setting) is loaded once.
    """
    if settings == PLAIN and not path.startswith("timm:") and Path(path).suffix == ".safetensors":
        if not Path(path).is_file():
            raise InputError(f"checkpoint {path} does not exist: pass the path of a .safetensors file from `bilat-eval train`")
        return CheckpointInfo(path, file_sha256(Path(path)), read_metadata(Path(path)), ())
    return CheckpointInfo.of(path, settings.load(path))


def load_split(dataset: str, split: str, n_examples: int, meta: dict) -> Any:
    """The evaluated data of a named split, as the checkpoint with metadata ``meta`` reads it.

    Images: ``(images (N, C, H, W) float32 in [0, 1], labels (N,) int64)`` at the model's input
    size, decoded pictures resized and centre-cropped as the checkpoint's ``preprocessing`` says.
    Text: a ``TextSplit`` of the lines holding the split's first ``n_examples`` tokens, with the
    checkpoint's own vocabulary and the counts of its words in the checkpoint's training split.
    """
    source = load_source(dataset)
    if Task(meta["task"]) is Task.LANGUAGE_MODELING:
        vocab = WordVocab.from_list(meta["vocab"])
        counts = partial(vocabulary_counts, meta["dataset"], vocab)
        return TextSplit.first_words(text_lines(source.split(split)), vocab, n_examples, counts)
    kwargs = meta["model"]["kwargs"]
    images, labels = image_tensors(source.split(split), n_examples or None, image_size=kwargs.get("img_size"),
                                   preprocessing=stored_preprocessing(meta))
    check_image_shape(images, kwargs, dataset)
    return images, labels


def stored_preprocessing(meta: dict) -> Preprocessing | None:
    """The ``Preprocessing`` a checkpoint's metadata records, or ``None`` for one made before it was recorded."""
    stored = meta.get("preprocessing")
    return None if stored is None else Preprocessing.from_dict(stored)


def check_image_shape(images: Tensor, model_kwargs: dict, dataset: str) -> None:
    """Refuse images whose channels or size differ from the model's ``in_chans``/``img_size`` (when it states them)."""
    expected = (model_kwargs.get("in_chans", images.shape[1]), model_kwargs.get("img_size", images.shape[-1]))
    if (images.shape[1], images.shape[-1]) != expected:
        raise InputError(
            f"dataset '{dataset}' has {images.shape[1]}-channel {images.shape[-1]} px images but the model takes "
            f"{expected[0]}-channel {expected[1]} px: evaluate it on a dataset of matching images"
        )


@dataclass(frozen=True)
class Sources:
    """Files and named datasets, plus the checkpoints and images a spec gave in memory.

    ``settings`` say how checkpoint files load; ``models`` maps a checkpoint path label to its
    model in memory; ``images`` maps a dataset name to its ``GivenImages``.
    """

    settings: LoadSettings = PLAIN
    models: Mapping[str, LoadedCheckpoint] = field(default_factory=dict)
    images: Mapping[str, GivenImages] = field(default_factory=dict)

    def describe(self, path: str) -> CheckpointInfo:
        """``describe_checkpoint(path, settings)``, or the in-memory model's path, hash, metadata and notes."""
        if path in self.models:
            return CheckpointInfo.of(path, self.models[path])
        return describe_checkpoint(path, self.settings)

    def load(self, path: str) -> LoadedCheckpoint:
        """The model of a checkpoint: the one in memory, or ``settings.load(path)``."""
        return self.models[path] if path in self.models else self.settings.load(path)

    def data_meta(self, dataset: str) -> DataMeta:
        """Task and splits of a dataset; an unknown or unreadable one is a ``FieldError`` on ``dataset``."""
        if dataset in self.images:
            given = self.images[dataset]
            return DataMeta(dataset, Task.IMAGE_CLASSIFICATION, (given.split,), "given tensors")
        try:
            return load_source(dataset).meta
        except InputError as error:
            raise FieldError("dataset", str(error)) from error

    def split(self, dataset: str, split: str, n_examples: int, meta: dict) -> Any:
        """``load_split``, or the first ``n_examples`` (0 = all) given images checked against the model."""
        if dataset not in self.images:
            return load_split(dataset, split, n_examples, meta)
        given = self.images[dataset]
        count = n_examples or len(given.labels)
        images, labels = given.images[:count], given.labels[:count]
        check_image_shape(images, meta["model"]["kwargs"], dataset)
        return images, labels
