"""Versions of the libraries that shape a result, stored in every checkpoint and result row."""

from __future__ import annotations

import platform
from importlib import metadata

TRACKED = ("robustbench-bilateral", "torch", "timm", "torchattacks", "datasets", "numpy", "safetensors")


def versions() -> dict[str, str]:
    """``{distribution: version}`` for the tracked libraries (``"absent"`` when not installed), plus Python."""
    found = {"python": platform.python_version()}
    for name in TRACKED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found
