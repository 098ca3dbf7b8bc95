"""Sharded evaluation under ``torchrun``: the process group, each rank's shard, results gathered on every rank.

``torchrun --nproc-per-node N -m cli ...`` starts N processes with ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK`` set. ``start_from_env`` joins them into one process group: gloo when the run's
device is the CPU (or MPS), NCCL with one GPU per rank (``cuda:LOCAL_RANK``) when it is CUDA.
Without those variables, or with ``WORLD_SIZE=1``, nothing is started and every helper here is
what a single process does alone: rank 0 of 1, the whole shard, gathers and broadcasts that
return their argument.

Sharding rule (``shard``): the ``n`` items of a cell (examples of a vision cell, windows of a
language cell) form ``K = ceil(n / B)`` batches of ``B`` (the run's batch size), batch ``k``
holding global indices ``[k * B, min((k + 1) * B, n))``, exactly as a single process batches them.
Rank ``r`` of ``N`` takes the contiguous block of whole batches ``[r * K // N, (r + 1) * K // N)``.
So every item is evaluated exactly once, in the same batch as in a single process (attacks that
seed a batch by its first example see the same batches), and the ranks' results concatenated in
rank order (``gather``) are in global order, whatever ``N``.

Only rank 0 opens the results store (``RankZeroStore``): its answers (is a cell stored? its
stored outcomes) are broadcast to the other ranks, so every rank takes the same path through a
run, and only rank 0 writes.

Failure: every collective waits at most ``BILAT_EVAL_DIST_TIMEOUT`` seconds (default
``DEFAULT_TIMEOUT_S``); one that fails, because a rank died or did not answer in time, raises a
one-line ``BilatError``. When a rank dies, ``torchrun`` sends SIGTERM to the others, which then
raise a one-line ``BilatError`` too. Cells rank 0 finished are stored, so the same command resumes.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TypeVar, cast

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from robustbench_bilateral.errors import BilatError, InputError
from robustbench_bilateral.launch import launched
from robustbench_bilateral.results.row import ResultRow
from robustbench_bilateral.results.store import ResultStore

TIMEOUT_ENV = "BILAT_EVAL_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0

T = TypeVar("T")

_RESUME = "run the same command again to resume from the cells rank 0 stored"


def collective_timeout() -> timedelta:
    """How long a collective may wait: ``$BILAT_EVAL_DIST_TIMEOUT`` seconds, else ``DEFAULT_TIMEOUT_S``."""
    text = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise InputError(f"{TIMEOUT_ENV}={text!r} is not a positive number of seconds: set it to e.g. 600 or unset it")
    return timedelta(seconds=seconds)


def start_from_env(device: torch.device) -> torch.device:
    """Join the process group of a ``torchrun`` launch, once, and return the device of this rank.

    A CUDA device becomes ``cuda:LOCAL_RANK`` with the NCCL backend; any other device keeps gloo.
    Outside ``torchrun`` (or when the group is already started) ``device`` is returned unchanged.
    """
    if not launched() or dist.is_initialized():
        return device
    if device.type == "cuda":
        local_rank = int(os.environ["LOCAL_RANK"])
        if local_rank >= torch.cuda.device_count():
            raise InputError(f"local rank {local_rank} needs cuda:{local_rank} but this node has {torch.cuda.device_count()} "
                             f"GPU(s): start at most that many processes per node (--nproc-per-node)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    _collective("joining the process group", lambda: dist.init_process_group(backend, timeout=collective_timeout()))
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    return device


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM handler of a rank: fail with one line instead of vanishing without a word."""
    raise BilatError(f"{_this_rank()}: stopped by SIGTERM, which torchrun sends to every rank once one has failed: {_RESUME}")


def finish() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    """This process's rank in the process group; 0 without one."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """How many ranks share the work; 1 without a process group."""
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this process is rank 0: the one that writes results and prints."""
    return rank() == 0


def batch_block(n: int, batch_size: int, r: int, n_ranks: int) -> slice:
    """Global indices of rank ``r`` of ``n_ranks`` under the sharding rule: the whole batches
    ``[r * K // N, (r + 1) * K // N)`` of the ``K = ceil(n / batch_size)`` batches (possibly none)."""
    batches = -(-n // batch_size)
    first, stop = (batches * part // n_ranks for part in (r, r + 1))
    return slice(min(first * batch_size, n), min(stop * batch_size, n))


def shard(n: int, batch_size: int) -> slice:
    """This rank's global indices of ``n`` items batched by ``batch_size``: ``batch_block`` of this rank."""
    return batch_block(n, batch_size, rank(), world_size())


def gather(part: Tensor) -> Tensor:
    """The 1-D ``part`` of every rank (on the CPU), concatenated in rank order, on every rank."""
    if world_size() == 1:
        return part
    parts: list[Tensor | None] = [None] * world_size()
    _collective("gathering results", lambda: dist.all_gather_object(parts, part.cpu()))
    return torch.cat(cast("list[Tensor]", parts))  # all_gather_object filled every entry


def from_rank0(value: T) -> T:
    """Rank 0's ``value`` on every rank (the other ranks' ``value`` is ignored)."""
    if world_size() == 1:
        return value
    box = [value]
    _collective("receiving rank 0's answer", lambda: dist.broadcast_object_list(box, src=0))
    return box[0]


def _collective(action: str, call: Callable[[], T]) -> T:
    """``call()``, its failure turned into one ``BilatError`` line naming this rank and the way out."""
    try:
        return call()
    except RuntimeError as error:  # the distributed errors of torch (DistError and gloo's) are RuntimeErrors
        raise BilatError(
            f"{_this_rank()}: {action} failed "
            f"({_gist(error)}): another rank died or did not answer within {collective_timeout().total_seconds():g} s "
            f"({TIMEOUT_ENV}); {_RESUME}"
        ) from error


def _this_rank() -> str:
    """``rank R of N``, from torchrun's variables when the process group is not (yet) there."""
    return f"rank {os.environ.get('RANK', rank())} of {os.environ.get('WORLD_SIZE', world_size())}"


def _gist(error: Exception) -> str:
    """The first sentence of ``error``'s message, without a leading ``[source:line]`` location."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(error).strip())
    return re.split(r"\.\s|\n", text, maxsplit=1)[0].strip() or type(error).__name__


class RankZeroStore:
    """The run's results store as every rank sees it.

    Rank 0 holds the store and answers from it; the other ranks hold ``None``, get rank 0's
    answers (``has_cell``, ``outcomes``) by broadcast, and neither read nor write anything.
    ``rows`` is empty on the other ranks.
    """

    def __init__(self, store: ResultStore | None) -> None:
        self._store = store

    def has_cell(self, key: str) -> bool:
        """Whether cell ``key`` is stored, as rank 0 sees it."""
        return from_rank0(self._store is not None and self._store.has_cell(key))

    def outcomes(self, key: str) -> dict[str, np.ndarray]:
        """The stored outcomes of cell ``key``, read by rank 0."""
        return from_rank0(self._store.outcomes(key) if self._store is not None else {})

    def write_cell(
        self, key: str, rows: Sequence[ResultRow], outcomes: Mapping[str, np.ndarray], exist_ok: bool = False
    ) -> None:
        """Store a finished cell (rank 0 only; ``ResultStore.write_cell``)."""
        if self._store is not None:
            self._store.write_cell(key, rows, outcomes, exist_ok)

    def clear(self) -> None:
        """Delete every stored cell (rank 0 only)."""
        if self._store is not None:
            self._store.clear()

    def rows(self, cell_keys: Iterable[str]) -> list[ResultRow]:
        """The stored rows of ``cell_keys`` on rank 0; none on the other ranks."""
        return self._store.rows(cell_keys) if self._store is not None else []
