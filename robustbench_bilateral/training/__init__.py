"""Training checkpoints of each variant: recipes, the learning-rate schedule and the resumable loop."""

from robustbench_bilateral.training.recipes import PRESETS, Recipe, recipe_for
from robustbench_bilateral.training.trainer import TrainResult, train

__all__ = ["PRESETS", "Recipe", "TrainResult", "recipe_for", "train"]
