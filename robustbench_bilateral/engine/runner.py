"""Running cells: threatened predictions, metrics with intervals, rows written to the store.

The core functions take tensors and a model; how checkpoints and splits are loaded is injected
into ``Engine.run``. Metrics of a vision cell over its ``n`` examples:

- ``accuracy = n_correct / n`` (correct after the threat over all evaluated examples), with a
  95 % Wilson interval;
- ``success_rate = (k - still) / k`` over the ``k`` examples the model classifies correctly
  without a threat, ``still`` of which stay correct under it, with a 95 % Wilson interval (not
  reported for the clean threat, nor when ``k = 0``).

A language cell reports per-word ``perplexity = exp(sum NLL / sum words)`` over its scored words
(``n``; full left context with stride 1, ``text.windows``), with a seeded 95 % percentile-bootstrap
interval over windows (``windows`` on the row); its rows carry ``context`` and ``stride`` among
their ``params``, and those of an embedding attack the absolute radius ``eps_abs`` it used.

Under ``torchrun`` each rank evaluates its shard of a cell's examples or windows and the
per-example outcomes are gathered in global order on every rank (``engine.distributed``), so
every rank holds the outcome a single process computes; only rank 0 stores it.

A vision cell runs in batches of the engine's batch size, or of its threat's ``batch_size`` when
the threat sets one (an attack with random parts, whose rows depend on it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Protocol, Self, cast

import numpy as np
import torch
from torch import Tensor, nn

from robustbench_bilateral.engine.cell import Cell
from robustbench_bilateral.engine.distributed import RankZeroStore, gather, shard
from robustbench_bilateral.engine.language import EmbeddingThreat, TextSplit, evaluated_ids
from robustbench_bilateral.engine.model_checks import model_flags
from robustbench_bilateral.engine.parallel import map_batches
from robustbench_bilateral.engine.threat import Clean, Threat
from robustbench_bilateral.enums import Task, ThreatFamily
from robustbench_bilateral.errors import BilatError
from robustbench_bilateral.models.lm import CausalLM
from robustbench_bilateral.results.row import ResultRow, canonical_json
from robustbench_bilateral.results.stats import bootstrap_perplexity_interval, perplexity, wilson_interval
from robustbench_bilateral.results.store import ResultStore
from robustbench_bilateral.rng import ExampleRNG
from robustbench_bilateral.versions import cpu_setup, versions


class CheckpointLike(Protocol):
    """What ``load_checkpoint`` returns: the model, its metadata (``task``, ``variant``,
    ``dataset``, and ``context_length`` for language models), its file and content hash."""

    model: nn.Module
    meta: dict
    sha256: str
    path: Any


LoadCheckpoint = Callable[[str], CheckpointLike]
LoadSplit = Callable[[str, str, int, dict], Any]
Progress = Callable[[Cell, bool], None]
Steps = Callable[[Cell, int, int], None]
"""``steps(cell, count, total)``: ``count`` more of the cell's ``total`` examples (windows of a language cell) are done."""
BatchDone = Callable[[int, int], None]
"""``done(count, total)``: a batch of ``count`` of a cell's ``total`` examples (windows) has run."""


@dataclass(frozen=True)
class Outcome:
    """Per-example (or per-window) tensors of one cell on the CPU, stored as NumPy arrays named by field."""

    @property
    def n(self) -> int:
        """How many examples (windows) the cell evaluated: the length of each field."""
        return len(getattr(self, fields(self)[0].name))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {field.name: getattr(self, field.name).numpy() for field in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Self:
        return cls(**{field.name: torch.from_numpy(arrays[field.name]) for field in fields(cls)})


@dataclass(frozen=True)
class VisionOutcome(Outcome):
    """Per-example result of a vision cell: predicted class (int64) and correctness (bool)."""

    predictions: Tensor
    correct: Tensor

    @property
    def n_correct(self) -> int:
        return int(self.correct.sum())


@dataclass(frozen=True)
class LanguageOutcome(Outcome):
    """Per-window result of a language cell: summed NLL in nats (float64) and words predicted (int64)."""

    nll: Tensor
    counts: Tensor


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Within the block no parameter of ``model`` requires gradients (restored after): backward passes
    through it compute the input's gradient only."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


def apply_threat(threat: Threat, batch: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
    """``threat.apply`` with gradients only for adversarial threats; the result is detached."""
    with torch.set_grad_enabled(threat.family is ThreatFamily.ADVERSARIAL):
        return threat.apply(batch, labels, model, rng).detach()


def run_vision_cell(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    threat: Threat,
    seed: int,
    batch_size: int,
    device: torch.device | str,
    done: BatchDone | None = None,
    parallel: bool = True,
) -> VisionOutcome:
    """Predictions of ``model`` (put in eval mode) on ``threat`` applied to ``images`` (N, C, H, W) in [0, 1].

    Example ``i`` draws its randomness from ``ExampleRNG(seed, [i])``, so the outcome does not
    depend on ``batch_size``, nor on which rank of a sharded run evaluates it: each rank runs the
    batches of its ``shard(N, batch_size)`` and every rank returns all N outcomes in order.
    ``done(count, N)`` is called after each of this rank's batches, in order. On the CPU the
    batches of a threat with ``parallel_batches`` run at once (``engine.parallel``) unless
    ``parallel`` is False (a compiled model runs them one after the other). The model's
    parameters do not require gradients meanwhile (an attack needs only the input's).
    """
    if len(labels) == 0 or len(images) != len(labels):
        raise ValueError(f"need as many images as labels, at least one: got {len(images)} and {len(labels)}")
    device = torch.device(device)
    model.eval()
    mine = shard(len(labels), batch_size)

    def predict(start: int, stop: int) -> Tensor:
        rng = ExampleRNG(seed, range(start, stop), device)
        evaluated = apply_threat(threat, images[start:stop].to(device), labels[start:stop].to(device), model, rng)
        with torch.no_grad():
            return model(evaluated).argmax(dim=-1).cpu()

    bounds = [(start, min(start + batch_size, mine.stop)) for start in range(mine.start, mine.stop, batch_size)]
    parallel = parallel and device.type == "cpu" and threat.parallel_batches()
    predictions = [torch.empty(0, dtype=torch.long)]
    with frozen(model):
        for predicted, (start, stop) in zip(map_batches(predict, bounds, parallel), bounds):
            predictions.append(predicted)
            if done is not None:
                done(stop - start, len(labels))
    predicted = gather(torch.cat(predictions))
    return VisionOutcome(predicted, predicted == labels.cpu())


def run_language_cell(
    model: CausalLM, ids: Tensor, context: int, stride: int, threat: Threat, seed: int, batch_size: int,
    device: torch.device | str, done: BatchDone | None = None,
) -> LanguageOutcome:
    """Sliding-window NLL of the token stream ``ids`` (L,) (``text.windows``: ``context`` tokens, ``stride``).

    An ``EmbeddingThreat`` perturbs the input embeddings of each window, seeded by ``(seed,
    window index)``; any other threat has already acted on the text. Each rank scores the windows
    of its ``shard(W, batch_size)``; every rank returns all W windows in order. ``done(count, W)``
    is called after each of this rank's batches.
    """
    from robustbench_bilateral.text.windows import sliding_window_nll, window_plan

    model.eval()
    perturb = threat.perturbation(model, seed) if isinstance(threat, EmbeddingThreat) else None
    total = len(window_plan(len(ids), context, stride))
    on_batch = None if done is None else lambda count: done(count, total)
    nll, counts = sliding_window_nll(model, ids, context, stride, batch_size, torch.device(device),
                                     shard(total, batch_size), perturb, on_batch)
    return LanguageOutcome(gather(nll.detach().cpu().double()), gather(counts.cpu().long()))


class CellSteps:
    """The ``Steps`` of one cell as its batches run (a ``BatchDone``); ``finish`` reports what no batch
    of this rank ran (the other ranks' shards, clean predictions already held), so on every rank the
    counts of a cell add up to its total."""

    def __init__(self, cell: Cell, steps: Steps | None) -> None:
        self.cell = cell
        self.steps = steps
        self.done = 0

    def __call__(self, count: int, total: int) -> None:
        self.done += count
        if self.steps is not None:
            self.steps(self.cell, count, total)

    def finish(self, total: int) -> None:
        """Report the rest of the cell's ``total`` examples (windows), if any."""
        if self.done < total:
            self(total - self.done, total)


class Engine:
    """Runs cells against one store, reusing checkpoints, splits and clean predictions.

    In a sharded run every rank runs the same cells in the same order; ``store`` is the run's
    store on rank 0 and ``None`` on the other ranks, which get rank 0's answers and write nothing.
    """

    def __init__(self, store: ResultStore | None, device: torch.device | str, batch_size: int, run_name: str,
                 compiled: bool = False) -> None:
        self.store = RankZeroStore(store)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.run_name = run_name
        self.compiled = compiled
        self.versions = {**versions(), **cpu_setup(), **({"compiled": True} if compiled else {})}
        self._clean: dict[str, VisionOutcome] = {}

    def run(
        self,
        cells: Iterable[Cell],
        load_checkpoint: LoadCheckpoint,
        load_split: LoadSplit,
        progress: Progress | None = None,
        fresh: bool = False,
        steps: Steps | None = None,
    ) -> list[ResultRow]:
        """Compute every cell not yet in the store and return the stored rows of all ``cells`` (none
        on the ranks other than 0 of a sharded run).

        ``fresh`` clears the store first. Each checkpoint is loaded once (not at all if all its
        cells are stored) and each split once; each computed cell is written in one transaction,
        unless another process using the same store stored it meanwhile: then its stored rows stand.
        ``load_split(dataset, split, n, meta)`` returns ``(images, labels)`` for an image
        classifier and a ``TextSplit`` (or pre-tokenised ids ``(L,)``, clean only) for a language
        model. ``progress(cell, computed)`` is called once per distinct cell, ``computed`` False
        when it came from the store; while a cell is computed, ``steps(cell, count, total)`` is
        called after each batch, with counts (examples, windows of a language cell) that add up
        to the cell's total on every rank (``CellSteps``).
        """
        cells = list(cells)
        if fresh:
            self.store.clear()
            self._clean.clear()
        splits: dict[tuple, Any] = {}
        for path, group in _group_by_checkpoint(cells).items():
            pending = []
            for cell in group:
                if not self.store.has_cell(cell.key):
                    pending.append(cell)
                elif progress is not None:
                    progress(cell, False)
            if not pending:
                continue
            checkpoint = load_checkpoint(path)
            for cell in pending:
                if checkpoint.sha256 != cell.checkpoint_sha256:
                    raise BilatError(
                        f"checkpoint {path} changed since its cells were planned (sha256 {checkpoint.sha256[:12]}, "
                        f"planned {cell.checkpoint_sha256[:12]}): plan the run again"
                    )
                data = self._split(splits, cell, checkpoint, load_split)
                done = CellSteps(cell, steps)
                if _is_language(checkpoint):
                    total = self._evaluate_language(cell, checkpoint, data, done)
                else:
                    images, labels = data
                    total = self._evaluate_vision(cell, checkpoint, images, labels, done)
                done.finish(total)
                if progress is not None:
                    progress(cell, True)
        return self.store.rows(cell.key for cell in cells)

    def _split(self, splits: dict[tuple, Any], cell: Cell, checkpoint: CheckpointLike, load_split: LoadSplit) -> Any:
        """A split shared by the checkpoints that read images alike (same input size and preprocessing),
        or by one checkpoint's tokenisation (language)."""
        reader = checkpoint.sha256 if _is_language(checkpoint) else canonical_json(
            [checkpoint.meta.get("model", {}).get("kwargs", {}).get("img_size"), checkpoint.meta.get("preprocessing")])
        key: tuple[str | int, ...] = (reader, cell.dataset, cell.split, cell.n_examples)
        if key not in splits:
            splits[key] = load_split(cell.dataset, cell.split, cell.n_examples, checkpoint.meta)
        return splits[key]

    def _evaluate_language(self, cell: Cell, checkpoint: CheckpointLike, data: TextSplit | Tensor, done: BatchDone) -> int:
        """Tokenise the text as the threat rewrote it (``engine.language``), score it (under an embedding
        attack if that is the threat), store the perplexity row: ``n`` scored words over ``windows``
        windows, which it returns."""
        started = time.perf_counter()
        threatened = evaluated_ids(data, cell.threat, cell.seed)
        context = cell.context or int(checkpoint.meta["context_length"])
        stride = cell.stride or 1
        model = cast(CausalLM, checkpoint.model)
        outcome = run_language_cell(model, threatened, context, stride, cell.threat, cell.seed,
                                    self.batch_size, self.device, done)
        wall_s = time.perf_counter() - started
        nll, counts = outcome.nll.numpy(), outcome.counts.numpy()
        sizes = cell.threat.absolute(model) if isinstance(cell.threat, EmbeddingThreat) else {}
        row = self._row(cell, checkpoint, "perplexity", int(counts.sum()), perplexity(nll, counts),
                        bootstrap_perplexity_interval(nll, counts, cell.seed), None, wall_s, windows=outcome.n,
                        params=sizes)
        self.store.write_cell(cell.key, [row], outcome.to_arrays(), exist_ok=True)
        return outcome.n

    def _evaluate_vision(self, cell: Cell, checkpoint: CheckpointLike, images: Tensor, labels: Tensor,
                         done: BatchDone) -> int:
        """Store the accuracy row and, for a real threat, the success-rate row against clean predictions;
        return the cell's number of examples.

        The rows carry the flags of the model checks the threat names (``Threat.model_checks``,
        ``engine.model_checks``). ``done`` hears of the batches of the cell's own threat (of the
        clean predictions for the clean threat).
        """
        started = time.perf_counter()
        clean_cell = cell.threat.family is ThreatFamily.CLEAN
        clean = self._clean_outcome(cell, checkpoint.model, images, labels, done if clean_cell else None)
        checks = cell.threat.model_checks
        flags = model_flags(checkpoint.model, images, labels, self.device, checks) if checks else ()
        if clean_cell:
            outcome = clean
        else:
            batch_size = cell.threat.params.get("batch_size") or self.batch_size
            outcome = run_vision_cell(checkpoint.model, images, labels, cell.threat, cell.seed, batch_size, self.device, done,
                                      parallel=not self.compiled)
        wall_s = time.perf_counter() - started
        rows = [
            self._row(cell, checkpoint, "accuracy", outcome.n, outcome.n_correct / outcome.n,
                      wilson_interval(outcome.n_correct, outcome.n), outcome.n_correct, wall_s, flags)
        ]
        originally = clean.n_correct
        if cell.threat.family is not ThreatFamily.CLEAN and originally:
            still = int((outcome.correct & clean.correct).sum())
            rows.append(
                self._row(cell, checkpoint, "success_rate", originally, (originally - still) / originally,
                          wilson_interval(originally - still, originally), still, wall_s, flags)
            )
        self.store.write_cell(cell.key, rows, outcome.to_arrays(), exist_ok=True)
        return outcome.n

    def _clean_outcome(self, cell: Cell, model: nn.Module, images: Tensor, labels: Tensor,
                       done: BatchDone | None) -> VisionOutcome:
        """Clean predictions of the cell's checkpoint and split as stored: from memory, or from the
        store, where they are computed (``done`` hearing of each batch) and written first unless
        stored (by another process meanwhile, whose outcome is then the one used)."""
        key = cell.clean_key
        if key not in self._clean:
            if not self.store.has_cell(key):
                outcome = run_vision_cell(model, images, labels, Clean(), cell.seed, self.batch_size, self.device, done)
                self.store.write_cell(key, [], outcome.to_arrays(), exist_ok=True)
            self._clean[key] = VisionOutcome.from_arrays(self.store.outcomes(key))
        return self._clean[key]

    def _row(
        self,
        cell: Cell,
        checkpoint: CheckpointLike,
        metric: str,
        n: int,
        value: float,
        interval: tuple[float, float],
        n_correct: int | None,
        wall_s: float,
        flags: tuple[str, ...] = (),
        windows: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> ResultRow:
        """A row of ``cell``; ``params`` adds entries the run derived (an attack's absolute radius) to the cell's."""
        return ResultRow(
            run=self.run_name,
            checkpoint=str(cell.checkpoint_path),
            checkpoint_sha256=cell.checkpoint_sha256,
            variant=checkpoint.meta["variant"],
            task=checkpoint.meta["task"],
            dataset=cell.dataset,
            split=cell.split,
            threat_family=cell.threat.family,
            threat=cell.threat.name,
            params={**cell.params, **(params or {})},
            n=n,
            metric=metric,
            value=value,
            ci_low=interval[0],
            ci_high=interval[1],
            n_correct=n_correct,
            seed=cell.seed,
            device=str(self.device),
            flags=flags,
            wall_s=wall_s,
            versions=self.versions,
            cell_key=cell.key,
            windows=windows,
        )


def _is_language(checkpoint: CheckpointLike) -> bool:
    return Task(checkpoint.meta["task"]) is Task.LANGUAGE_MODELING


def _group_by_checkpoint(cells: list[Cell]) -> dict[str, list[Cell]]:
    """Distinct cells (by key) grouped by checkpoint path, in order of first appearance."""
    distinct: dict[str, Cell] = {}
    for cell in cells:
        distinct.setdefault(cell.key, cell)
    groups: dict[str, list[Cell]] = {}
    for cell in distinct.values():
        groups.setdefault(cell.checkpoint_path, []).append(cell)
    return groups
