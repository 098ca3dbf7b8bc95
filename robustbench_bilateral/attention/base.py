"""The attention layer every variant shares: projections, heads, and boosting around a kernel."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from robustbench_bilateral.attention.config import AttentionConfig

Mixer = Callable[[Tensor], Tensor]


def boost(mix: Mixer, values: Tensor, nu: Tensor, steps: int) -> Tensor:
    """Boosting: ``u_0 = A V``, ``u_{k+1} = u_k + nu * A (V - u_k)`` for ``k < steps``; returns ``u_K``.

    In closed form ``u_K = [I - (I - nu A)^K (I - A)] V``; ``K = 1, nu = 1`` gives ``(2A - A^2) V``
    (Twicing attention) and ``nu = 0`` gives back ``A V``. ``mix`` applies ``A`` to a value tensor.
    """
    filtered = mix(values)
    for _ in range(steps):
        filtered = filtered + nu * mix(values - filtered)
    return filtered


class Attention(nn.Module):
    """Multi-head attention with timm's parameter names (``qkv``, ``proj``) and a pluggable kernel.

    A kernel subclass implements ``mixer(q, k, positions, causal)``: a function that applies the
    attention matrix ``A`` of (q, k) to any value tensor of shape (B, H, T, d). Boosting
    (``config.boost_steps`` = K > 0) re-applies it with a learnable per-head rate ``nu``.
    """

    def __init__(self, dim: int, num_heads: int, config: AttentionConfig, *, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.config = config
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        if config.boost_steps:
            self.nu = nn.Parameter(torch.full((num_heads, 1, 1), float(config.nu_init)))

    def mixer(self, q: Tensor, k: Tensor, positions: Tensor | None, causal: bool) -> Mixer:
        raise NotImplementedError

    def forward(self, x: Tensor, positions: Tensor | None = None, causal: bool = False) -> Tensor:
        """x: (B, T, C) tokens; positions: (T, P) position vectors (kernels that use them); returns (B, T, C)."""
        batch, length, channels = x.shape
        q, k, v = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        mix = self.mixer(q, k, positions, causal)
        out = boost(mix, v, self.nu, self.config.boost_steps) if self.config.boost_steps else mix(v)
        return self.proj(out.transpose(1, 2).reshape(batch, length, channels))
