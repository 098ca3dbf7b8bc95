"""Evaluations end to end: a spec -> cells -> rows in a run's store -> exports.

Every way in (the evaluating commands, batch specs, ``api.evaluate``) makes an
``EvaluationSpec``, turns it into an ``EvaluationPlan`` with ``plan_evaluation`` and runs it with
``run_plan``. ``plan_cells`` and ``run_cells`` are the two halves for callers that hold checked
values already. ``n_examples = 0`` means the whole split: for an image split its first ``n``
examples, for a text split its first ``n`` words of the token stream (lines in order, an
end-of-line token after each).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import cast

import torch
from torch import nn

from robustbench_bilateral.attacks.vision import output_width
from robustbench_bilateral.attention import AttentionConfig
from robustbench_bilateral.checkpoint import LoadedCheckpoint
from robustbench_bilateral.engine import Cell, Engine, Threat
from robustbench_bilateral.engine.distributed import is_main
from robustbench_bilateral.engine.language import EmbeddingThreat
from robustbench_bilateral.engine.runner import Progress, Steps
from robustbench_bilateral.enums import Task, ThreatFamily
from robustbench_bilateral.errors import BilatError, FieldError
from robustbench_bilateral.results import ResultRow, ResultStore
from robustbench_bilateral.results.sanity import store_flags_and_export
from robustbench_bilateral.sources import CheckpointInfo, GivenImages, Sources
from robustbench_bilateral.spec import DEFAULT_BATCH_SIZE, DEFAULT_RUN, DEFAULT_SPLIT, LOAD_FIELDS, EvaluationSpec, renamed_fields

LANGUAGE_FAMILIES = frozenset({ThreatFamily.CLEAN, ThreatFamily.WORDSWAP})
FILES = Sources()


@dataclass(frozen=True)
class EvaluationPlan:
    """A checked evaluation: its cells (threat group x checkpoint x threat order) and how to run them."""

    cells: list[Cell]
    checkpoints: tuple[CheckpointInfo, ...]
    run: str
    batch_size: int
    fresh: bool
    sources: Sources

    @property
    def variants(self) -> tuple[str, ...]:
        """The checkpoints' variants, each once, in checkpoint order."""
        return tuple(dict.fromkeys(info.meta["variant"] for info in self.checkpoints))

    @property
    def notes(self) -> tuple[str, ...]:
        """``"<checkpoint>: <note>"`` for every line the loader said about a checkpoint (what it added,
        initialised or dropped), in checkpoint order."""
        return tuple(f"{info.path}: {note}" for info in self.checkpoints for note in info.notes)


def plan_evaluation(spec: EvaluationSpec) -> EvaluationPlan:
    """``spec.validate()``, then every check that needs the checkpoints and data; nothing runs.

    Raises a ``FieldError`` naming the field in the spec's vocabulary: ``checkpoints[i]`` for a
    checkpoint that cannot be read, a loading setting (``mean``, ``crop_pct``, ...) that does not
    fit a checkpoint under its own name, ``dataset``/``split`` for data that does not exist or fit,
    ``threats[i]`` for a threat that does not apply to a checkpoint's task.
    """
    checked = spec.validate()
    given = {checked.dataset.name: checked.dataset} if isinstance(checked.dataset, GivenImages) else {}
    in_memory = {str(entry.path): entry for _, entry in checked.checkpoints if not isinstance(entry, str)}
    sources = Sources(checked.load, in_memory, given)
    infos = []
    for name, entry in checked.checkpoints:
        path = entry if isinstance(entry, str) else str(entry.path)
        try:
            infos.append(sources.describe(path))
        except BilatError as error:
            if isinstance(error, FieldError) and error.field in LOAD_FIELDS:
                raise
            raise FieldError(name, str(error)) from error
    dataset = checked.dataset.name if isinstance(checked.dataset, GivenImages) else checked.dataset
    cells = [cell for group in checked.groups
             for cell in plan_cells(infos, group.threats, dataset=dataset, split=checked.split,
                                    n_examples=group.n_examples, seed=checked.seed, sources=sources,
                                    threat_fields=group.fields, context=group.context, stride=group.stride)]
    return EvaluationPlan(cells, tuple(infos), checked.run, checked.batch_size, checked.fresh, sources)


def plan_cells(
    checkpoints: Sequence[CheckpointInfo],
    threats: Sequence[Threat],
    *,
    dataset: str | None = None,
    split: str = DEFAULT_SPLIT,
    n_examples: int = 0,
    seed: int = 0,
    sources: Sources = FILES,
    threat_fields: Sequence[str] | None = None,
    context: int | None = None,
    stride: int = 1,
) -> list[Cell]:
    """One cell per (checkpoint, threat), in that order, on ``dataset`` (default: the checkpoint's own).

    Takes checked values (``EvaluationSpec.validate``) and checks what needs the checkpoints:
    the dataset and split exist and fit each checkpoint's task, and every threat applies to
    it. A failure is a ``FieldError`` on ``dataset``, ``split`` or the threat's field
    (``threat_fields[j]``, default ``threats[j]``). A language checkpoint's cells read with
    ``context`` (default its training ``context_length``) and ``stride`` (``window_reading``);
    an image classifier's ignore both.
    """
    fields = list(threat_fields) if threat_fields is not None else [f"threats[{j}]" for j in range(len(threats))]
    cells = []
    for info in checkpoints:
        name = dataset or info.meta["dataset"]
        meta = sources.data_meta(name)
        if split not in meta.splits:
            raise FieldError("split", f"dataset '{name}' has no split '{split}': choose one of {', '.join(meta.splits)}")
        if meta.task is not info.task:
            raise FieldError("dataset", f"checkpoint {info.path} is for {info.task.value} but dataset '{name}' is "
                                        f"{meta.task.value}: pick a matching dataset")
        reading = window_reading(info, context, stride) if info.task is Task.LANGUAGE_MODELING else (None, None)
        classes = cache(partial(checkpoint_classes, info, sources, name, split))
        for threat, field in zip(threats, fields, strict=True):
            check_threat_fits(threat, info, field)
            threat = with_model_classes(threat, info, field, classes)
            cells.append(Cell(info.path, info.sha256, name, split, threat, seed, n_examples, *reading))
    return cells


def checkpoint_classes(info: CheckpointInfo, sources: Sources, dataset: str, split: str) -> int:
    """The number of classes ``K`` of a checkpoint's model, its output width: the ``num_classes`` its
    metadata records (every checkpoint of ``bilat-eval train``), else the width of its logits on the
    first example of the split."""
    recorded = info.meta.get("model", {}).get("kwargs", {}).get("num_classes")
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        return recorded
    images, _ = sources.split(dataset, split, 1, info.meta)
    return output_width(sources.load(info.path).model.eval(), images)


def with_model_classes(threat: Threat, info: CheckpointInfo, field: str, classes: Callable[[], int]) -> Threat:
    """``threat`` with its ``n_classes`` (a threat that declares one: the AutoAttacks) set to the model's
    ``classes()`` when left ``None``, so the cell key and rows record it; a given ``n_classes`` that
    differs, or a setting that does not fit the model's classes, is a ``FieldError`` on ``<field>.<name>``."""
    if "n_classes" not in threat.params:
        return threat
    count, given = classes(), threat.params["n_classes"]
    if given is not None and given != count:
        raise FieldError(f"{field}.n_classes", f"is {given} but {info.path} has {count} classes: leave n_classes out "
                                               "(it is the model's output width)")
    with renamed_fields(lambda name: f"{field}.{name}"):
        return threat.filled(n_classes=count)


def window_reading(info: CheckpointInfo, context: int | None, stride: int) -> tuple[int, int]:
    """``(context, stride)`` of a language checkpoint's cells: ``context`` defaults to its training
    ``context_length``; a learned position table shorter than ``context``, or a stride longer than
    it, is a ``FieldError`` on ``context`` / ``stride``."""
    trained = int(info.meta["context_length"])
    length = trained if context is None else context
    attention = AttentionConfig.from_dict(info.meta["model"]["attention"])
    if length > trained and attention.pos_kernel == "learned":
        raise FieldError("context", f"{length} is beyond the learned positions of {info.meta['variant']} (pos_kernel "
                                    f"learned) in {info.path}, which cover {trained} tokens: use a context of {trained} "
                                    f"or less, or a variant with sinusoidal or bilateral positions")
    if stride > length:
        raise FieldError("stride", f"{stride} is longer than the context {length} of {info.path}: give a stride <= {length}")
    return length, stride


def check_threat_fits(threat: Threat, info: CheckpointInfo, field: str) -> None:
    """A ``FieldError`` on ``field`` unless ``threat`` applies to the checkpoint's task (clean applies to all;
    word swaps and embedding attacks to language models only)."""
    language = info.task is Task.LANGUAGE_MODELING
    for_language = threat.family in LANGUAGE_FAMILIES or isinstance(threat, EmbeddingThreat)
    if language != for_language and threat.family is not ThreatFamily.CLEAN:
        kind = "language models" if language else "image classifiers"
        raise FieldError(field, f"does not apply to {kind} ({info.path}): use it with a matching checkpoint")


def run_plan(plan: EvaluationPlan, *, out: Path, device: torch.device | str = "cpu",
             progress: Progress | None = None) -> list[ResultRow]:
    """``run_cells`` of a plan's cells into its run under ``out``."""
    return run_cells(plan.cells, out=out, run=plan.run, device=device, batch_size=plan.batch_size, fresh=plan.fresh,
                     progress=progress, sources=plan.sources)


def run_cells(
    cells: Sequence[Cell],
    *,
    out: Path,
    run: str = DEFAULT_RUN,
    device: torch.device | str = "cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    fresh: bool = False,
    progress: Progress | None = None,
    sources: Sources = FILES,
    steps: Steps | None = None,
    compile_models: bool = False,
) -> list[ResultRow]:
    """Run the cells not yet stored in ``<out>/<run>/results.sqlite``, check and export the run, return the cells' rows.

    Takes checked values (``EvaluationSpec.validate``). The sanity checks across cells
    (``results.sanity``) then run over every stored row of the run, whichever command stored it,
    and their flags are stored on the rows (and shown in the returned ones). Exports (``results.csv``,
    ``results_wide.csv``, ``results.md``, ``results.json``) go next to the store. In a sharded
    run (``engine.distributed``) every rank runs its shard of each cell; only rank 0 opens the
    store, writes and exports, and the other ranks return no rows. Processes sharing one run export
    one at a time under the store's write lock, so the last exports show every stored row. Each
    model is moved to ``device`` when it is loaded. A stored cell that fails verification
    (``ResultStore.discard_inconsistent``) is deleted first, so it is computed again.
    ``progress`` hears of each cell and ``steps`` of each batch within a computed cell (``Engine.run``).
    ``compile_models`` runs each model through ``torch.compile(model, dynamic=True)`` (the shapes of
    shrinking attack batches compile once); its rows record ``compiled: true`` among their versions.
    """

    def load(path: str) -> LoadedCheckpoint:
        loaded = sources.load(path)
        loaded.model.to(device)
        if compile_models:
            loaded.model = cast(nn.Module, torch.compile(loaded.model, dynamic=True))
        return loaded

    with (ResultStore.for_run(out, run) if is_main() else nullcontext()) as store:
        if store is not None and not fresh:
            store.discard_inconsistent()
        engine = Engine(store, device, batch_size, run, compiled=compile_models)
        rows = engine.run(cells, load, sources.split, progress, fresh, steps)
        if store is not None:
            keys = {row.cell_key for row in rows}
            rows = [row for row in store_flags_and_export(store, store.path.parent) if row.cell_key in keys]
    return rows
