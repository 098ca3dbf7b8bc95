"""The real shapes of the models: every registered model's keyword arguments, and for every training
preset x dataset the model it trains and the ``--model-kwargs`` that load its weights as a plain
state dict (``evaluate --model NAME --model-kwargs ... FILE.pth``).

The ``--model-kwargs`` of a preset are the keyword arguments of the trained model that differ from
the registered model's defaults, so ``create_model(model, **parse_model_kwargs(text))`` rebuilds
the trained architecture. Models are built on the meta device: no memory, no weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from robustbench_bilateral.data import SOURCES, load_source
from robustbench_bilateral.enums import Task
from robustbench_bilateral.models import create_model, model_spec
from robustbench_bilateral.models.lm import LM_NAME
from robustbench_bilateral.preprocessing import Preprocessing
from robustbench_bilateral.training.recipes import PRESETS, Recipe
from robustbench_bilateral.training.tasks import data_preprocessing, image_model_kwargs

DATA_KWARGS = {LM_NAME: {"vocab_size": 2}}
"""Arguments a model needs that only its data gives (a stand-in value here); left out of the listed kwargs."""
YOUR_DATA = {"image": "your images", "language": "your text"}
"""The dataset column of a preset's row for data a user brings (``imagefolder:PATH``, ...)."""


@dataclass(frozen=True)
class PresetShape:
    """What ``bilat-eval train --preset preset --task dataset`` builds.

    ``model_kwargs``: the arguments differing from ``model``'s defaults (for data a user brings,
    those of the preset alone: the data adds ``img_size``, ``in_chans``, ``num_classes``, mean/std;
    a language model adds ``vocab_size``, the size of the vocabulary of its training words);
    ``preprocessing``: the data's (None for text and for data a user brings).
    """

    preset: str
    dataset: str
    model: str
    model_kwargs: dict[str, Any]
    preprocessing: Preprocessing | None


def model_kwargs_text(kwargs: Mapping[str, Any]) -> str:
    """``key=value,...`` without spaces that ``parse_model_kwargs`` reads back to ``kwargs`` (sequences as tuples)."""
    return ",".join(f"{key}={_literal(value)}" for key, value in kwargs.items())


def _literal(value: Any) -> str:
    """A Python literal of ``value``: ``(0.5,)``, ``(0.485,0.456,0.406)``, ``7``, ``True``."""
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(map(_literal, value)) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def built_kwargs(name: str, **kwargs: Any) -> dict[str, Any]:
    """The keyword arguments that rebuild ``create_model(name, **kwargs)`` (defaults filled in), less ``DATA_KWARGS``."""
    stand_in = DATA_KWARGS.get(name, {})
    with torch.device("meta"):
        spec = model_spec(create_model(name, **{**stand_in, **kwargs}))
    return {key: value for key, value in spec["kwargs"].items() if key not in stand_in}


def preset_shapes() -> Iterator[PresetShape]:
    """One ``PresetShape`` per preset x built-in dataset of a kind it has a recipe for, then per preset x kind
    for data a user brings."""
    for preset, entry in PRESETS.items():
        for kind in entry.kinds():
            recipe: Recipe = getattr(entry, kind)
            for name, source_entry in SOURCES.items():
                meta = load_source(name).meta if not source_entry.argument else None
                if meta is not None and (meta.task is Task.LANGUAGE_MODELING) == (kind == "language"):
                    yield _shape(preset, name, recipe, meta)
            yield PresetShape(preset, YOUR_DATA[kind], recipe.model, _changed(recipe.model, recipe.model_kwargs), None)


def _shape(preset: str, dataset: str, recipe: Recipe, meta: Any) -> PresetShape:
    if meta.task is Task.LANGUAGE_MODELING:
        return PresetShape(preset, dataset, recipe.model, _changed(recipe.model, recipe.model_kwargs), None)
    preprocessing = data_preprocessing(meta)
    kwargs = {**image_model_kwargs(meta, preprocessing), **recipe.model_kwargs}
    return PresetShape(preset, dataset, recipe.model, _changed(recipe.model, kwargs), preprocessing)


def _changed(model: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of ``create_model(model, **kwargs)`` that differ from ``create_model(model)``'s."""
    default, trained = built_kwargs(model), built_kwargs(model, **kwargs)
    return {key: value for key, value in trained.items() if default.get(key) != value}
