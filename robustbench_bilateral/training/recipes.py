"""Training recipes: the model, optimiser and schedule settings of each preset (registered in
``training/__init__.py``).

``smoke`` presets train for seconds (a pipeline check, and the checkpoints of the tests);
``quick`` presets about a minute on 2 CPU cores, ``standard`` presets about 8. ``paper`` follows the DeiT recipe (Touvron et
al., 2021) for 224 px data a user provides: AdamW, lr = 5e-4 x batch / 512, weight decay 0.05,
5 warm-up epochs then cosine decay to 1e-5 x lr over 300 epochs, label smoothing 0.1, gradient
clipping off, Mixup 0.8 / CutMix 1.0 (timm's ``Mixup``), DeiT-small at batch 1024.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.registry import Registry


@dataclass(frozen=True)
class Recipe:
    """Everything a training run depends on besides the data and the seed.

    ``vocab_size`` caps a language model's word vocabulary (specials included; None keeps every
    word seen twice in training): the output layer's cost grows with it.

    Learning rate at optimiser step ``s`` of ``S`` with ``W`` warm-up steps:
    ``lr * s / W`` while ``s < W``, then ``min_lr + (lr - min_lr) * (1 + cos(pi * (s - W) / (S - W))) / 2``.
    """

    model: str
    model_kwargs: dict = field(default_factory=dict)
    epochs: int = 1
    batch_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    label_smoothing: float = 0.0
    grad_clip: float | None = 1.0
    mixup: float = 0.0
    cutmix: float = 0.0
    steps_per_epoch: int | None = None
    vocab_size: int | None = None

    def lr_at(self, step: int, total_steps: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based) out of ``total_steps``."""
        warmup = max(1, int(self.warmup_fraction * total_steps))
        if step < warmup:
            return self.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainingPreset:
    """A named preset: its recipe for each task kind, and the line ``bilat-eval train --help`` shows."""

    summary: str
    image: Recipe | None = None
    language: Recipe | None = None

    def kinds(self) -> tuple[str, ...]:
        """The task kinds (``image``, ``language``) this preset has a recipe for."""
        return tuple(kind for kind in ("image", "language") if getattr(self, kind) is not None)


PRESETS: Registry[TrainingPreset] = Registry("training preset", "bilat-eval train --help")


def recipe_for(kind: str, preset: str, epochs: int | None = None) -> Recipe:
    """The preset recipe for ``kind`` ("image" or "language"), with ``epochs`` overridden if given."""
    recipe = getattr(PRESETS.get(preset), kind)
    if recipe is None:
        valid = ", ".join(name for name, entry in PRESETS.items() if kind in entry.kinds())
        raise FieldError("preset", f"no '{preset}' preset for {kind} tasks: choose one of {valid}")
    if epochs is not None:
        if epochs < 1:
            raise FieldError("epochs", f"must be at least 1, got {epochs}")
        recipe = replace(recipe, epochs=epochs)
    return recipe
