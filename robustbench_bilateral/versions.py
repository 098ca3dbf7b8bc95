"""Versions of the libraries that shape a result, and the CPU set-up that does, stored in every checkpoint and result row."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

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


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``), or ``"unknown"``."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_setup() -> dict[str, str | int]:
    """``{"threads", "cpu", "cpu_capability", "machine"}``: torch's intra-op thread count, the CPU model,
    the instruction set torch's kernels dispatch to (e.g. ``AVX2``) and the architecture. CPU results
    depend on the thread count (reductions split differently) and on the instruction set."""
    import torch

    return {"threads": torch.get_num_threads(), "cpu": cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "machine": platform.machine()}
