"""Training checkpoints of each variant: recipes, the learning-rate schedule and the resumable loop.

Every training preset is registered in ``PRESETS`` here, with a recipe per task kind. ``smoke``
presets train for seconds (a pipeline check, and the checkpoints of the tests); ``quick`` presets
take about a minute on 2 CPU cores (the demo trains 3 seeds of each variant with them);
``standard`` presets about 8 minutes (larger models, several epochs); ``paper`` is the DeiT recipe (see ``recipes.py``) for 224 px data.
"""

from robustbench_bilateral.training.options import TrainOptions
from robustbench_bilateral.training.recipes import PRESETS, Recipe, TrainingPreset, recipe_for
from robustbench_bilateral.training.trainer import TrainResult, train

_SMOKE_STACK = {"embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}

PRESETS.register("smoke", TrainingPreset(
    "seconds",
    image=Recipe("bilat_vit_tiny_28", {"patch_size": 7, **_SMOKE_STACK}, batch_size=64, lr=3e-3, steps_per_epoch=60),
    language=Recipe("bilat_lm", {"context_length": 32, **_SMOKE_STACK}, batch_size=16, lr=3e-3, weight_decay=0.01,
                    steps_per_epoch=60, vocab_size=2048),
))
PRESETS.register("quick", TrainingPreset(
    "about a minute on 2 CPU cores (the demo's seeds)",
    image=Recipe("bilat_vit_tiny_28", {"patch_size": 7, "embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_ratio": 2.0},
                 epochs=1, batch_size=128, lr=3e-3, warmup_fraction=0.05),
    language=Recipe("bilat_lm", {"context_length": 64, "embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_ratio": 4.0},
                    epochs=1, batch_size=32, lr=3e-3, weight_decay=0.01, steps_per_epoch=200, vocab_size=4096),
))
PRESETS.register("standard", TrainingPreset(
    "about 8 minutes on 2 CPU cores",
    image=Recipe("bilat_vit_tiny_28", {"patch_size": 7, "embed_dim": 128, "depth": 4, "num_heads": 4, "mlp_ratio": 2.0},
                 epochs=4, batch_size=128, lr=2e-3, warmup_fraction=0.05),
    language=Recipe("bilat_lm", {"context_length": 64, "embed_dim": 128, "depth": 2, "num_heads": 4, "mlp_ratio": 4.0},
                    epochs=1, batch_size=32, lr=3e-3, weight_decay=0.01, steps_per_epoch=800, vocab_size=8192),
))
PRESETS.register("paper", TrainingPreset(
    "the DeiT recipe for 224 px data",
    image=Recipe("bilat_deit_small_224", epochs=300, batch_size=1024, lr=5e-4 * 1024 / 512,
                 min_lr=1e-5 * 5e-4 * 1024 / 512, warmup_fraction=5 / 300, label_smoothing=0.1, grad_clip=None,
                 mixup=0.8, cutmix=1.0),
))

__all__ = ["PRESETS", "Recipe", "TrainOptions", "TrainResult", "TrainingPreset", "recipe_for", "train"]
