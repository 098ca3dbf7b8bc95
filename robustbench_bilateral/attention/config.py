"""Attention variant configuration: kernel, position distance, boosting, and the blocks it applies to.

The config is stored in every checkpoint so that a checkpoint rebuilds its own model; variant
names (``variants.py``) parse to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

POS_KERNELS: tuple[str, ...] = ("sinusoidal", "coords", "learned")
BOOST_SUFFIX = "+boost"


@dataclass(frozen=True)
class AttentionConfig:
    """One attention variant.

    kernel:      registered kernel name (``softmax`` | ``bilateral`` | user-registered).
    pos_kernel:  position distance ``sinusoidal`` | ``coords`` | ``learned`` (variants.md section 2).
    boost_steps: K of the boosting recurrence (variants.md section 3); 0 = no boosting.
    nu_init:     initial boosting step nu of every head (learnable per head).
    layers:      block indices that use this kernel and boosting; None = all blocks. Other blocks
                 use plain softmax attention.
    """

    kernel: str = "softmax"
    pos_kernel: str = "sinusoidal"
    boost_steps: int = 0
    nu_init: float = 1.0
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.pos_kernel not in POS_KERNELS:
            raise ValueError(f"unknown pos_kernel {self.pos_kernel!r}: choose one of {', '.join(POS_KERNELS)}")
        if isinstance(self.boost_steps, bool) or int(self.boost_steps) != self.boost_steps or self.boost_steps < 0:
            raise ValueError(f"boost_steps must be a non-negative integer, got {self.boost_steps!r}")
        if not math.isfinite(float(self.nu_init)):
            raise ValueError(f"nu_init must be finite, got {self.nu_init!r}")
        object.__setattr__(self, "boost_steps", int(self.boost_steps))
        object.__setattr__(self, "nu_init", float(self.nu_init))
        if self.layers is not None:
            layers = tuple(int(i) for i in self.layers)
            if any(i < 0 for i in layers):
                raise ValueError(f"layers must be non-negative block indices, got {layers}")
            object.__setattr__(self, "layers", layers)

    @property
    def name(self) -> str:
        """Variant name ``<kernel>`` or ``<kernel>+boost``."""
        return self.kernel + (BOOST_SUFFIX if self.boost_steps else "")

    def applies_to(self, block: int) -> bool:
        """Whether block index ``block`` uses this kernel (else plain softmax)."""
        return self.layers is None or block in self.layers

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; ``name`` is included for readers and checked by ``from_dict``."""
        return {
            "name": self.name,
            "kernel": self.kernel,
            "pos_kernel": self.pos_kernel,
            "boost_steps": self.boost_steps,
            "nu_init": self.nu_init,
            "layers": None if self.layers is None else list(self.layers),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttentionConfig:
        """Inverse of ``to_dict``; unknown keys or a ``name`` that contradicts the fields raise ValueError."""
        values = dict(d)
        name = values.pop("name", None)
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown attention config keys: {', '.join(sorted(unknown))}")
        config = cls(**values)
        if name is not None and name != config.name:
            raise ValueError(f"attention config name {name!r} contradicts its fields ({config.name!r})")
        return config
