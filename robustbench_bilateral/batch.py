"""Batch specs: a TOML file holding the settings of one evaluation, read into an ``EvaluationSpec``.

A spec, with every key it may hold::

    run = "demo"                 # optional: results go to <out>/<run>/results.sqlite;
                                 #   default: the spec file's stem ("vision" for vision.toml)
    n_examples = 500             # optional: first N examples (images) or words (text), 0 = whole split (default 0)
    batch_size = 256             # optional: examples per forward pass (default 256)
    context = 128                # optional, language models: tokens of left context (default: the checkpoint's own)
    stride = 1                   # optional, language models: 1 = every word from its full context (default 1)
    seed = 0                     # optional: seed of every random draw (default: the command's --seed)
    dataset = "fmnist"           # optional: default is each checkpoint's own dataset; a pre-rendered set
                                 #   (npy:DIR as CIFAR-10-C, imagefolder:DIR as ImageNet-C) is what the
                                 #   corruption tables read, the clean cells read clean_dataset
    clean_dataset = "npy:/data/cifar10"  # optional, with a pre-rendered dataset: the clean set it was rendered
                                         #   from (default: each checkpoint's own dataset)
    split = "test"               # optional (default "test")
    model = "vit_tiny_patch16_224"   # optional: the model plain weights (.pt, timm:NAME) load into
                                     #   (`bilat-eval list models`, or any timm model name)
    model_kwargs = {num_classes = 10, in_chans = 1, img_size = 28, patch_size = 7}
                                     # optional: the model's arguments, a table or "key=value,..." text
    variant = "bilateral"            # optional: the attention plain weights are built with (default softmax)
    mean = [0.2860]                  # optional overrides of the preprocessing: per-channel mean and std
    std = [0.3530]                   #   (lists or "0.5,0.5,0.5"), the fraction of the resized picture the
    crop_pct = 0.875                 #   centre crop keeps, and the resize interpolation
    interpolation = "bicubic"        #   (bilinear, bicubic, nearest)
    checkpoints = ["results/checkpoints/fmnist/quick/*/model.safetensors"]   # paths, globs (relative to the spec) or timm:NAME

    [train]                      # optional: a study, checkpoints to train first (``study``); then
    tasks = "fmnist"             #   checkpoints may be left out: the trained ones are evaluated
    variants = ["softmax", "bilateral+boost"]
    seeds = [0, 1, 2]

    [[threats]]
    name = "pgd"
    eps = ["1/255", "4/255"]     # a list expands: one threat per value (the product over all lists)
    steps = 20

    [[threats]]
    name = "corruption"
    corruption = ["gaussian_noise", "fog"]
    severity = [1, 3, 5]

    [[threats]]
    name = "spsa"
    eps = "4/255"
    n_examples = 100             # optional: this table's own n (a costly attack on fewer examples)

    [[threats]]
    name = "pgd-embedding"       # language models: PGD on the token embeddings, eps relative
    eps = [0.05, 0.1]
    stride = 32                  # optional: this table's own context / stride (an attack on fewer windows)

    [[threats]]
    name = "clean"
    context = [32, 128, 512]     # a table's context may be a list: its threats at each context length

``threats`` is required, and ``checkpoints`` unless a ``[train]`` table gives them; a ``[[threats]]`` table takes ``name``, the
threat's parameters (``bilat-eval list attacks``), ``n_examples``, ``context`` and ``stride``. Every key is checked
before any cell runs (``EvaluationSpec.validate``); an error names the key path
(``batch_size``, ``threats[1].eps``, ``checkpoints[0]``) and the fix. Numbers may be written
as fractions, ``"4/255"``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from robustbench_bilateral.engine.distributed import is_main
from robustbench_bilateral.errors import FieldError, InputError
from robustbench_bilateral.evaluation import EvaluationPlan, plan_evaluation
from robustbench_bilateral.results.store import ResultStore
from robustbench_bilateral.spec import DEFAULT_BATCH_SIZE, DEFAULT_SPLIT, LOAD_FIELDS, EvaluationSpec
from robustbench_bilateral.study import Shard, TrainingUnit, training_units

TOP_LEVEL_KEYS = ("run", "n_examples", "batch_size", "context", "stride", "seed", "dataset", "clean_dataset", "split", *LOAD_FIELDS,
                  "checkpoints", "threats", "train")


def read_table(path: Path) -> dict[str, Any]:
    """The TOML table of the spec file ``path``, its top-level keys checked."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputError(f"spec {path} does not exist: pass the path of a TOML spec (see `bilat-eval batch --help`)") from error
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"spec {path} is not valid TOML ({error}): fix the line it names") from error
    unknown = [key for key in table if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise FieldError(unknown[0], f"unknown key in {path}: use {', '.join(TOP_LEVEL_KEYS)}")
    return table


def read_spec(path: Path, *, seed: int = 0, fresh: bool = False, trained: Sequence[Path] = ()) -> EvaluationSpec:
    """The ``EvaluationSpec`` of the TOML file ``path`` (checked only when planned).

    ``seed`` is used when the file sets none; ``fresh`` comes from the command, not the file.
    Globs in ``checkpoints`` are relative to the file's folder; the ``trained`` checkpoints of a
    study follow them, written relative to that folder too.
    """
    path = Path(path)
    table = read_table(path)
    own = table.get("checkpoints")
    given = [*(own if isinstance(own, list) else []), *(os.path.relpath(checkpoint, path.parent) for checkpoint in trained)]
    return EvaluationSpec(
        checkpoints=given if trained else own,
        threats=table.get("threats"),
        dataset=table.get("dataset"),
        clean_dataset=table.get("clean_dataset"),
        split=table.get("split", DEFAULT_SPLIT),
        n_examples=table.get("n_examples", 0),
        batch_size=table.get("batch_size", DEFAULT_BATCH_SIZE),
        context=table.get("context"),
        stride=table.get("stride", 1),
        seed=table.get("seed", seed),
        run=table.get("run", path.stem),
        fresh=fresh,
        base=path.parent,
        **{key: table.get(key) for key in LOAD_FIELDS},
    )


def plan_batch(path: Path, *, seed: int = 0, fresh: bool = False, trained: Sequence[Path] = (),
               shard: Shard = Shard()) -> EvaluationPlan:
    """Read and check a spec completely, returning its plan (``shard``'s part of it); nothing runs and nothing is written.

    A bad key raises a ``FieldError`` named by its key path, which is the spec's own vocabulary.
    """
    return shard_plan(plan_evaluation(read_spec(path, seed=seed, fresh=fresh, trained=trained)), shard, trained)


def study_units(path: Path, *, seed: int = 0, shard: Shard = Shard()) -> list[TrainingUnit]:
    """The training units of the spec's ``[train]`` table that fall in ``shard`` (none without the
    table), after checking the whole spec but its checkpoints, so a bad threat stops it before training."""
    table = read_table(path)
    if "train" not in table:
        return []
    units = training_units(table["train"], seed=seed)
    read_spec(path, seed=seed).validate(checkpoints_required=False)
    return [unit for unit in units if shard.holds(unit.key)]


def open_empty_shard(path: Path, shard: Shard, out: Path) -> Path:
    """Create the (empty) store of a shard that holds no cell of the spec, so `report` can merge every
    shard's run folder; return the folder."""
    run = shard.run_name(read_table(path).get("run", Path(path).stem))
    if is_main():
        with ResultStore.for_run(out, run):
            pass
    return Path(out) / run


def shard_plan(plan: EvaluationPlan, shard: Shard, trained: Sequence[Path] = ()) -> EvaluationPlan:
    """The part of ``plan`` in ``shard``, in its own run (``Shard.run_name``): every cell of the
    ``trained`` checkpoints (this shard's training units), and of the other cells those whose key
    falls in the shard."""
    if shard.count == 1:
        return plan
    own = {str(Path(checkpoint).resolve()) for checkpoint in trained}
    cells = [cell for cell in plan.cells if str(Path(cell.checkpoint_path).resolve()) in own or shard.holds(cell.key)]
    return replace(plan, cells=cells, run=shard.run_name(plan.run))


def discard_threat_cells(plan: EvaluationPlan, threats: Sequence[str], out: Path) -> int:
    """Delete the stored cells of ``threats`` on the plan's checkpoints, whatever their parameters
    (e.g. after a change to how a corruption is computed, or a new parameter of an attack), so the
    run computes the plan's cells of them again; cells of those threats the plan no longer has (other
    parameters) stay deleted, every other cell is kept. Return how many were deleted. A name that none of the plan's cells has is a one-line error."""
    planned = {cell.threat.name for cell in plan.cells}
    unknown = [name for name in threats if name not in planned]
    if unknown:
        raise FieldError("recompute", f"{', '.join(unknown)} is not a threat of this spec: choose among {', '.join(sorted(planned))}")
    if not is_main() or not (out / plan.run).is_dir():
        return 0
    with ResultStore.for_run(out, plan.run) as store:
        checkpoints = {cell.checkpoint_sha256 for cell in plan.cells}
        stale = [row.cell_key for row in store.rows() if row.threat in threats and row.checkpoint_sha256 in checkpoints]
        return len(store.discard(stale))
