"""One registry of attention kernels: adding a variant is registering one module."""

from __future__ import annotations

from torch import nn

from robustbench_bilateral.attention.config import AttentionConfig

KERNEL_CLASSES: dict[str, type[nn.Module]] = {}


def register_kernel(name: str):
    """Class decorator: ``build_attention`` builds this class for ``config.kernel == name``."""

    def register(cls: type[nn.Module]) -> type[nn.Module]:
        KERNEL_CLASSES[name] = cls
        return cls

    return register


def build_attention(dim: int, num_heads: int, config: AttentionConfig, *, qkv_bias: bool = True) -> nn.Module:
    """The attention layer of ``config.kernel`` (boosting included when ``config.boost_steps``)."""
    return KERNEL_CLASSES[config.kernel](dim, num_heads, config, qkv_bias=qkv_bias)
