"""Attention variants read as image filters: softmax, bilateral, and their boosted forms."""

from robustbench_bilateral.attention import bilateral, softmax  # noqa: F401  (register the kernels)
from robustbench_bilateral.attention.base import Attention, boost
from robustbench_bilateral.attention.config import (
    VARIANT_NAMES,
    AttentionConfig,
    describe_variants,
    parse_variant,
)
from robustbench_bilateral.attention.registry import KERNEL_CLASSES, build_attention, register_kernel

__all__ = [
    "KERNEL_CLASSES",
    "VARIANT_NAMES",
    "Attention",
    "AttentionConfig",
    "boost",
    "build_attention",
    "describe_variants",
    "parse_variant",
    "register_kernel",
]
