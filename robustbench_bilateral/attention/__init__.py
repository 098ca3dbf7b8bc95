"""Attention variants: softmax, bilateral, and their boosted forms, behind one registry.

Every attention module has timm's parameter layout (``qkv``, ``proj``) and the call
``forward(x (B, T, C), positions (T, P) | None = None, causal: bool = False) -> (B, T, C)``.
"""

from .base import Attention
from .bilateral import BilateralAttention
from .block import Block, build_blocks
from .boost import boost
from .config import (
    POS_KERNELS,
    VARIANT_NAMES,
    AttentionConfig,
    as_config,
    describe_variants,
    parse_variant,
    variant_names,
)
from .positions import PositionPlan, plan_positions
from .registry import build_attention, kernel_class, kernel_names, register_kernel
from .softmax import SoftmaxAttention

__all__ = [
    "POS_KERNELS",
    "VARIANT_NAMES",
    "Attention",
    "AttentionConfig",
    "BilateralAttention",
    "Block",
    "PositionPlan",
    "SoftmaxAttention",
    "as_config",
    "boost",
    "build_attention",
    "build_blocks",
    "describe_variants",
    "kernel_class",
    "kernel_names",
    "parse_variant",
    "plan_positions",
    "register_kernel",
    "variant_names",
]
