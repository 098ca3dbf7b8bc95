"""An ``nn.Module`` in memory as a checkpoint: its identity, its metadata and an optional normalisation.

A module's identity (``checkpoint_sha256`` of its rows and cells) is the SHA-256 of its state
dict in key order: for every entry, its key (UTF-8), a NUL byte, its dtype and shape as text, a
NUL byte and its elements' raw bytes. The same weights therefore give the same cell keys, on any
device. Buffers a module keeps out of its state dict (``persistent=False``) are not part of it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robustbench_bilateral.attention import AttentionConfig
from robustbench_bilateral.checkpoint import FORMAT, LoadedCheckpoint
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.models import model_spec
from robustbench_bilateral.sources import tensor_bytes

MODULE_PREFIX = "module:"


class Normalized(nn.Module):
    """``model`` seen from pixels ``x`` in [0, 1]: ``model((x - mean) / std)``, per channel.

    ``mean`` and ``std`` are persistent buffers of shape (1, C, 1, 1), so they are part of the
    state dict (and of the module's identity), and ``attacks.space.model_normalization`` finds them.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        return self.model((images - self.mean) / self.std)


def state_dict_sha256(module: nn.Module) -> str:
    """Hex SHA-256 of ``module``'s state dict (see the module docstring for the exact bytes)."""
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        digest.update(f"{key}\0{tensor.dtype}{tuple(tensor.shape)}\0".encode())
        digest.update(tensor_bytes(tensor))
    return digest.hexdigest()


def channel_constants(value: Any, name: str) -> tuple[float, ...]:
    """``mean``/``std`` as a tuple of finite floats, one per channel; anything else is a ``FieldError``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value or not all(
            isinstance(item, Real) and not isinstance(item, bool) and math.isfinite(item) for item in value):
        raise FieldError(name, f"must be a list of numbers, one per channel (e.g. (0.5,) or (0.485, 0.456, 0.406)), got {value!r}")
    return tuple(float(item) for item in value)


def module_checkpoint(module: nn.Module, mean: Sequence[float] | None = None,
                      std: Sequence[float] | None = None) -> LoadedCheckpoint:
    """A ``LoadedCheckpoint`` of an image classifier in memory, wrapped in ``Normalized`` when ``mean``/``std`` are given.

    Its path is ``module:<class name>``; its variant is the attention variant of a bilat-eval
    model, else the class name; a bilat-eval model's ``in_chans``/``img_size`` are checked
    against the data like a checkpoint file's.
    """
    if (mean is None) != (std is None):
        raise FieldError("std" if std is None else "mean", "give mean and std together, or neither (a model that normalises inside)")
    model = module
    if mean is not None:
        means, stds = channel_constants(mean, "mean"), channel_constants(std, "std")
        if len(means) != len(stds) or min(stds) <= 0:
            raise FieldError("std", f"must hold one positive number per channel of mean ({len(means)}), got {std!r}")
        model = Normalized(module, means, stds)
    try:
        spec = model_spec(module)
        variant = AttentionConfig.from_dict(spec["attention"]).name
    except AttributeError:
        spec = {"name": type(module).__name__, "kwargs": {}}
        variant = type(module).__name__
    meta = {"format": FORMAT, "model": spec, "variant": variant, "task": Task.IMAGE_CLASSIFICATION.value,
            "source": "nn.Module in memory"}
    return LoadedCheckpoint(model, meta, Path(MODULE_PREFIX + type(module).__name__), state_dict_sha256(model))
