"""Corruptions run a cache-sized chunk of examples at a time, the chunks at once on the CPU.

A corruption computes each example from that example's pixels and generator alone, so a batch
split into chunks gives the numbers of the whole batch up to float rounding, and bit for bit on
every corruption and severity of the tests (``tests/test_corruption_chunks.py``): what could
differ is a matrix product whose BLAS kernel sums in another order for another batch size, or a
shot-noise uniform within 1e-15 of a Poisson CDF value, where its table look-up (chosen per
block of values) and the stepping could part. A batch of 100 RGB images at 224 px is 60 MB of
float32, more than a CPU's caches hold, so each elementwise pass over it streams from memory; a
chunk of at most ``CHUNK_VALUES`` values stays in cache.

On the CPU with more than one torch thread, the chunks run in ``torch.get_num_threads()``
worker threads, one intra-op thread each, in the caller's grad and inference modes
(``engine.parallel.map_batches``, which runs them one after the other instead when called off
the main thread or under CPU autocast); on other devices the batch runs whole.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from robustbench_bilateral.engine.parallel import map_batches
from robustbench_bilateral.rng import ExampleRNG

CHUNK_VALUES = 1 << 20
"""Values per chunk (4 MB of float32, 6 RGB images at 224 px); at least one example."""


def chunk_bounds(count: int, values_per_example: int, limit: int = CHUNK_VALUES) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive chunks of ``count`` examples, each of at most ``limit``
    values (one example when a single one is larger)."""
    size = max(1, limit // max(1, values_per_example))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def cpu_chunk_bounds(tensor: torch.Tensor, limit: int) -> list[tuple[int, int]]:
    """``chunk_bounds`` of a batch on the CPU when it makes two chunks or more, else ``[]`` (one
    call on the whole batch)."""
    bounds = chunk_bounds(len(tensor), tensor[0].numel(), limit) if len(tensor) and tensor.device.type == "cpu" else []
    return bounds if len(bounds) > 1 else []


def huge_page_empty(images: torch.Tensor) -> torch.Tensor:
    """An uninitialised CPU tensor shaped and typed like ``images``, from numpy's allocator where
    numpy has the dtype: numpy asks the kernel to back large arrays with transparent huge pages
    (``madvise(MADV_HUGEPAGE)``), so the first write to a 60 MB output faults 2 MB pages in, not
    4 KB ones (15.6 against 50.3 ms for the first fill of 100 x 3 x 224 x 224 float32 here)."""
    try:
        dtype = torch.empty(0, dtype=images.dtype).numpy().dtype
    except TypeError:
        return torch.empty_like(images)
    return torch.from_numpy(np.empty(tuple(images.shape), dtype=dtype))


def per_chunk(work: Callable[[torch.Tensor], torch.Tensor], tensor: torch.Tensor, limit: int = CHUNK_VALUES) -> torch.Tensor:
    """``work(tensor)`` for work that maps each example (dim 0) on its own, computed in chunks
    of at most ``limit`` values (``chunk_bounds``) as ``in_chunks`` runs them, and concatenated;
    exact wherever ``work`` is (integer and boolean steps, sums of integers). Off the CPU, or when
    the tensor fits in one chunk, one call on the whole tensor."""
    bounds = cpu_chunk_bounds(tensor, limit)
    if not bounds:
        return work(tensor)
    parts = map_batches(lambda start, stop: work(tensor[start:stop]), bounds, torch.get_num_threads() > 1)
    return torch.cat(list(parts))


def in_chunks(work: Callable[[torch.Tensor, ExampleRNG], torch.Tensor], images: torch.Tensor, rng: ExampleRNG) -> torch.Tensor:
    """``work(images, rng)``, an (N, C, H, W) batch of the images' shape and dtype, computed chunk
    by chunk (``chunk_bounds``): chunk ``[start, stop)`` gets ``images[start:stop]`` and
    ``rng.rows(start, stop)`` and writes its rows of the output while they are in cache."""
    bounds = cpu_chunk_bounds(images, CHUNK_VALUES)
    if not bounds:
        return work(images, rng)
    out = huge_page_empty(images)

    def fill(start: int, stop: int) -> None:
        out[start:stop] = work(images[start:stop], rng.rows(start, stop))

    for _ in map_batches(fill, bounds, torch.get_num_threads() > 1):
        pass
    return out
