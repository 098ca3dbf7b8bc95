"""Model zoo: vision transformers and a causal language model for every attention variant.

Every model is registered in ``MODELS`` here (the ViT presets also as timm models); a name timm
knows (``vit_tiny_patch16_224``, ``deit_small_patch16_224``, ``resnet18``) builds through
``timm_models``. ``create_model(name, variant, **kwargs)`` builds one; ``model_spec(model)`` returns
what rebuilds it: ``create_model(spec["name"], variant=AttentionConfig.from_dict(spec["attention"]), **spec["kwargs"])``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from timm.models import register_model
from torch import nn

from ..attention import AttentionConfig
from ..normalization import IMAGENET_MEAN, IMAGENET_STD
from ..registry import Registry
from .inputs import model_preprocessing, set_preprocessing
from .kwargs import parse_model_kwargs
from .lm import LM_NAME, CausalLM, create_lm
from .stack import AttentionModel
from .timm_models import TimmBaseline, build_timm_model, is_timm_name
from .transfer import transfer_weights
from .vit import ViT, ViTPreset


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: ``build(variant, **kwargs)`` makes it; ``summary`` is its line in ``bilat-eval list models``."""

    build: Callable[..., nn.Module]
    summary: str


MODELS: Registry[ModelEntry] = Registry("model", "bilat-eval list models")


def register_vit(preset: ViTPreset) -> None:
    """Register a ViT preset under its name, in ``MODELS`` and as a timm model."""
    MODELS.register(preset.name, ModelEntry(preset.build, preset.summary))
    register_model(preset.timm_entrypoint())


register_vit(ViTPreset(
    "bilat_vit_tiny_28",
    dict(img_size=28, in_chans=1, patch_size=4, embed_dim=128, depth=4, num_heads=4, mlp_ratio=2.0,
         num_classes=10, mean=(0.2860,), std=(0.3530,)),
    "sinusoidal", "28 px grey images (Fashion-MNIST): patch 4, dim 128, depth 4, 4 heads, mlp 2, 10 classes",
))
register_vit(ViTPreset(
    "bilat_vit_tiny_32",
    dict(img_size=32, in_chans=3, patch_size=4, embed_dim=192, depth=6, num_heads=3, mlp_ratio=4.0,
         num_classes=10, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    "sinusoidal", "32 px RGB images (CIFAR-10): patch 4, dim 192, depth 6, 3 heads, mlp 4, 10 classes",
))
register_vit(ViTPreset(
    "bilat_deit_tiny_224",
    dict(img_size=224, in_chans=3, patch_size=16, embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0,
         num_classes=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD),
    "learned", "DeiT-Tiny at 224 px: patch 16, dim 192, depth 12, 3 heads, learned positions (loads deit_tiny_patch16_224)",
))
register_vit(ViTPreset(
    "bilat_deit_small_224",
    dict(img_size=224, in_chans=3, patch_size=16, embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0,
         num_classes=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD),
    "learned", "DeiT-Small at 224 px: patch 16, dim 384, depth 12, 6 heads, learned positions (loads deit_small_patch16_224)",
))
MODELS.register(LM_NAME, ModelEntry(
    create_lm, "causal word-level LM: pre-LN decoder, tied embeddings, context 128, dim 256, depth 4, 4 heads"))


def model_entry(name: str) -> ModelEntry:
    """The entry of ``name``: registered in ``MODELS``, else a name timm knows (``timm_models``).

    A name neither knows is an ``InputError`` listing the registered models.
    """
    if name not in MODELS and is_timm_name(name):
        return ModelEntry(partial(build_timm_model, name), f"timm's {name}")
    return MODELS.get(name)


def create_model(name: str, variant: str | AttentionConfig = "softmax", **kwargs: Any) -> nn.Module:
    """Model ``name`` (see ``model_entry``) with attention ``variant`` (a name or a config).

    An unknown name raises ``InputError`` listing the models; kwargs override the model's defaults.
    """
    return model_entry(name).build(variant, **kwargs)


def model_spec(model: nn.Module) -> dict[str, Any]:
    """JSON-safe ``{"name", "kwargs", "attention"}`` of a model made by ``create_model``."""
    # Any other module lacks these attributes and raises AttributeError, which callers rely on.
    zoo_model = cast(AttentionModel, model)
    return {
        "name": zoo_model.model_name,
        "kwargs": dict(zoo_model.model_kwargs),
        "attention": zoo_model.attention_config.to_dict(),
    }


__all__ = [
    "MODELS",
    "CausalLM",
    "ModelEntry",
    "TimmBaseline",
    "ViT",
    "ViTPreset",
    "create_model",
    "is_timm_name",
    "model_entry",
    "model_preprocessing",
    "model_spec",
    "parse_model_kwargs",
    "set_preprocessing",
    "transfer_weights",
]
