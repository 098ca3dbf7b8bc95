"""Choosing the torch device a run uses; torch is imported only when a device is resolved."""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustbench_bilateral.errors import InputError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an asked-for device must be present."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(name, False):
        raise InputError(f"device '{name}' is not available on this machine: use --device auto or cpu")
    return torch.device(name)
