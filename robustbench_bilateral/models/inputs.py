"""A model's input transform: the ``Preprocessing`` it was built or loaded with, and changing it."""

from __future__ import annotations

import torch
from torch import nn

from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.models.stack import AttentionModel
from robustbench_bilateral.models.timm_models import TimmBaseline
from robustbench_bilateral.models.vit import ViT
from robustbench_bilateral.preprocessing import Preprocessing


def model_preprocessing(model: nn.Module) -> Preprocessing | None:
    """The model's ``preprocessing`` (set by timm-named models and ``set_preprocessing``), else the one
    derived from its kwargs (``Preprocessing.derived``); None for models that take no images or
    were not made by ``create_model``."""
    if not isinstance(model, (AttentionModel, TimmBaseline)):
        return None
    return model.preprocessing or Preprocessing.derived(model.model_kwargs)


def set_preprocessing(model: nn.Module, preprocessing: Preprocessing) -> None:
    """Give an image model ``preprocessing``: its ``mean``/``std`` buffers and kwargs follow it.

    A mean/std with another number of channels than the model's, or an ``input_size`` other than
    the model's ``img_size``, is a ``FieldError`` on that field.
    """
    if not isinstance(model, (ViT, TimmBaseline)):
        raise FieldError("preprocessing", f"{type(model).__name__} takes no images: leave the preprocessing out")
    kwargs = model.model_kwargs
    channels = len(kwargs["mean"])
    for field in ("mean", "std"):
        if len(getattr(preprocessing, field)) != channels:
            raise FieldError(field, f"the model takes {channels}-channel images: give {channels} values")
    if "img_size" in kwargs and preprocessing.input_size != kwargs["img_size"]:
        raise FieldError("input_size", f"the model takes {kwargs['img_size']} px inputs: build it with "
                                       f"img_size={preprocessing.input_size} in its model kwargs instead")
    for field in ("mean", "std"):
        values = getattr(preprocessing, field)
        buffer = getattr(model, field)
        setattr(model, field, torch.tensor(values, dtype=buffer.dtype, device=buffer.device).view(1, -1, 1, 1))
        kwargs[field] = list(values)
    model.preprocessing = preprocessing
