"""What a training run changes from its preset: the model, its size, the attention settings, the
preprocessing and the weights it starts from.

Every change is recorded in the checkpoint (``"overrides"``) and makes a different run: the
default run folder of a run with changes ends in ``-<8 hex digits>``, the start of the SHA-256 of
the changes as canonical JSON (a local init file enters with its own SHA-256, so a changed file
is a new run), and a folder holding a run with other changes is never reused. A run without
changes keeps the preset's folder ``<task>/<variant>-seed<seed>``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from robustbench_bilateral.attention import POS_KERNELS
from robustbench_bilateral.checkpoint import file_sha256
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.numbers import whole_number
from robustbench_bilateral.results.row import canonical_json
from robustbench_bilateral.training.recipes import Recipe

ATTENTION_FIELDS = ("pos_kernel", "boost_steps", "nu_init", "layers")
"""Fields of ``AttentionConfig`` a run may set besides the kernel (which comes from the variant)."""
SIZE_FIELDS = ("depth", "embed_dim", "num_heads", "patch_size", "pos_dim")
"""Model keyword arguments that are counts: each must be a whole number >= 1."""
TIMM_PREFIX = "timm:"


@dataclass(frozen=True)
class TrainOptions:
    """A run's changes to its preset; empty fields keep the preset's choice.

    init:          weights to start from: a bilat-eval checkpoint, a plain ``.pt/.pth/.bin/.safetensors``
                   state dict (of ``model``, default the preset's model) or ``timm:NAME``.
    model:         registered model (or timm ViT name) to train instead of the preset's; the
                   preset's model keyword arguments apply only to the preset's own model.
    model_kwargs:  model keyword arguments over the preset's (``depth``, ``embed_dim``,
                   ``num_heads``, ``patch_size``, ``pos_dim``, ...).
    attention:     ``AttentionConfig`` fields over the variant's (``ATTENTION_FIELDS``).
    preprocessing: ``Preprocessing`` fields over the data's (``mean``, ``std``, ``crop_pct``,
                   ``interpolation``).

    Values that are None count as not given. A bad value raises ``FieldError`` naming its field.
    """

    init: str | None = None
    model: str | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    attention: Mapping[str, Any] = field(default_factory=dict)
    preprocessing: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("model_kwargs", "attention", "preprocessing"):
            object.__setattr__(self, name, {k: v for k, v in getattr(self, name).items() if v is not None})
        for key in self.model_kwargs:
            if key in SIZE_FIELDS:
                whole_number(self.model_kwargs[key], key, 1)
        _check_attention(self.attention)
        if self.init is not None and not str(self.init).strip():
            raise FieldError("init", "is empty: give a checkpoint, a .pth state dict or timm:NAME")

    def changes(self) -> dict[str, Any]:
        """The given fields as JSON-safe values, e.g. ``{"attention": {"nu_init": 0.5}}``."""
        values = {"init": self.init and str(self.init), "model": self.model, "model_kwargs": self.model_kwargs,
                  "attention": self.attention, "preprocessing": self.preprocessing}
        return json.loads(canonical_json({key: value for key, value in values.items() if value}))

    def identity(self) -> dict[str, Any]:
        """``changes()`` with a local init file's SHA-256 added: what tells two runs apart."""
        changes = self.changes()
        if self.init is not None and not str(self.init).startswith(TIMM_PREFIX) and Path(self.init).is_file():
            changes["init_sha256"] = file_sha256(Path(self.init))
        return changes

    def suffix(self) -> str:
        """``""`` for a plain run, else ``-`` and the first 8 hex digits of SHA-256(canonical JSON of ``identity()``)."""
        identity = self.identity()
        return "-" + hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:8] if identity else ""

    def apply(self, recipe: Recipe) -> Recipe:
        """``recipe`` with this run's model and model keyword arguments (unchanged for a plain run)."""
        if self.model is None and not self.model_kwargs:
            return recipe
        model = self.model or recipe.model
        base = recipe.model_kwargs if model == recipe.model else {}
        return replace(recipe, model=model, model_kwargs={**base, **self.model_kwargs})


def _check_attention(attention: Mapping[str, Any]) -> None:
    """Each attention field's type and range (the kernel's own rules are checked when the model is built)."""
    unknown = sorted(set(attention) - set(ATTENTION_FIELDS))
    if unknown:
        raise FieldError("attention", f"unknown field {unknown[0]!r}: choose from {', '.join(ATTENTION_FIELDS)}")
    if attention.get("pos_kernel", POS_KERNELS[0]) not in POS_KERNELS:
        raise FieldError("pos_kernel", f"unknown position kernel {attention['pos_kernel']!r}: choose one of {', '.join(POS_KERNELS)}")
    steps = attention.get("boost_steps", 0)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise FieldError("boost_steps", f"must be a whole number >= 0, got {steps!r}")
    nu = attention.get("nu_init", 1.0)
    if isinstance(nu, bool) or not isinstance(nu, (int, float)) or not math.isfinite(nu):
        raise FieldError("nu_init", f"must be a finite number, got {nu!r}")
    layers = attention.get("layers", [0])
    if not isinstance(layers, (list, tuple)) or not layers or any(
            isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in layers):
        raise FieldError("layers", f"must be block indices >= 0 such as 0,2, got {layers!r}")

