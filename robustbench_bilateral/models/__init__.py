"""Models: timm-registered vision transformers and a causal language model, for every variant."""

from robustbench_bilateral.models.lm import BilatCausalLM
from robustbench_bilateral.models.registry import MODEL_NAMES, MODELS, create_model, describe_models, model_spec
from robustbench_bilateral.models.vit import BilatVisionTransformer, load_timm_state_dict

__all__ = [
    "MODELS",
    "MODEL_NAMES",
    "BilatCausalLM",
    "BilatVisionTransformer",
    "create_model",
    "describe_models",
    "load_timm_state_dict",
    "model_spec",
]
