"""Attention variants: softmax, bilateral, and their boosted forms, behind one registry.

Every attention module has timm's parameter layout (``qkv``, ``proj``) and the call
``forward(x (B, T, C), positions (T, P) | None = None, causal: bool = False) -> (B, T, C)``.

The built-in kernels are registered here by ``"module:Class"`` with their formula, so naming and
listing variants imports no torch; the torch modules (``Attention``, ``Block``, ...) load on first
access. Users add kernels with ``@register_kernel(name)`` on an ``Attention`` subclass.
"""

from importlib import import_module
from typing import Any

from .config import POS_KERNELS, AttentionConfig
from .registry import KERNELS, KernelEntry, build_attention, kernel_class, register_kernel
from .variants import as_config, describe_variants, parse_variant, variant_names

KERNELS.register("softmax", KernelEntry(
    "robustbench_bilateral.attention.softmax:SoftmaxAttention",
    "A = softmax(q_i . k_j / sqrt(d)), positions added to the tokens at the input",
    builtin=True,
))
KERNELS.register("bilateral", KernelEntry(
    "robustbench_bilateral.attention.bilateral:BilateralAttention",
    "A = softmax(-|q_i - k_j|^2 / h_y^2 - |p_i - p_j|^2 / h_p^2), positions enter every layer",
    builtin=True,
))

_LAZY = {
    "Attention": "base",
    "BilateralAttention": "bilateral",
    "Block": "block",
    "PositionPlan": "positions",
    "SoftmaxAttention": "softmax",
    "boost": "boost",
    "build_blocks": "block",
    "plan_positions": "positions",
}


def __getattr__(name: str) -> Any:
    """The torch-based names, imported from their module on first access."""
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "KERNELS",
    "POS_KERNELS",
    "AttentionConfig",
    "KernelEntry",
    "as_config",
    "build_attention",
    "describe_variants",
    "kernel_class",
    "parse_variant",
    "register_kernel",
    "variant_names",
    *_LAZY,
]
