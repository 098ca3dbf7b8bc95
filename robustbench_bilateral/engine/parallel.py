"""Batches that run at once: one batch per worker thread, each on one intra-op thread.

Small models leave most of a multi-core CPU idle inside one batch: a ViT of dimension 64 on 28 px
images runs a PGD step (forward + backward, batches of 128, 2 cores) at 0.43 ms per image on one
intra-op thread, 0.36 ms on two, and 0.24 ms with two batches at once, one per thread. So a threat whose
batches are independent (``Threat.parallel_batches``: it draws only from its own generators) runs
them in ``torch.get_num_threads()`` worker threads instead, each batch with one intra-op thread
(torch releases the GIL inside its kernels). Each batch then computes the same numbers however
many workers there are, and the same as a single-threaded run, provided the model's forward
draws no random numbers (eval mode; a model that does is flagged ``nondeterministic-forward``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

Result = TypeVar("Result")


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Within the block torch's kernels use one thread each (the process-wide setting, restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def map_batches(work: Callable[[int, int], Result], bounds: Sequence[tuple[int, int]], parallel: bool) -> Iterator[Result]:
    """``work(start, stop)`` of each batch, yielded in order as they finish.

    ``parallel``: in ``torch.get_num_threads()`` worker threads, each batch on one intra-op thread,
    with the caller's grad and inference modes. Only from the main thread (the intra-op thread
    count is process-wide) and outside CPU autocast (which worker threads would not inherit);
    otherwise, or without ``parallel``, one batch after the other on the calling thread with
    torch's threads as they are.
    """
    parallel = parallel and threading.current_thread() is threading.main_thread() and not torch.is_autocast_enabled("cpu")
    if not parallel:
        yield from (work(start, stop) for start, stop in bounds)
        return
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def in_caller_modes(bound: tuple[int, int]) -> Result:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return work(*bound)

    workers = torch.get_num_threads()
    with one_intra_op_thread(), ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(in_caller_modes, bounds)
