"""Corruptions run a cache-sized chunk of examples at a time, the chunks at once on the CPU.

A corruption computes each example from that example's pixels and generator alone, so a batch
split into chunks gives the numbers of the whole batch, bit for bit
(``tests/test_corruption_chunks.py``). A batch of 100 RGB images at 224 px is 60 MB of float32,
more than a CPU's caches hold, so each elementwise pass over it streams from memory; a chunk of
at most ``CHUNK_VALUES`` values stays in cache. On the CPU the chunks run in
``torch.get_num_threads()`` worker threads, one intra-op thread each (``engine.parallel``),
which computes the same numbers as any other number of threads. On other devices the batch runs
whole.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from robustbench_bilateral.engine.parallel import map_batches
from robustbench_bilateral.rng import ExampleRNG

CHUNK_VALUES = 1 << 20
"""Values per chunk (4 MB of float32, about 7 RGB images at 224 px); at least one example."""


def chunk_bounds(count: int, values_per_example: int, limit: int = CHUNK_VALUES) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive chunks of ``count`` examples, each of at most ``limit``
    values (one example when a single one is larger)."""
    size = max(1, limit // max(1, values_per_example))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def in_chunks(work: Callable[[torch.Tensor, ExampleRNG], torch.Tensor], images: torch.Tensor, rng: ExampleRNG) -> torch.Tensor:
    """``work(images, rng)``, an (N, C, H, W) batch of the images' shape and dtype, computed chunk
    by chunk (``chunk_bounds``): chunk ``[start, stop)`` gets ``images[start:stop]`` and
    ``rng.rows(start, stop)`` and writes its rows of the output while they are in cache."""
    bounds = chunk_bounds(len(images), images[0].numel()) if len(images) else []
    if images.device.type != "cpu" or len(bounds) < 2:
        return work(images, rng)
    out = torch.empty_like(images)

    def fill(start: int, stop: int) -> None:
        out[start:stop] = work(images[start:stop], rng.rows(start, stop))

    for _ in map_batches(fill, bounds, torch.get_num_threads() > 1):
        pass
    return out
