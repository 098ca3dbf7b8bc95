"""What makes a training run reproduce bit for bit: a fixed thread count, deterministic kernels, and a record of the machine.

Batches, initial weights and augmentation draws are seeded (``training.tasks.epoch_generator``,
``torch.manual_seed``), so on one machine a run depends only on how the CPU kernels split and
vectorise their work: the intra-op thread count (``torch.set_num_threads``; a reduction summed
by 1 or 2 threads rounds differently) and the instruction set the kernels dispatch to
(``torch.backends.cpu.get_cpu_capability()``, e.g. AVX2 or AVX512). ``reproducible`` fixes the
first and turns on ``torch.use_deterministic_algorithms``; ``training_environment`` records both,
with the CPU model, in every checkpoint, so two checkpoints can be told apart by what produced them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from robustbench_bilateral.numbers import whole_number
from robustbench_bilateral.versions import cpu_setup

CUBLAS_WORKSPACE = ":4096:8"
"""cuBLAS's deterministic workspace setting (``CUBLAS_WORKSPACE_CONFIG``)."""


@contextmanager
def reproducible(threads: int | None) -> Iterator[int]:
    """Within the block, torch uses ``threads`` intra-op threads (``None``: as it is) and deterministic
    algorithms wherever it has them (an operation without one warns instead of failing; on CUDA,
    cuBLAS gets the fixed workspace ``CUBLAS_WORKSPACE`` it needs for them, unless
    ``CUBLAS_WORKSPACE_CONFIG`` is set); both settings are restored afterwards. Yields the thread count in use."""
    if threads is not None:
        threads = whole_number(threads, "threads", 1)
    before_threads = torch.get_num_threads()
    before_deterministic = torch.are_deterministic_algorithms_enabled()
    if threads is not None:
        torch.set_num_threads(threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield torch.get_num_threads()
    finally:
        torch.use_deterministic_algorithms(before_deterministic)
        torch.set_num_threads(before_threads)


def training_environment(device: torch.device) -> dict[str, str | int]:
    """``versions.cpu_setup()`` and the device type: what a run's numbers depend on beyond its
    settings and library versions (recorded separately)."""
    return {**cpu_setup(), "device": torch.device(device).type}
