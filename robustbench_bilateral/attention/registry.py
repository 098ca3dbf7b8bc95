"""Registry of attention kernels: adding a variant means registering one attention module.

A kernel is an ``Attention`` subclass (see ``base.py``) registered under a name without ``+``.
Every registered kernel ``k`` gives the variants ``k`` and ``k+boost``. An entry names its class
either directly or as ``"module:Class"``, imported on first use, so listing the kernels needs no
torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from robustbench_bilateral.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from .base import Attention
    from .config import AttentionConfig

RESERVED = "twicing"


@dataclass(frozen=True)
class KernelEntry:
    """One kernel: its class (or ``"module:Class"``) and the one-line formula of ``bilat-eval list variants``.

    ``builtin`` kernels are listed first, each with its boosted form, before the ``twicing`` alias.
    """

    target: type[Attention] | str
    formula: str
    builtin: bool = False

    def resolve(self) -> type[Attention]:
        """The attention class, imported from ``"module:Class"`` on first use."""
        if not isinstance(self.target, str):
            return self.target
        module, _, name = self.target.partition(":")
        return getattr(import_module(module), name)


def check_kernel_name(name: str) -> None:
    """A kernel name must be non-empty, without ``+`` (which marks boosting), and not ``twicing``."""
    if not isinstance(name, str) or not name or "+" in name or name == RESERVED:
        raise ValueError(f"invalid kernel name {name!r}: it must be non-empty, without '+', and not {RESERVED!r}")


class KernelRegistry(Registry[KernelEntry]):
    """Kernels by name; a name must be non-empty, without ``+``, and not ``twicing``."""

    def register(self, name: str, entry: KernelEntry) -> KernelEntry:
        """Add kernel ``name``; registering an equal entry again (a re-imported module) is a no-op."""
        check_kernel_name(name)
        if name in self and self.get(name) == entry:
            return self.get(name)
        return super().register(name, entry)


KERNELS = KernelRegistry("attention kernel", "bilat-eval list variants")


def register_kernel(name: str) -> Callable[[type[Attention]], type[Attention]]:
    """Class decorator registering an ``Attention`` subclass as kernel ``name``, listed with its ``formula``."""
    check_kernel_name(name)

    def decorator(cls: type[Attention]) -> type[Attention]:
        KERNELS.register(name, KernelEntry(cls, cls.formula))
        return cls

    return decorator


def kernel_class(name: str) -> type[Attention]:
    """The attention class registered as ``name``; an unknown name is an ``InputError`` listing the kernels."""
    return KERNELS.get(name).resolve()


def build_attention(dim: int, num_heads: int, config: AttentionConfig, *, qkv_bias: bool = True) -> nn.Module:
    """One attention layer of width ``dim`` with ``num_heads`` heads for ``config``."""
    return kernel_class(config.kernel)(dim, num_heads, config, qkv_bias=qkv_bias)
