"""The training loop: AdamW with warm-up and cosine decay, a checkpoint per epoch, resumable.

A run folder holds ``epoch-NNN.safetensors`` (one per finished epoch), ``resume.safetensors``
(optimiser state after the last finished epoch), ``curve.csv`` (the learning curve) and, once all
epochs are done, ``model.safetensors``. Batches of epoch ``e`` are drawn from a generator seeded
by (seed, e), so a run that is killed and restarted replays exactly the batches it would have seen.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_model

from robustbench_bilateral.atomic import write_atomic
from robustbench_bilateral.attention import parse_variant
from robustbench_bilateral.checkpoint import read_metadata, save_checkpoint
from robustbench_bilateral.data import DataSource, load_source
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.models import model_spec
from robustbench_bilateral.results.row import canonical_json
from robustbench_bilateral.training.environment import reproducible, training_environment
from robustbench_bilateral.training.options import TrainOptions
from robustbench_bilateral.training.recipes import Recipe, recipe_for
from robustbench_bilateral.training.resume import load_resume_state, save_resume_state
from robustbench_bilateral.training.starting import starting_model
from robustbench_bilateral.training.tasks import build_task, task_kind

FINAL_NAME = "model.safetensors"
RESUME_NAME = "resume.safetensors"
CURVE_NAME = "curve.csv"
RUN_KEY = ("dataset", "variant", "recipe", "seed", "overrides")


@dataclass(frozen=True)
class TrainResult:
    """Where a run's final checkpoint is, its final metrics, and how it started."""

    checkpoint: Path
    metrics: dict
    resumed_after_epoch: int
    reused: bool


def epoch_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / f"epoch-{epoch:03d}.safetensors"


def train(
    dataset: str,
    variant: str,
    preset: str,
    run_dir: Path,
    *,
    epochs: int | None = None,
    seed: int = 0,
    device: torch.device = torch.device("cpu"),
    fresh: bool = False,
    on_event: Callable[[dict], None] = lambda event: None,
    init: str | None = None,
    model: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    attention: Mapping[str, Any] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train (or resume, or reuse) one checkpoint of ``variant`` on ``dataset`` with training preset ``preset``.

    ``init``, ``model``, ``model_kwargs``, ``attention`` and ``preprocessing`` change the preset
    (``TrainOptions``): fine-tune from init weights, another model, model keyword arguments
    (``depth``, ``embed_dim``, ``num_heads``, ``patch_size``, ``pos_dim``, ...), attention fields
    (``pos_kernel``, ``boost_steps``, ``nu_init``, ``layers``), preprocessing fields (``mean``,
    ``std``, ``crop_pct``, ``interpolation``). They are recorded in the checkpoint under
    ``"overrides"`` (the init also under ``"init"``: source and SHA-256), and a run folder holding a
    run with other settings is never reused.

    ``threads`` fixes torch's intra-op thread count while training (``None``: torch's default, one
    per core); training runs with deterministic algorithms only, and the thread count, CPU model
    and instruction set are recorded under ``"environment"`` (``training.environment``): with the
    same settings, library versions and these, two runs give identical checkpoint bytes.

    A bad ``variant``, ``epochs`` or setting (or a preset without a recipe for the task) raises a
    ``FieldError`` naming that argument or field; an unknown ``dataset`` or ``preset`` an
    ``InputError`` listing the valid names.

    ``on_event`` receives ``{"event": "note", "text"}`` for each line on what loading the init
    added, initialised or dropped, ``{"event": "start", "epochs", "steps_per_epoch", "start_epoch"}``,
    then ``{"event": "step", "epoch", "step", "loss", "items_per_s", "lr"}`` per optimiser step and
    ``{"event": "epoch", "epoch", "metrics"}`` per finished epoch.
    """
    options = TrainOptions(init, model, model_kwargs or {}, attention or {}, preprocessing or {})
    source = load_source(dataset)
    recipe = options.apply(recipe_for(task_kind(source), preset, epochs))
    overrides = options.identity()
    key = _run_key(dict(dataset=dataset, variant=parse_variant(variant).name, recipe=recipe.to_dict(), seed=seed,
                        overrides=overrides or None))
    run_dir = Path(run_dir)
    final = run_dir / FINAL_NAME
    if fresh:
        for path in [*run_dir.glob("epoch-*.safetensors"), final, run_dir / RESUME_NAME, run_dir / CURVE_NAME]:
            path.unlink(missing_ok=True)
    if final.exists():
        return _reuse(final, key)

    with reproducible(threads):
        return _train_run(dataset, source, variant, recipe, options, key, run_dir, seed=seed, device=device,
                          on_event=on_event)


def _train_run(dataset: str, source: DataSource, variant: str, recipe: Recipe, options: TrainOptions, key: dict[str, Any], run_dir: Path, *,
               seed: int, device: torch.device, on_event: Callable[[dict], None]) -> TrainResult:
    """The body of ``train`` once the run is known to need training: build, resume, loop over epochs."""
    final = run_dir / FINAL_NAME
    overrides = options.identity()
    task = build_task(source, recipe, options.preprocessing)
    torch.manual_seed(seed)
    start = starting_model(recipe, task, variant, options)
    for note in start.notes:
        on_event({"event": "note", "text": note})
    net = start.model.to(device)
    recorded = {**({"overrides": overrides} if overrides else {}), **({"init": start.init} if start.init else {}),
                "environment": training_environment(device), **task.checkpoint_fields(model_spec(net)["kwargs"])}
    optimizer = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    start_epoch, step, curve = _resume(run_dir, net, optimizer, key)
    steps_per_epoch = task.steps_per_epoch()
    total_steps = recipe.epochs * steps_per_epoch
    on_event({"event": "start", "epochs": recipe.epochs, "steps_per_epoch": steps_per_epoch, "start_epoch": start_epoch})
    metrics: dict = {}
    for epoch in range(start_epoch + 1, recipe.epochs + 1):
        net.train()
        started = time.perf_counter()
        losses = []
        for host_batch in task.batches(seed, epoch):
            batch = tuple(part.to(device) for part in host_batch)
            lr = recipe.lr_at(step, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            tick = time.perf_counter()
            loss = task.loss(net, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
            optimizer.step()
            step += 1
            losses.append(loss.detach().item())
            items = batch[0].numel() if task.kind == "language" else len(batch[0])
            on_event({"event": "step", "epoch": epoch, "step": step, "loss": losses[-1],
                      "items_per_s": items / (time.perf_counter() - tick), "lr": lr})
        net.eval()
        metrics = task.evaluate(net, device)
        save_checkpoint(
            epoch_path(run_dir, epoch), net, dataset=dataset, recipe=recipe.to_dict(), seed=seed,
            metrics=metrics, epoch=epoch, **recorded,
        )
        save_resume_state(run_dir / RESUME_NAME, optimizer, epoch, step)
        curve.append({"epoch": epoch, "step": step, "lr": lr, "train_loss": sum(losses) / len(losses),
                      **metrics, "epoch_seconds": round(time.perf_counter() - started, 3)})
        write_atomic(run_dir / CURVE_NAME, pd.DataFrame(curve).to_csv(index=False))
        on_event({"event": "epoch", "epoch": epoch, "metrics": metrics})
    last = epoch_path(run_dir, recipe.epochs)
    partial = final.with_name(final.name + ".tmp")
    shutil.copyfile(last, partial)
    partial.replace(final)
    return TrainResult(final, read_metadata(final)["metrics"], start_epoch, reused=False)


def _run_key(values: Mapping[str, Any]) -> dict[str, Any]:
    """What tells runs apart (``RUN_KEY`` of a checkpoint's metadata) as JSON reads it back."""
    return json.loads(canonical_json({name: values.get(name) for name in RUN_KEY}))


def _same_run(meta: dict, key: dict[str, Any]) -> bool:
    return _run_key(meta) == key


def _reuse(final: Path, key: dict[str, Any]) -> TrainResult:
    meta = read_metadata(final)
    if not _same_run(meta, key):
        raise InputError(f"{final.parent} holds a finished run with other settings: choose another --out or add --fresh")
    return TrainResult(final, meta["metrics"], int(meta["epoch"]), reused=True)


def _resume(run_dir: Path, model, optimizer, key: dict[str, Any]):
    """Load the last finished epoch's weights and optimiser state; returns (epoch, step, curve rows)."""
    resume = run_dir / RESUME_NAME
    if not resume.exists():
        return 0, 0, []
    epoch, step = load_resume_state(resume, optimizer)
    checkpoint = epoch_path(run_dir, epoch)
    if not _same_run(read_metadata(checkpoint), key):
        raise InputError(f"{run_dir} holds an unfinished run with other settings: choose another --out or add --fresh")
    load_model(model, str(checkpoint), strict=True)
    curve_path = run_dir / CURVE_NAME
    curve = pd.read_csv(curve_path).query("epoch <= @epoch").to_dict("records") if curve_path.exists() else []
    return epoch, step, curve
