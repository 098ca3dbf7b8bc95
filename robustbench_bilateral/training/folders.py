"""Where a training run lives: one folder per task, preset, variant, seed and settings.

``<out>/checkpoints/<task>/<preset>/<variant>-seed<seed><suffix>``: ``task`` with ``:`` and
``/`` written ``_``, ``preset`` followed by ``-epochs<E>`` when the epochs are overridden, the
variant with ``+`` written ``-``, and ``suffix`` the run's settings (``TrainOptions.suffix``:
empty for a plain run, else ``-`` and 8 hex digits). Runs that differ in any of these never share
a folder, so a changed setting trains anew and an unchanged one finds its finished checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from robustbench_bilateral.attention import parse_variant
from robustbench_bilateral.training.options import TrainOptions


def run_folder(out: Path, task: str, variant: str, seed: int, preset: str, epochs: int | None,
               options: TrainOptions) -> Path:
    """The run folder of these settings (see the module docstring)."""
    safe_task = task.replace(":", "_").replace("/", "_")
    recipe = preset if epochs is None else f"{preset}-epochs{epochs}"
    name = f"{parse_variant(variant).name.replace('+', '-')}-seed{seed}{options.suffix()}"
    return Path(out) / "checkpoints" / safe_task / recipe / name
