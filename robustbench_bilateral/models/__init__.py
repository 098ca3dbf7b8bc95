"""Model zoo: vision transformers and a causal language model for every attention variant.

``create_model(name, variant, **kwargs)`` builds a model; ``model_spec(model)`` returns what
rebuilds it: ``create_model(spec["name"], variant=AttentionConfig.from_dict(spec["attention"]),
**spec["kwargs"])``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..attention import AttentionConfig
from ..errors import InputError
from .lm import LM_NAME, LM_SUMMARY, CausalLM, create_lm
from .vit import PRESETS, ViT, create_vit, load_timm_state_dict

MODEL_NAMES: tuple[str, ...] = (*PRESETS, LM_NAME)


def create_model(name: str, variant: str | AttentionConfig = "softmax", **kwargs: Any) -> nn.Module:
    """Model ``name`` (one of ``MODEL_NAMES``) with attention ``variant`` (a name or a config).

    An unknown name raises ``InputError``; kwargs override the model's defaults.
    """
    if name == LM_NAME:
        return create_lm(variant, **kwargs)
    if name in PRESETS:
        return create_vit(name, variant, **kwargs)
    raise InputError(f"unknown model '{name}': choose one of {', '.join(MODEL_NAMES)}")


def model_spec(model: nn.Module) -> dict[str, Any]:
    """JSON-safe ``{"name", "kwargs", "attention"}`` of a model made by ``create_model``."""
    return {
        "name": model.model_name,
        "kwargs": dict(model.model_kwargs),
        "attention": model.attention_config.to_dict(),
    }


def describe_models() -> list[tuple[str, str]]:
    """(name, one-line summary) of every model, for ``bilat-eval list models``."""
    return [(name, preset.summary) for name, preset in PRESETS.items()] + [(LM_NAME, LM_SUMMARY)]


__all__ = [
    "MODEL_NAMES",
    "CausalLM",
    "ViT",
    "create_model",
    "describe_models",
    "load_timm_state_dict",
    "model_spec",
]
