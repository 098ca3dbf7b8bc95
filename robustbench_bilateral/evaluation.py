"""Evaluations end to end: checkpoints x threats -> cells -> rows in a run's store -> exports.

Every evaluating command (``evaluate``, ``attack``, ``contaminate``, ``batch``) plans its cells
with ``plan_cells`` and runs them with ``run_cells``. ``n_examples = 0`` means the whole split:
for an image split its first ``n`` examples, for a text split its first ``n`` words of the
token stream (lines in order, an end-of-line token after each).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

# Importing the threat modules registers their threats with the engine.
from robustbench_bilateral.attacks import vision as _attack_threats  # noqa: F401
from robustbench_bilateral.checkpoint import LoadedCheckpoint, file_sha256, load_checkpoint, read_metadata
from robustbench_bilateral.corruptions import threats as _corruption_threats  # noqa: F401
from robustbench_bilateral.data import Task, image_tensors, load_source, text_lines
from robustbench_bilateral.engine import Cell, Engine, Threat
from robustbench_bilateral.engine.distributed import is_main
from robustbench_bilateral.engine.language import TextSplit
from robustbench_bilateral.engine.runner import Progress
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.results import ResultRow, ResultStore, ThreatFamily, export_all
from robustbench_bilateral.text import WordVocab
from robustbench_bilateral.wordswap import threat as _wordswap_threats  # noqa: F401
from robustbench_bilateral.wordswap.counts import vocabulary_counts

DEFAULT_RUN = "main"
DEFAULT_SPLIT = "test"
LANGUAGE_FAMILIES = frozenset({ThreatFamily.CLEAN, ThreatFamily.WORDSWAP})


@dataclass(frozen=True)
class CheckpointInfo:
    """What planning needs of a checkpoint: where it is, its content hash, its metadata."""

    path: str
    sha256: str
    meta: dict

    @property
    def task(self) -> Task:
        return Task(self.meta["task"])


def describe_checkpoint(path: str, model_name: str | None = None) -> CheckpointInfo:
    """Metadata and hash of a checkpoint without building its model when its metadata suffices.

    Plain weights (``.pt``, ``timm:NAME``, ``--model``) are loaded once to learn what they are.
    """
    if model_name is None and not path.startswith("timm:") and Path(path).suffix == ".safetensors":
        if not Path(path).is_file():
            raise InputError(f"checkpoint {path} does not exist: pass the path of a .safetensors file from `bilat-eval train`")
        return CheckpointInfo(path, file_sha256(Path(path)), read_metadata(Path(path)))
    loaded = load_checkpoint(path, model_name)
    return CheckpointInfo(path, loaded.sha256, loaded.meta)


def plan_cells(
    checkpoints: Sequence[CheckpointInfo],
    threats: Sequence[Threat],
    *,
    dataset: str | None = None,
    split: str = DEFAULT_SPLIT,
    n_examples: int = 0,
    seed: int = 0,
) -> list[Cell]:
    """One cell per (checkpoint, threat), in that order, on ``dataset`` (default: the checkpoint's own).

    Checks before anything runs: ``n_examples`` is not negative, the dataset and split exist and
    fit the checkpoint's task, and every threat applies to that task.
    """
    if n_examples < 0:
        raise InputError(f"--n-examples must be 0 (all) or more, got {n_examples}")
    cells = []
    for info in checkpoints:
        name = dataset or info.meta["dataset"]
        source = load_source(name)
        if split not in source.meta.splits:
            raise InputError(f"dataset '{name}' has no split '{split}': choose one of {', '.join(source.meta.splits)}")
        if source.meta.task is not info.task:
            raise InputError(f"checkpoint {info.path} is for {info.task.value} but dataset '{name}' is {source.meta.task.value}: pick a matching --dataset")
        for threat in threats:
            _check_threat_fits(threat, info)
            cells.append(Cell(info.path, info.sha256, name, split, threat, seed, n_examples))
    return cells


def _check_threat_fits(threat: Threat, info: CheckpointInfo) -> None:
    language = info.task is Task.LANGUAGE_MODELING
    if language != (threat.family in LANGUAGE_FAMILIES) and threat.family is not ThreatFamily.CLEAN:
        kind = "language models" if language else "image classifiers"
        raise InputError(f"threat {threat.name} does not apply to {kind} ({info.path}): use it with a matching checkpoint")


def load_split(dataset: str, split: str, n_examples: int, meta: dict) -> Any:
    """The evaluated data of a split, as the checkpoint with metadata ``meta`` reads it.

    Images: ``(images (N, C, H, W) float32 in [0, 1], labels (N,) int64)`` at the model's input
    size. Text: a ``TextSplit`` of the lines holding the split's first ``n_examples`` tokens, with the
    checkpoint's own vocabulary and the counts of its words in the checkpoint's training split.
    """
    source = load_source(dataset)
    limit = n_examples or None
    if Task(meta["task"]) is Task.LANGUAGE_MODELING:
        vocab = WordVocab.from_list(meta["vocab"])
        counts = partial(vocabulary_counts, meta["dataset"], vocab)
        return TextSplit.first_words(text_lines(source.split(split)), vocab, n_examples, counts)
    kwargs = meta["model"]["kwargs"]
    images, labels = image_tensors(source.split(split), limit, image_size=kwargs.get("img_size"))
    expected = (kwargs.get("in_chans", images.shape[1]), kwargs.get("img_size", images.shape[-1]))
    if (images.shape[1], images.shape[-1]) != expected:
        raise InputError(
            f"dataset '{dataset}' has {images.shape[1]}-channel {images.shape[-1]} px images but the model takes "
            f"{expected[0]}-channel {expected[1]} px: evaluate it on a matching --dataset"
        )
    return images, labels


def run_cells(
    cells: Sequence[Cell],
    *,
    out: Path,
    run: str = DEFAULT_RUN,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    fresh: bool = False,
    model_name: str | None = None,
    progress: Progress | None = None,
) -> list[ResultRow]:
    """Run the cells not yet stored in ``<out>/<run>/results.sqlite``, export the run, return the cells' rows.

    Exports (``results.csv``, ``results_wide.csv``, ``results.md``, ``results.json``) go next to the store.
    In a sharded run (``engine.distributed``) every rank runs its shard of each cell; only rank 0
    opens the store, writes and exports, and the other ranks return no rows.
    """
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")

    def load(path: str) -> LoadedCheckpoint:
        return load_checkpoint(path, model_name)

    with (ResultStore.for_run(out, run) if is_main() else nullcontext()) as store:
        rows = Engine(store, device, batch_size, run).run(cells, load, load_split, progress, fresh)
        if store is not None:
            export_all(store, store.path.parent)
    return rows
