"""Shared multi-head attention module: timm's parameter layout (``qkv``, ``proj``) plus boosting."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

from .boost import boost
from .config import AttentionConfig

ValueOperator = Callable[[Tensor], Tensor]


class Attention(nn.Module):
    """Multi-head attention ``x (B, T, C) -> proj(merge_heads(out))`` with a kernel-defined ``A``.

    ``qkv`` (Linear C -> 3C) gives per head ``q, k, v`` of shape (B, H, T, d), d = C / H, in
    timm's layout, so a timm ``Attention`` state dict loads. A subclass defines the attention
    matrix ``A`` of each head through

    - ``operator(q, k, positions, causal)``: a function ``W -> A W`` on (B, H, T, d) value tensors
      running on the fused ``scaled_dot_product_attention`` kernel;
    - ``logits(q, k, positions)``: the explicit pre-softmax logits (B, H, T, T), ``A = softmax(logits)``.

    With ``config.boost_steps = K > 0`` the output is ``[I - (I - nu A)^K (I - A)] V`` with a
    learnable step ``nu`` per head (``nu``, shape (H,), initialised to ``config.nu_init``).

    Class attributes: ``formula`` (one line for ``bilat-eval list variants``, read by
    ``register_kernel``), ``consumes_positions``: False = the model adds positions to the tokens at
    the input and the layer ignores ``positions``; True = the model passes position vectors (T, P)
    to every layer.
    """

    formula: ClassVar[str] = ""
    consumes_positions: ClassVar[bool] = False

    def __init__(self, dim: int, num_heads: int, config: AttentionConfig, *, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.config = config
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.nu = nn.Parameter(torch.full((num_heads,), config.nu_init)) if config.boost_steps else None

    def forward(self, x: Tensor, positions: Tensor | None = None, causal: bool = False) -> Tensor:
        """x (B, T, C), positions (T, P) or None, causal mask on/off -> (B, T, C)."""
        q, k, v = self._heads(x)
        apply = self.operator(q, k, positions, causal)
        out = apply(v) if self.nu is None else boost(apply, v, self.nu, self.config.boost_steps)
        return self.proj(out.transpose(1, 2).reshape(x.shape))

    def attention_matrix(self, x: Tensor, positions: Tensor | None = None, causal: bool = False) -> Tensor:
        """The attention matrix ``A`` (B, H, T, T) of every head, from the explicit logits."""
        q, k, _ = self._heads(x)
        logits = self.logits(q, k, positions)
        if causal:
            future = torch.ones(logits.shape[-2:], dtype=torch.bool, device=x.device).triu(1)
            logits = logits.masked_fill(future, float("-inf"))
        return logits.softmax(dim=-1)

    def operator(self, q: Tensor, k: Tensor, positions: Tensor | None, causal: bool) -> ValueOperator:
        """The map ``W -> A W`` on value tensors (B, H, T, d), on the fused attention kernel."""
        raise NotImplementedError

    def logits(self, q: Tensor, k: Tensor, positions: Tensor | None) -> Tensor:
        """Explicit pre-softmax logits (B, H, T, T)."""
        raise NotImplementedError

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        batch, length, _ = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv.unbind(0)
