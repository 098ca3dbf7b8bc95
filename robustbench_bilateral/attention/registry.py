"""Registry of attention kernels: adding a variant means registering one attention module.

A kernel is an ``Attention`` subclass (see ``base.py``) registered under a name without ``+``.
Every registered kernel ``k`` gives the variants ``k`` and ``k+boost``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from .base import Attention
    from .config import AttentionConfig

_KERNELS: dict[str, type[Attention]] = {}


def register_kernel(name: str) -> Callable[[type[Attention]], type[Attention]]:
    """Class decorator registering an ``Attention`` subclass as kernel ``name``."""
    if not name or "+" in name or name == "twicing":
        raise ValueError(f"invalid kernel name {name!r}: it must be non-empty, without '+', and not 'twicing'")

    def decorator(cls: type[Attention]) -> type[Attention]:
        if name in _KERNELS and _KERNELS[name] is not cls:
            raise ValueError(f"kernel {name!r} is already registered by {_KERNELS[name].__qualname__}")
        cls.kernel_name = name
        _KERNELS[name] = cls
        return cls

    return decorator


def kernel_names() -> tuple[str, ...]:
    """Registered kernel names, in registration order."""
    return tuple(_KERNELS)


def kernel_class(name: str) -> type[Attention]:
    """The attention class registered as ``name``."""
    try:
        return _KERNELS[name]
    except KeyError:
        raise ValueError(f"unknown attention kernel {name!r}: registered are {', '.join(_KERNELS)}") from None


def build_attention(dim: int, num_heads: int, config: AttentionConfig, *, qkv_bias: bool = True) -> nn.Module:
    """One attention layer of width ``dim`` with ``num_heads`` heads for ``config``."""
    return kernel_class(config.kernel)(dim, num_heads, config, qkv_bias=qkv_bias)
