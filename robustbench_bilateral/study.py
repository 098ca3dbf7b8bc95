"""Studies: the ``[train]`` table of a batch spec, a grid of checkpoints to train before the threats run.

::

    [train]
    tasks = ["fmnist"]                                   # one task or a list (`bilat-eval train --task`)
    variants = ["softmax", "bilateral+boost"]            # attention variants
    seeds = [0, 1, 2]                                    # training seeds (default: [the command's --seed])
    preset = "quick"                                     # training preset (default quick)
    epochs = 2                                           # optional: the preset's epochs overridden
    threads = 2                                          # optional: torch's CPU threads while training
    settings = [{}, {depth = 4}]                         # optional: variant settings, one grid axis

Every combination ``tasks x variants x settings x seeds`` is one *training unit* (each setting's
attention fields are checked against every variant before anything trains), trained into
its run folder (``training.folders.run_folder``) under the command's ``--out``: a finished
checkpoint there is reused, an unfinished run resumes, and a changed setting names another
folder, so it trains anew. A ``settings`` table holds attention fields (``pos_kernel``,
``boost_steps``, ``nu_init``, ``layers``) and model sizes (``depth``, ``embed_dim``,
``num_heads``, ``patch_size``, ``pos_dim``), as the flags of ``bilat-eval train`` do.

Shards (``--shard i/N``, ``Shard``): a plain batch keeps the cells whose key falls in shard ``i``
(``shard_of``: SHA-256 of the key, modulo ``N``); a study's shard trains the units whose key falls
in it and runs every cell of their checkpoints, so no two shards train the same checkpoint. A
shard writes to its own run, ``<run>-shard<i>of<N>``; ``report`` merges the runs.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustbench_bilateral.attention import parse_variant
from robustbench_bilateral.engine.distributed import world_size
from robustbench_bilateral.errors import FieldError, InputError
from robustbench_bilateral.numbers import whole_number
from robustbench_bilateral.results.row import canonical_json
from robustbench_bilateral.training import PRESETS
from robustbench_bilateral.training.folders import run_folder
from robustbench_bilateral.training.options import ATTENTION_FIELDS, SIZE_FIELDS, TrainOptions
from robustbench_bilateral.training.trainer import FINAL_NAME

TRAIN_KEYS = ("tasks", "variants", "seeds", "preset", "epochs", "threads", "settings")
DEFAULT_PRESET = "quick"


@dataclass(frozen=True)
class TrainingUnit:
    """One checkpoint a study trains."""

    task: str
    variant: str
    seed: int
    preset: str
    epochs: int | None
    options: TrainOptions
    threads: int | None

    @property
    def key(self) -> str:
        """Canonical JSON of what the checkpoint depends on (what a shard is chosen by)."""
        return canonical_json({"task": self.task, "variant": self.variant, "seed": self.seed, "preset": self.preset,
                               "epochs": self.epochs, "settings": self.options.identity()})

    def folder(self, out: Path) -> Path:
        """The unit's run folder under ``out`` (``training.folders.run_folder``)."""
        return run_folder(out, self.task, self.variant, self.seed, self.preset, self.epochs, self.options)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``; ``Shard(1, 1)`` is the whole run."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/3"`` -> ``Shard(2, 3)``; anything else is a ``FieldError`` on ``shard``."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise FieldError("shard", f"must be I/N with whole numbers, e.g. 2/3, got {text!r}") from None
        if count < 1 or not 1 <= index <= count:
            raise FieldError("shard", f"must be I/N with 1 <= I <= N, got {text!r}")
        return cls(index, count)

    def holds(self, key: str) -> bool:
        """Whether ``key`` falls in this shard: ``shard_of(key, count) == index``."""
        return shard_of(key, self.count) == self.index

    def run_name(self, run: str) -> str:
        """``run`` itself for the whole run, else ``<run>-shard<i>of<N>``."""
        return run if self.count == 1 else f"{run}-shard{self.index}of{self.count}"


def require_one_process(units: Sequence[TrainingUnit], out: Path) -> None:
    """An ``InputError`` when a unit still has to train while several ranks run (under ``torchrun``
    each rank would train it at once): train them in one process first, the ranks then reuse them."""
    waiting = [unit for unit in units if not (unit.folder(out) / FINAL_NAME).exists()]
    if waiting and world_size() > 1:
        plural = "s" if len(waiting) > 1 else ""
        raise InputError(f"this study has {len(waiting)} untrained checkpoint{plural} and {world_size()} ranks run: "
                         "run `bilat-eval batch SPEC` once without torchrun to train them, then torchrun reuses them")


def require_baseline(units: Sequence[TrainingUnit], baseline: str) -> None:
    """An ``InputError`` before anything trains when no unit is of the ``baseline`` variant."""
    names = list(dict.fromkeys(parse_variant(unit.variant).name for unit in units))
    if units and baseline not in names:
        raise InputError(f"baseline variant '{baseline}' is not among the study's variants: add it to train.variants "
                         f"or pass --baseline with one of {', '.join(names)}")


def shard_of(key: str, count: int) -> int:
    """The shard (1 to ``count``) of ``key``: ``int(SHA-256(key)[:16 hex digits]) mod count + 1``."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:16], 16) % count + 1


def training_units(table: Any, *, seed: int = 0) -> list[TrainingUnit]:
    """The units of a ``[train]`` table, in grid order (tasks, variants, settings, seeds), every key
    checked; a bad one is a ``FieldError`` named ``train.<key>``."""
    if not isinstance(table, Mapping):
        raise FieldError("train", f"must be a table ([train] with tasks, variants, seeds, ...), got {table!r}")
    unknown = [key for key in table if key not in TRAIN_KEYS]
    if unknown:
        raise FieldError(f"train.{unknown[0]}", f"unknown key: use {', '.join(TRAIN_KEYS)}")
    tasks = _names(table.get("tasks"), "train.tasks", "tasks (fmnist, shakespeare, or an image source)")
    variants = _names(table.get("variants"), "train.variants", "attention variants (`bilat-eval list variants`)")
    for index, variant in enumerate(variants):
        try:
            parse_variant(variant)
        except (FieldError, InputError) as error:
            raise FieldError(f"train.variants[{index}]", str(error)) from None
    seeds = [whole_number(value, f"train.seeds[{index}]", 0)
             for index, value in enumerate(_listed(table.get("seeds", [seed]), "train.seeds", "seeds"))]
    preset = table.get("preset", DEFAULT_PRESET)
    if not isinstance(preset, str) or preset not in PRESETS:
        raise FieldError("train.preset", f"unknown preset {preset!r}: choose one of {', '.join(PRESETS.names())}")
    epochs = None if table.get("epochs") is None else whole_number(table["epochs"], "train.epochs", 1)
    threads = None if table.get("threads") is None else whole_number(table["threads"], "train.threads", 1)
    settings = [_options(entry, f"train.settings[{index}]")
                for index, entry in enumerate(_listed(table.get("settings", [{}]), "train.settings", "settings tables"))]
    for (index, options), variant in itertools.product(enumerate(settings), variants):
        _check_fits(variant, options, f"train.settings[{index}]")
    return [TrainingUnit(task, variant, one_seed, preset, epochs, options, threads)
            for task, variant, options, one_seed in itertools.product(tasks, variants, settings, seeds)]


def _check_fits(variant: str, options: TrainOptions, name: str) -> None:
    """A ``FieldError`` on ``<name>.<field>`` when an attention setting does not fit ``variant`` (e.g.
    ``boost_steps`` on a variant without boosting); settings that need the model (``layers`` beyond
    its depth) are checked when the unit starts training."""
    if options.attention:
        try:
            parse_variant(variant, **options.attention)
        except FieldError as error:
            raise error.renamed(f"{name}.{error.field}") from None


def _listed(value: Any, name: str, kinds: str) -> Sequence[Any]:
    if not isinstance(value, list) or not value:
        raise FieldError(name, f"must be a non-empty list of {kinds}, got {value!r}")
    return value


def _names(value: Any, name: str, kinds: str) -> list[str]:
    """One non-empty string or a non-empty list of them."""
    values = [value] if isinstance(value, str) else _listed(value, name, kinds)
    for index, item in enumerate(values):
        if not isinstance(item, str) or not item:
            raise FieldError(f"{name}[{index}]" if isinstance(value, list) else name, f"must be a name, got {item!r}")
    return list(dict.fromkeys(values))


def _options(entry: Any, name: str) -> TrainOptions:
    """A ``settings`` table as ``TrainOptions`` (attention fields and model sizes)."""
    if not isinstance(entry, Mapping):
        raise FieldError(name, f"must be a table of variant settings, got {entry!r}")
    allowed = (*ATTENTION_FIELDS, *SIZE_FIELDS)
    unknown = [key for key in entry if key not in allowed]
    if unknown:
        raise FieldError(f"{name}.{unknown[0]}", f"unknown setting: use {', '.join(allowed)}")
    try:
        return TrainOptions(model_kwargs={key: value for key, value in entry.items() if key in SIZE_FIELDS},
                            attention={key: value for key, value in entry.items() if key in ATTENTION_FIELDS})
    except FieldError as error:
        raise error.renamed(f"{name}.{error.field}") from None
