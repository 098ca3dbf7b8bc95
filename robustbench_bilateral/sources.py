"""Where an evaluation's checkpoints and splits come from: files and named datasets, or objects in memory.

``Sources`` answers what planning and running ask: what a checkpoint is
(``describe``), its model (``load``), what a dataset holds (``data_meta``) and the evaluated data
of a split (``split``). Checkpoints are files (``.safetensors``, ``.pt`` with a model name,
``timm:NAME``) unless the spec gave a ``LoadedCheckpoint``; data is a named source
(``data.load_source``) unless the spec gave ``GivenImages``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
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
from robustbench_bilateral.text import WordVocab
from robustbench_bilateral.wordswap.counts import vocabulary_counts

GIVEN_PREFIX = "tensors:"


@dataclass(frozen=True)
class CheckpointInfo:
    """What planning needs of a checkpoint: where it is, its content hash, its metadata."""

    path: str
    sha256: str
    meta: dict

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


def describe_checkpoint(path: str, model_name: str | None = None) -> CheckpointInfo:
    """Metadata and hash of a checkpoint file without building its model when its metadata suffices.

    Plain weights (``.pt``, ``timm:NAME``, a model name) are loaded once to learn what they are.
    """
    if model_name is None and not path.startswith("timm:") and Path(path).suffix == ".safetensors":
        if not Path(path).is_file():
            raise InputError(f"checkpoint {path} does not exist: pass the path of a .safetensors file from `bilat-eval train`")
        return CheckpointInfo(path, file_sha256(Path(path)), read_metadata(Path(path)))
    loaded = load_checkpoint(path, model_name)
    return CheckpointInfo(path, loaded.sha256, loaded.meta)


def load_split(dataset: str, split: str, n_examples: int, meta: dict) -> Any:
    """The evaluated data of a named split, as the checkpoint with metadata ``meta`` reads it.

    Images: ``(images (N, C, H, W) float32 in [0, 1], labels (N,) int64)`` at the model's input
    size. Text: a ``TextSplit`` of the lines holding the split's first ``n_examples`` tokens, with the
    checkpoint's own vocabulary and the counts of its words in the checkpoint's training split.
    """
    source = load_source(dataset)
    if Task(meta["task"]) is Task.LANGUAGE_MODELING:
        vocab = WordVocab.from_list(meta["vocab"])
        counts = partial(vocabulary_counts, meta["dataset"], vocab)
        return TextSplit.first_words(text_lines(source.split(split)), vocab, n_examples, counts)
    kwargs = meta["model"]["kwargs"]
    images, labels = image_tensors(source.split(split), n_examples or None, image_size=kwargs.get("img_size"))
    check_image_shape(images, kwargs, dataset)
    return images, labels


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

    ``model_name`` is the model plain weights load into; ``models`` maps a checkpoint path label
    to its model in memory; ``images`` maps a dataset name to its ``GivenImages``.
    """

    model_name: str | None = None
    models: Mapping[str, LoadedCheckpoint] = field(default_factory=dict)
    images: Mapping[str, GivenImages] = field(default_factory=dict)

    def describe(self, path: str) -> CheckpointInfo:
        """``describe_checkpoint(path)``, or the in-memory model's path, hash and metadata."""
        if path in self.models:
            loaded = self.models[path]
            return CheckpointInfo(path, loaded.sha256, loaded.meta)
        return describe_checkpoint(path, self.model_name)

    def load(self, path: str) -> LoadedCheckpoint:
        """The model of a checkpoint: the one in memory, or ``load_checkpoint(path, model_name)``."""
        return self.models[path] if path in self.models else load_checkpoint(path, self.model_name)

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
