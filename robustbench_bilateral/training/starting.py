"""The model a training run starts from: built fresh from its recipe, or loaded from init weights.

Init weights load through ``checkpoint.load_checkpoint`` into the architecture with the variant
being trained: a plain state dict into the run's model (``--model``, default the preset's) built
for the task's data; ``timm:NAME`` into timm's architecture; a bilat-eval checkpoint into its
own model. When the init's class count differs from the task's, the head ``Linear(C, classes)``
is replaced by a freshly initialised one, and a note says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustbench_bilateral.attention import AttentionConfig, kernel_class, parse_variant
from robustbench_bilateral.checkpoint import load_checkpoint, read_metadata
from robustbench_bilateral.errors import BilatError, FieldError
from robustbench_bilateral.models import ViT, create_model, model_spec
from robustbench_bilateral.training.options import SIZE_FIELDS, TIMM_PREFIX, TrainOptions
from robustbench_bilateral.training.recipes import Recipe
from robustbench_bilateral.training.tasks import ImageTask, LanguageTask


@dataclass(frozen=True)
class StartingModel:
    """The model to train; ``notes``: one line each on what loading the init added, initialised or
    dropped; ``init``: ``{"source", "sha256"}`` of the init weights (None without them)."""

    model: nn.Module
    notes: tuple[str, ...] = ()
    init: dict[str, str] | None = None


def starting_model(recipe: Recipe, task: ImageTask | LanguageTask, variant: str, options: TrainOptions) -> StartingModel:
    """The run's model with attention ``variant`` and ``options.attention``, from ``options.init`` if given.

    Settings that do not fit the model are a ``FieldError`` naming the setting.
    """
    kwargs = {**task.model_kwargs(), **recipe.model_kwargs}
    if options.init is None:
        attention = _attention(variant, recipe.model, kwargs, options)
        model = _built(lambda: create_model(recipe.model, variant=attention, **kwargs))
        return StartingModel(model)
    if task.kind != "image":
        raise FieldError("init", "starts image models only: leave it out for text tasks")
    init = str(options.init)
    if init.startswith(TIMM_PREFIX):
        name, load_kwargs = options.model, dict(options.model_kwargs)
    elif _is_bilat_checkpoint(init) and options.model is None:
        if options.model_kwargs or options.attention:
            raise FieldError("init", f"{init} is a bilat-eval checkpoint and rebuilds its own model: leave out the "
                                     "model and attention settings, or start from its weights saved as a .pth")
        name, load_kwargs = None, {}
    else:
        name, load_kwargs = recipe.model, kwargs
    attention = _attention(variant, name or init.removeprefix(TIMM_PREFIX), load_kwargs, options)
    loaded = load_checkpoint(init, name, variant=attention, model_kwargs=load_kwargs,
                             preprocessing=dict(options.preprocessing) or None)
    model = loaded.model.train()
    head = _fit_head(model, len(task.source.meta.classes))
    _check_inputs(model, task)
    return StartingModel(model, loaded.notes + head, {"source": init, "sha256": loaded.sha256})


def _attention(variant: str, model_name: str, kwargs: dict[str, Any], options: TrainOptions) -> str | AttentionConfig:
    """``variant`` itself without attention settings, else its config with them over the fields the
    model gives that variant by default (its position kernel, nu)."""
    if not options.attention and "pos_dim" not in kwargs:
        return variant
    kernel = parse_variant(variant).kernel
    consumes = kernel_class(kernel).consumes_positions
    if "pos_dim" in kwargs and not consumes:
        raise FieldError("pos_dim", f"applies only to kernels that take positions in every layer, not {kernel!r}")
    if options.attention.get("pos_kernel") == "coords" and not consumes:
        raise FieldError("pos_kernel", f"coords positions cannot be added to the tokens of a {kernel!r} model: "
                                       "choose sinusoidal or learned")
    if not options.attention:
        return variant
    with torch.device("meta"):
        spec = model_spec(_built(lambda: create_model(model_name, variant=variant, **kwargs)))
    depth, layers = spec["kwargs"].get("depth"), options.attention.get("layers", ())
    if depth is not None and layers and max(layers) >= depth:
        raise FieldError("layers", f"block {max(layers)} does not exist: the model has blocks 0..{depth - 1}")
    default = AttentionConfig.from_dict(spec["attention"])
    return parse_variant(variant, **{"pos_kernel": default.pos_kernel, "nu_init": default.nu_init, **options.attention})


def _built(build: Any) -> nn.Module:
    """``build()``, with a model that cannot be built with these settings as a ``FieldError`` on the
    setting its message names (``num_heads``, ``patch_size``, ...), else on ``model_kwargs``."""
    try:
        return build()
    except FieldError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, AssertionError) as error:
        field = next((name for name in (*SIZE_FIELDS, "layers") if name in str(error)), "model_kwargs")
        raise FieldError(field, f"the model cannot be built with these settings ({error}): "
                                "see `bilat-eval list models`") from error


def _fit_head(model: nn.Module, classes: int) -> tuple[str, ...]:
    """Replace a ViT's head when the init was trained for another class count; the note saying so."""
    had = getattr(model, "model_kwargs", {}).get("num_classes", classes)
    if had == classes:
        return ()
    if not isinstance(model, ViT):
        raise FieldError("init", f"the init has {had} classes and the task {classes}: start from a ViT, whose head "
                                 "can be replaced, or from weights for this task")
    width = model.head.in_features
    model.head = nn.Linear(width, classes)
    model.model_kwargs["num_classes"] = classes
    return (f"replaced head ({had} classes) by a new Linear({width}, {classes}) for the task's classes",)


def _check_inputs(model: nn.Module, task: ImageTask | LanguageTask) -> None:
    """The init model must take the task's image size and channel count."""
    meta = task.source.meta
    kwargs = getattr(model, "model_kwargs", {})
    takes = (kwargs.get("img_size", meta.image_size), kwargs.get("in_chans", meta.channels))
    if takes != (meta.image_size, meta.channels):
        raise FieldError("init", f"the init model takes {takes[0]} px images with {takes[1]} channel(s), the task has "
                                 f"{meta.image_size} px with {meta.channels}: add --model-kwargs "
                                 f"img_size={meta.image_size},in_chans={meta.channels} if its weights allow it")


def _is_bilat_checkpoint(init: str) -> bool:
    """Whether ``init`` is a ``.safetensors`` file with bilat-eval metadata."""
    if Path(init).suffix != ".safetensors" or not Path(init).is_file():
        return False
    try:
        read_metadata(Path(init))
    except BilatError:
        return False
    return True
