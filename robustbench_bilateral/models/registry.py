"""Model names, registered with timm, and the spec that lets a checkpoint rebuild its model.

``create_model(name, variant, **kwargs)`` goes through ``timm.create_model``; every model keeps
``bilat_spec = {"name", "kwargs", "attention"}``, which ``model_spec`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
from timm.models import register_model
from torch import nn

from robustbench_bilateral.attention import AttentionConfig, parse_variant
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.models.lm import BilatCausalLM
from robustbench_bilateral.models.vit import BilatVisionTransformer

TIMM_ONLY_ARGUMENTS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: its class, default keyword arguments and default positions."""

    cls: type[nn.Module]
    defaults: dict
    pos_kernel: str
    summary: str


MODELS: dict[str, ModelEntry] = {
    "bilat_vit_tiny_28": ModelEntry(
        BilatVisionTransformer,
        dict(img_size=28, in_chans=1, patch_size=4, embed_dim=128, depth=4, num_heads=4, mlp_ratio=2.0, num_classes=10),
        "sinusoidal", "ViT for 28 px grey images (Fashion-MNIST): patch 4, dim 128, depth 4, 4 heads"),
    "bilat_vit_tiny_32": ModelEntry(
        BilatVisionTransformer,
        dict(img_size=32, in_chans=3, patch_size=4, embed_dim=192, depth=6, num_heads=3, mlp_ratio=2.0, num_classes=10,
             mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
        "sinusoidal", "ViT for 32 px RGB images (CIFAR-10): patch 4, dim 192, depth 6, 3 heads"),
    "bilat_deit_tiny_224": ModelEntry(
        BilatVisionTransformer,
        dict(img_size=224, in_chans=3, patch_size=16, embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0,
             num_classes=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        "learned", "DeiT-tiny at 224 px: patch 16, dim 192, depth 12, 3 heads (loads timm deit_tiny_patch16_224)"),
    "bilat_deit_small_224": ModelEntry(
        BilatVisionTransformer,
        dict(img_size=224, in_chans=3, patch_size=16, embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0,
             num_classes=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        "learned", "DeiT-small at 224 px: patch 16, dim 384, depth 12, 6 heads (loads timm deit_small_patch16_224)"),
    "bilat_lm": ModelEntry(
        BilatCausalLM,
        dict(vocab_size=10_000, context_length=128, embed_dim=256, depth=4, num_heads=4, mlp_ratio=4.0),
        "sinusoidal", "causal word-level LM: pre-LN decoder, tied embeddings, dim 256, depth 4, 4 heads"),
}
MODEL_NAMES = tuple(MODELS)


def _build(name: str, variant: str | AttentionConfig | dict = "softmax", pretrained: bool = False, **kwargs) -> nn.Module:
    """Build model ``name``: defaults overridden by ``kwargs``; a variant name takes the model's positions."""
    if pretrained:
        raise InputError(f"{name} has no pretrained weights of its own: load a checkpoint or timm:NAME instead")
    entry = MODELS[name]
    if isinstance(variant, str):
        config = parse_variant(variant, pos_kernel=entry.pos_kernel)
    else:
        config = variant if isinstance(variant, AttentionConfig) else AttentionConfig.from_dict(variant)
    unknown = set(kwargs) - set(entry.defaults) - {"mean", "std"}
    if unknown:
        raise InputError(f"{name} has no setting {', '.join(sorted(unknown))}: use {', '.join(entry.defaults)}")
    settings = {**entry.defaults, **kwargs}
    model = entry.cls(attention=config, **settings)
    model.bilat_spec = {
        "name": name,
        "kwargs": {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()},
        "attention": config.to_dict(),
    }
    return model


def _entrypoint(name: str):
    """A timm entry point named ``name`` (timm registers functions by their ``__name__``)."""

    def entrypoint(pretrained: bool = False, **kwargs) -> nn.Module:
        settings = {key: value for key, value in kwargs.items() if key not in TIMM_ONLY_ARGUMENTS}
        return _build(name, pretrained=pretrained, **settings)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    return entrypoint


for _name in MODELS:
    register_model(_entrypoint(_name))


def create_model(name: str, variant: str | AttentionConfig = "softmax", **kwargs) -> nn.Module:
    """``timm.create_model(name, variant=..., **kwargs)`` for a bilat-eval model name."""
    if name not in MODELS:
        raise InputError(f"unknown model '{name}': choose one of {', '.join(MODEL_NAMES)}")
    return timm.create_model(name, variant=variant, **kwargs)


def model_spec(model: nn.Module) -> dict:
    """``{"name", "kwargs", "attention"}``: ``create_model(name, variant=AttentionConfig.from_dict(attention), **kwargs)`` rebuilds it."""
    return model.bilat_spec


def describe_models() -> list[tuple[str, str]]:
    """``(name, summary)`` of each model, for ``bilat-eval list models``."""
    return [(name, entry.summary) for name, entry in MODELS.items()]
