"""Training recipes: the model, optimiser and schedule settings of each preset.

``smoke`` presets train for seconds (a pipeline check, and the checkpoints of the tests);
``quick`` presets fit a few minutes on 2 CPU cores. ``paper`` follows the DeiT recipe (Touvron et
al., 2021) for 224 px data a user provides: AdamW, lr = 5e-4 x batch / 512, weight decay 0.05,
5 warm-up epochs then cosine decay to 1e-5 x lr over 300 epochs, label smoothing 0.1, gradient
clipping off, Mixup 0.8 / CutMix 1.0 (timm's ``Mixup``), DeiT-small at batch 1024.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from robustbench_bilateral.errors import InputError


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


PRESETS: dict[tuple[str, str], Recipe] = {
    ("image", "smoke"): Recipe(
        model="bilat_vit_tiny_28",
        model_kwargs={"patch_size": 7, "embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0},
        batch_size=64,
        lr=3e-3,
        steps_per_epoch=60,
    ),
    ("image", "quick"): Recipe(
        model="bilat_vit_tiny_28",
        model_kwargs={"patch_size": 7, "embed_dim": 128, "depth": 4, "num_heads": 4, "mlp_ratio": 2.0},
        epochs=4,
        batch_size=128,
        lr=2e-3,
        warmup_fraction=0.05,
    ),
    ("image", "paper"): Recipe(
        model="bilat_deit_small_224",
        epochs=300,
        batch_size=1024,
        lr=5e-4 * 1024 / 512,
        min_lr=1e-5 * 5e-4 * 1024 / 512,
        warmup_fraction=5 / 300,
        label_smoothing=0.1,
        grad_clip=None,
        mixup=0.8,
        cutmix=1.0,
    ),
    ("language", "quick"): Recipe(
        model="bilat_lm",
        model_kwargs={"context_length": 64, "embed_dim": 128, "depth": 2, "num_heads": 4, "mlp_ratio": 4.0},
        epochs=1,
        batch_size=32,
        lr=3e-3,
        weight_decay=0.01,
        steps_per_epoch=800,
        vocab_size=8192,
    ),
    ("language", "smoke"): Recipe(
        model="bilat_lm",
        model_kwargs={"context_length": 32, "embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0},
        batch_size=16,
        lr=3e-3,
        weight_decay=0.01,
        steps_per_epoch=60,
    ),
}
PRESET_NAMES: tuple[str, ...] = tuple(dict.fromkeys(preset for _, preset in PRESETS))


def recipe_for(kind: str, preset: str, epochs: int | None = None) -> Recipe:
    """The preset recipe for ``kind`` ("image" or "language"), with ``epochs`` overridden if given."""
    if (kind, preset) not in PRESETS:
        valid = ", ".join(p for k, p in PRESETS if k == kind)
        raise InputError(f"no '{preset}' preset for {kind} tasks: choose one of {valid}")
    recipe = PRESETS[(kind, preset)]
    if epochs is not None:
        if epochs < 1:
            raise InputError(f"--epochs must be at least 1, got {epochs}")
        recipe = replace(recipe, epochs=epochs)
    return recipe
